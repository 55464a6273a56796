"""brainalign: representational similarity and brain alignment of language and vision models."""

from importlib import metadata

try:
    __version__ = metadata.version("brainalign")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
