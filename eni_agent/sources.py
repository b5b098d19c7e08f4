"""Where the metadata document comes from: a JSON file, or the ECS metadata
service (the default when no file is configured).

A failure to read it is `MetadataUnavailable`, never "no ENIs": the caller
keeps whatever is configured.
"""

from __future__ import annotations

from pathlib import Path

from eni_agent.errors import InvalidInput, MetadataUnavailable
from eni_agent.files import read_trusted
from eni_agent.model import Metadata, metadata_from_tree, parse_metadata

DEFAULT_SOURCE = "http://100.100.100.200"
_services: dict = {}  # one client per service URL, so the daemon reuses its token


def effective_source(source: str | None) -> str:
    return source or DEFAULT_SOURCE


def is_service(source: str | None) -> bool:
    return effective_source(source).startswith(("http://", "https://"))


def load_metadata(source: str | None) -> Metadata:
    source = effective_source(source)
    if is_service(source):
        return _from_service(source)
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


def forget_client(source: str | None) -> None:
    """Drop the cached client of a service (its fetch was abandoned): the next
    fetch starts afresh instead of sharing state with a stuck thread."""
    _services.pop(effective_source(source), None)


def _from_service(url: str) -> Metadata:
    from eni_agent.metadata_service import MetadataService

    service = _services.get(url)
    if service is None:
        service = _services[url] = MetadataService(url)
    return metadata_from_tree(service.fetch_tree(), url)
