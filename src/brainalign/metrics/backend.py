"""Where and in what precision torch runs: device, dtype and thread policy.

Every module that computes with torch (the similarity measures, ridge and banded
ridge, the encoding jobs, the models) takes its device, dtype and thread count from
here, so the rules below hold everywhere:

Device
    ``"auto"`` (or None) is the GPU when torch sees one, else the CPU. Any other
    value goes to ``torch.device``; asking for CUDA when torch sees none raises a
    ``RuntimeError`` at once, rather than an obscure error at the first tensor.

Dtype
    Metrics default to float64 (the references are matched to 1e-12 there); torch
    dtypes, numpy dtypes and the names ``float64``/``double``/``float32``/``float``
    are accepted. Models may also run in half precision (``half=True``). Arrays
    handed back to numpy are float64 when the computation was float64 and float32
    otherwise (half precision is widened).

Threads
    Small problems run on one CPU thread. Small SVDs, QRs and products on several
    BLAS/OpenMP threads are slower than on one, and far slower (10x and more,
    measured) when other processes share the cores: the threads spin waiting for
    each other. Large problems keep every thread. :func:`one_thread_if_small`
    applies this inside a ``with`` block. Idle threads wait passively rather than spin
    (:func:`brainalign.threads.use_passive_wait`, set when brainalign is imported),
    so a second busy process on the machine slows a large fit down in proportion to
    the cores it takes, not tenfold. Work that splits into independent pieces (pairs of
    RDM vectors) goes to :func:`pool_map`: one thread per piece, pieces handed out as
    threads come free, so a thread that a busy core slows takes fewer pieces instead of
    holding the others back at a barrier.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

#: problems with fewer elements than this (in their largest input) run on one thread
SMALL_PROBLEM = 2_000_000

_DTYPES = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32, "float": torch.float32}
_HALF_DTYPES = {"float16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16}


# --------------------------------------------------------------------------- device

def _device(device) -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; anything else -> ``torch.device(device)``
    (not checked: torch fails when a tensor is first put on an unavailable device)."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_device(device="auto") -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; anything else -> ``torch.device(device)``.

    Raises ``RuntimeError`` when a CUDA device is asked for and torch sees none."""
    out = _device(device)
    if out.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' was requested but torch sees no CUDA device")
    return out


# --------------------------------------------------------------------------- dtype

def resolve_dtype(dtype=None, default=torch.float64, *, half: bool = False) -> torch.dtype:
    """None -> ``default``; accepts floating torch dtypes, numpy dtypes and the names
    "float64"/"double"/"float32"/"float" (with ``half=True`` also "float16"/"half"/"bfloat16")."""
    if dtype is None:
        return default
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be floating point, got {dtype}")
        return dtype
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    table = {**_DTYPES, **_HALF_DTYPES} if half else _DTYPES
    try:
        return table[name]
    except KeyError:
        known = "float64, float32, float16, bfloat16" if half else "float64, float32"
        raise ValueError(f"unknown dtype {dtype!r} (known: {known})") from None


def numpy_dtype(torch_dtype: torch.dtype):
    """The numpy dtype results of a ``torch_dtype`` computation are returned in:
    float64 for float64, float32 for everything else (half precision is widened)."""
    return np.float64 if torch_dtype == torch.float64 else np.float32


def as_tensor(x, dtype=None, device="auto") -> torch.Tensor:
    """``x`` (array or tensor) as a tensor of ``dtype`` (:func:`resolve_dtype`; None ->
    float64) on ``device`` (:func:`resolve_device`), without a copy when it is already
    there; callers must not modify the result in place."""
    dtype, device = resolve_dtype(dtype), resolve_device(device)
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)


# --------------------------------------------------------------------------- threads

@contextmanager
def one_thread_if_small(n_elements: int, device=None):
    """Limit torch to one thread inside the block when the problem is small and on the CPU
    (``device``: None, ``"auto"``, or anything ``torch.device`` takes; only its type is
    looked at, so an unavailable device does not raise here)."""
    small = _device(device).type == "cpu" and n_elements < SMALL_PROBLEM
    previous = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if small:
            torch.set_num_threads(previous)


def pool_threads() -> int:
    """Threads for :func:`pool_map`: the count a workflow job pinned
    (:func:`brainalign.threads.pin_threads`), else torch's."""
    from ..threads import pinned_threads

    return pinned_threads() or torch.get_num_threads()


def pool_map(fn, items) -> list:
    """``[fn(item) for item in items]``, the items on a pool of :func:`pool_threads` threads
    with the BLAS limited to one thread each (numpy's products and numba's compiled loops
    release the GIL). Each item's result is computed by one thread alone, so it does not
    depend on the thread count or on which thread took it. With one thread, or fewer than
    two items per thread, the items run in turn with the BLAS threaded as usual."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    items = list(items)
    if not pools(len(items)):
        return [fn(item) for item in items]
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(pool_threads()) as pool:
        return list(pool.map(fn, items))


def pools(n_items: int) -> bool:
    """Whether :func:`pool_map` spreads ``n_items`` items over threads (at least two threads
    and two items per thread)."""
    threads = pool_threads()
    return threads >= 2 and n_items >= 2 * threads
