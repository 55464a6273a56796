"""NetCDF contracts: atomic writes, streaming activation files and provenance.

Every file brainalign writes goes through this module. A file is first written
under a temporary name in the destination folder and renamed only when it is
complete, so a job killed midway never leaves a file that looks finished.

This module imports nothing from the rest of brainalign but :mod:`brainalign.threads`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import xarray as xr

from .threads import pinned_threads

ENGINE = "h5netcdf"
COMPRESSION = {"compression": "gzip", "compression_opts": 4}
TRACKED_LIBRARIES = (
    "numpy", "scipy", "xarray", "h5netcdf", "h5py", "pandas", "torch", "torchvision", "transformers",
    "tokenizers", "sentence-transformers", "gguf", "accelerate", "rsatoolbox", "himalaya", "scikit-learn",
    "nilearn", "nibabel", "mne", "pillow", "scikit-image", "matplotlib", "threadpoolctl", "snakemake",
)


# --------------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On any exception (or KeyboardInterrupt / SIGTERM turned into SystemExit) the
    temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    tmp = _temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path``; on success it replaces ``path`` whole
    (the previous folder is renamed away, the new one renamed in, the old one removed), so
    the folder never mixes files of two runs. On any exception ``path`` is left untouched."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        yield tmp
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", suffix=".part", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _temp_path(path: Path) -> Path:
    """A fresh, hidden temporary file in the destination folder (same filesystem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    # mkstemp creates the file 0600; give the finished file the mode a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def _encoding(ds: xr.Dataset) -> dict:
    enc = {}
    for name, var in ds.variables.items():
        if var.dtype.kind in "fiub" and var.ndim > 0:
            enc[name] = dict(COMPRESSION)
    return enc


def write_netcdf(obj: xr.Dataset | xr.DataArray, path: str | os.PathLike, attrs: Mapping | None = None) -> Path:
    """Write a Dataset or DataArray atomically, compressed, with the h5netcdf engine."""
    ds = obj.to_dataset(name=obj.name or "data") if isinstance(obj, xr.DataArray) else obj.copy()
    if attrs:
        ds.attrs.update(clean_attrs(attrs))
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE, encoding=_encoding(ds), invalid_netcdf=False)
    return Path(path)


def read_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """Open a NetCDF file fully into memory (the file handle is closed on return)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"NetCDF file not found: {path}")
    with xr.open_dataset(path, engine=ENGINE) as ds:
        return ds.load()


def is_rdm_file(path: str | os.PathLike) -> bool:
    """True if ``path`` holds precomputed model RDMs (root attribute ``content = "rdms"``)."""
    import h5py

    with h5py.File(path, "r") as f:
        content = f.attrs.get("content", b"")
    return (content.decode() if isinstance(content, bytes) else str(content)) == "rdms"


def clean_attrs(attrs: Mapping) -> dict:
    """NetCDF attributes must be str or numbers: JSON-encode anything else."""
    out = {}
    for key, value in attrs.items():
        if value is None:
            value = ""
        if isinstance(value, (bool, np.bool_)):
            value = int(value)
        if not isinstance(value, (str, int, float, np.integer, np.floating)):
            value = json.dumps(value, sort_keys=True, default=str)
        out[str(key)] = value
    return out


# --------------------------------------------------------------------------- provenance
def config_hash(section) -> str:
    """sha256 of a config section, stable under key order."""
    blob = json.dumps(section, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def file_checksum(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """sha256 of a file, or of all files under a folder (sorted by relative path)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def array_checksum(*arrays) -> str:
    """sha256 over the bytes of numpy arrays (used for dataset checksums)."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        digest.update(str(a.dtype).encode() + str(a.shape).encode())
        if a.dtype.kind in "OUS":
            digest.update("\x1f".join(map(str, a.ravel())).encode())
        else:
            digest.update(a.tobytes())
    return digest.hexdigest()


def _git(where: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def checkout_state(where: str | None = None) -> dict:
    """The git state of the workflow checkout that runs: ``git_commit``, ``git_dirty`` (1 when
    a tracked file differs from that commit, 0 when none does, -1 when unknown) and
    ``workflow_checkout`` (its folder). The checkout is ``where``, else the folder a workflow
    job names (``BRAINALIGN_CHECKOUT``, set by :func:`brainalign.runlog.job` from the
    scripts' folder), else the current directory: not where the library is installed."""
    folder = Path(where or os.environ.get("BRAINALIGN_CHECKOUT") or Path.cwd()).resolve()
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": "unknown (not a git checkout)", "git_dirty": -1, "workflow_checkout": str(folder)}
    # refresh the index's stat data first, so a touched but unchanged file does not count
    _git(folder, "update-index", "-q", "--refresh")
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    dirty = -1 if status is None else int(bool(status))
    return {"git_commit": commit, "git_dirty": dirty, "workflow_checkout": str(folder)}


def library_versions() -> dict[str, str]:
    """Versions of Python, every library whose version can change a number, and the BLAS
    (its kernel architecture included: OpenBLAS picks kernels per CPU)."""
    versions = {"python": platform.python_version()}
    for lib in TRACKED_LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')}".strip()
                for i in threadpool_info() if i.get("user_api") == "blas"]
        versions["blas"] = "; ".join(sorted(set(blas))) or "none loaded"
    except ImportError:
        versions["blas"] = "unknown"
    return versions


