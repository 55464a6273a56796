"""brainalign: representational similarity and brain alignment of language and vision models."""

from importlib import metadata

from .threads import use_passive_wait

use_passive_wait()  # before any brainalign module imports torch: see brainalign.threads

try:
    __version__ = metadata.version("brainalign")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
