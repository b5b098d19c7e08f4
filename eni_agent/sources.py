"""Where the metadata document comes from.

A failure to read it is `MetadataUnavailable`, never "no ENIs": the caller
keeps whatever is configured.
"""

from __future__ import annotations

from pathlib import Path

from eni_agent.errors import InvalidInput, MetadataUnavailable
from eni_agent.files import read_trusted
from eni_agent.model import Metadata, parse_metadata


def load_metadata(source: str | None) -> Metadata:
    if not source:
        raise InvalidInput("no metadata source: pass --metadata PATH or set `metadata` in the config")
    if source.startswith(("http://", "https://")):
        raise InvalidInput(f"metadata source {source}: the metadata service is not supported yet; "
                           "use a JSON file")
    path = Path(source)
    try:
        data = read_trusted(path, "metadata")
    except FileNotFoundError:
        raise MetadataUnavailable(f"metadata {path}: file not found") from None
    except IsADirectoryError:
        raise InvalidInput(f"metadata {path}: is a directory, not a JSON file") from None
    except OSError as e:
        raise MetadataUnavailable(f"metadata {path}: cannot read: {e.strerror}") from None
    return parse_metadata(data, str(path))
