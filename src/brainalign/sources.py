"""Data files named in config: find them locally, or download them once, and check them.

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

from .io import atomic_path, file_checksum

CHUNK = 1 << 20
TIMEOUT = 60


def sha256_of(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file, read in chunks."""
    return file_checksum(path)


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
    path = Path(path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.exists():
        if sha256:
            _check_digest(sha256_of(path), sha256, key, str(path))
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
