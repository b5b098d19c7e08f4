"""eni-agent: make secondary cloud NICs (ENIs) work inside a Linux VM."""

__version__ = "0.1.0"