def provenance(config_section=None, seed: int | None = None, **extra) -> dict:
    """Provenance attributes that every brainalign NetCDF carries.

    ``extra`` holds stage-specific entries such as ``model_checksum`` or
    ``dataset_checksum``. Values that are not str/number are JSON-encoded.
    """
    try:
        version = metadata.version("brainalign")
    except metadata.PackageNotFoundError:
        version = "unknown"
    attrs = {
        "brainalign_version": version,
        **checkout_state(),
        "threads": pinned_threads() or -1,
        "config_sha256": config_hash(config_section) if config_section is not None else "",
        "config_section": json.dumps(config_section, sort_keys=True, default=str)
        if config_section is not None else "",
        "seed": -1 if seed is None else int(seed),
        "library_versions": json.dumps(library_versions(), sort_keys=True),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    attrs.update(extra)
    return clean_attrs(attrs)


PROVENANCE_KEYS = ("brainalign_version", "git_commit", "git_dirty", "workflow_checkout", "threads", "config_sha256",
                   "seed", "library_versions")


# --------------------------------------------------------------------------- activations
class ActivationWriter:
    """Stream activations of one model on one stimulus set into a NetCDF file.

    Layout: the root group holds the ``stimulus`` dimension with ``stimulus_id``
    and the model attributes; one group per layer (named by ``layer_index``)
    holds ``activations(stimulus, unit)`` with scalar coords ``layer``,
    ``layer_index`` and ``depth``. Batches are written as they arrive, so memory
    stays bounded by one batch. The file appears at ``path`` only on ``close``.

    Use as a context manager; an exception discards the partial file.

    Activations are written uncompressed by default: dense float activations (and
    random projections of them) shrink by only 7-14% under gzip, which costs more
    time per image than the projection itself. Pass ``compression`` (h5py keyword
    arguments, e.g. ``{"compression": "gzip", "compression_opts": 1, "shuffle": True}``)
    to trade time for space. The h5py datasets stay open for the whole write, so a
    partly filled chunk is never re-read and re-compressed.
    """

    def __init__(self, path, stimulus_ids: Sequence[str], layers: Sequence[str], widths: Sequence[int],
                 layer_indices: Sequence[int] | None = None, depths: Sequence[float] | None = None,
                 attrs: Mapping | None = None, dtype="float32", compression: Mapping | None = None):
        import h5netcdf

        n_layers = len(layers)
        layer_indices = list(range(n_layers)) if layer_indices is None else list(layer_indices)
        if depths is None:
            depths = [i / max(n_layers - 1, 1) for i in range(n_layers)]
        if not (len(widths) == len(layer_indices) == len(depths) == n_layers):
            raise ValueError("layers, widths, layer_indices and depths must have the same length")
        self.path = Path(path)
        self._tmp = _temp_path(self.path)
        try:
            self._file = h5netcdf.File(self._tmp, "w")
            self._setup(stimulus_ids, layers, widths, layer_indices, depths, attrs, dtype, dict(compression or {}))
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise

    def set_attrs(self, attrs: Mapping) -> None:
        """Add or update file attributes known only after the batches (e.g. the batch size used)."""
        for key, value in clean_attrs(attrs).items():
            self._file.attrs[key] = value

    def _setup(self, stimulus_ids, layers, widths, layer_indices, depths, attrs, dtype, compression):
        import h5py

        n = len(stimulus_ids)
        f = self._file
        f.dimensions["stimulus"] = n
        sid = f.create_variable("stimulus_id", ("stimulus",), dtype=h5py.string_dtype())
        sid[:] = np.asarray(stimulus_ids, dtype=object)
        for key, value in clean_attrs(attrs or {}).items():
            f.attrs[key] = value
        f.attrs["n_layers"] = len(layers)
        self._vars = []
        for i, (name, width) in enumerate(zip(layers, widths)):
            g = f.create_group(layer_group(i))
            g.dimensions["unit"] = int(width)
            g.create_variable("unit", ("unit",), data=np.arange(int(width), dtype="int64"))
            var = g.create_variable("activations", ("stimulus", "unit"), dtype=dtype,
                                    chunks=(min(n, 256), min(int(width), 4096)), **compression)
            var.attrs["coordinates"] = "layer layer_index depth"
            g.create_variable("layer", (), dtype=h5py.string_dtype())[...] = str(name)
            g.create_variable("layer_index", (), data=np.int64(layer_indices[i]))
            g.create_variable("depth", (), data=np.float64(depths[i]))
            self._vars.append(var)
        # h5netcdf re-opens the h5py dataset on every access, which drops its chunk cache;
        # writing through handles kept open avoids that.
        self._h5 = [getattr(var, "_h5ds", var) for var in self._vars]
        self._written = np.zeros(n, dtype=bool)

    def write(self, start: int, batch: Sequence[np.ndarray]) -> None:
        """Write one batch: ``batch[i]`` is (batch_size, width_i) for layer i."""
        if len(batch) != len(self._vars):
            raise ValueError(f"expected {len(self._vars)} layers, got {len(batch)}")
        stop = start + batch[0].shape[0]
        for var, values in zip(self._h5, batch):
            var[start:stop, :] = np.asarray(values, dtype=var.dtype)
        self._written[start:stop] = True

    def close(self) -> Path:
        if not self._written.all():
            missing = int((~self._written).sum())
            self.abort()
            raise RuntimeError(f"{self.path}: {missing} stimuli were never written")
        self._h5 = []
        self._file.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Discard the partial file; ``path`` is left untouched."""
        try:
            self._h5 = []
            self._file.close()
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def layer_group(index: int) -> str:
    return f"layer_{index:03d}"


def read_activations(path: str | os.PathLike) -> tuple[list[xr.DataArray], dict]:
    """Read an activation file: a list of ``(stimulus, unit)`` DataArrays, one per
    layer in depth order, each with coords ``stimulus_id``, ``layer``,
    ``layer_index`` and ``depth``; and the file's attributes."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"activation file not found: {path}")
    with xr.open_dataset(path, engine=ENGINE) as root:
        root = root.load()
        n_layers = int(root.attrs["n_layers"])
        attrs = dict(root.attrs)
        stimulus_id = root["stimulus_id"].values.astype(str)
    layers = []
    for i in range(n_layers):
        with xr.open_dataset(path, engine=ENGINE, group=layer_group(i)) as g:
            da = g["activations"].load()
        da = da.assign_coords(stimulus_id=("stimulus", stimulus_id))
        da.name = str(da["layer"].item())
        layers.append(da)
    return layers, attrs
