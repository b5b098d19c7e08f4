"""eni-agent: make secondary cloud NICs (ENIs) work inside a Linux VM."""

import os

__version__ = "0.1.0"

# pydantic looks for plugins by scanning every installed distribution's entry
# points (importlib.metadata) the first time a model is built: tens of
# milliseconds on every run of a command that uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
