"""Extraction sized to the hardware: the dtype ``auto`` picks, models spread over several devices,
and the batch size that backs off when a batch does not fit in memory.

``dtype: auto`` is bfloat16 on a GPU that supports it (Ampere and later) and float32 elsewhere
(CPUs, and older GPUs, where float16 could overflow); the activations file records the dtype used.

A transformers model is loaded across devices (:func:`device_map`; accelerate's ``device_map``)
when its entry says so (``device_map: auto|balanced|sequential``, optionally with
``max_memory``) or when the job has several GPUs (then ``sequential``: GPU 0 first, the next
only for what does not fit). Hidden states are still returned by every layer, wherever it runs.

:class:`BatchBackOff` runs the batches of an extraction at the configured ``batch_size`` and, when
one runs out of memory (CUDA's ``OutOfMemoryError``, the CPU allocator's "can't allocate memory",
or Python's ``MemoryError``), frees what it can, halves the size and runs the same stimuli again,
then keeps the smaller size. The activations are those of a run at the final size; the file
records the requested and final sizes and the number of retries. A batch of one that does not fit
is an error naming the config keys to change.
"""

from __future__ import annotations

import gc
import sys

import torch

from ..errors import UserInputError
from ..metrics.backend import resolve_dtype


def model_dtype(name, device: torch.device) -> torch.dtype:
    """The dtype a model runs in: config ``dtype`` (None = float32), ``auto`` by the device."""
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return resolve_dtype(name, default=torch.float32, half=True)


def device_map(spec: dict, device: torch.device) -> str | None:
    """accelerate's ``device_map`` for a transformers model: the entry's, ``sequential`` when the job
    has several GPUs, else None (the whole model on ``device``)."""
    if spec.get("device_map"):
        return spec["device_map"]
    if device.type == "cuda" and torch.cuda.device_count() > 1:
        return "sequential"
    return None


def dispatch_kwargs(spec: dict, device: torch.device) -> dict:
    """``from_pretrained`` keywords that spread a model over devices (empty for one device); layers
    that fit nowhere are offloaded to a temporary folder."""
    mapping = device_map(spec, device)
    if mapping is None:
        return {}
    import tempfile

    kwargs = {"device_map": mapping, "offload_folder": tempfile.mkdtemp(prefix="brainalign-offload-")}
    if spec.get("max_memory"):
        kwargs["max_memory"] = {(int(k) if str(k).isdigit() else k): v for k, v in spec["max_memory"].items()}
    return kwargs


def input_device(model, default: torch.device) -> torch.device:
    """Where a dispatched model takes its inputs: its first module's device (not disk or meta)."""
    placed = getattr(model, "hf_device_map", None)
    if not placed:
        return default
    first = next((d for d in placed.values() if d not in ("disk", "meta")), "cpu")
    return torch.device(f"cuda:{first}" if isinstance(first, int) else first)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an allocation failure of torch (CUDA or CPU) or Python."""
    if isinstance(exc, MemoryError):
        return True
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


class BatchBackOff:
    """Batch sizes that back off on out-of-memory (see the module docstring)."""

    def __init__(self, batch_size: int, key: str):
        self.requested = self.size = int(batch_size)
        self.key, self.retries = key, 0

    def run(self, encode, block, start: int = 0):
        """Yield ``(offset, count, result)`` for ``block`` (a list or a tensor of prepared inputs)
        cut into pieces of the current size, each ``encode(piece)``; on out-of-memory, halve the
        size and run the piece again."""
        done = 0
        while done < len(block):
            piece = block[done:done + self.size]
            try:
                result = encode(piece)
            except Exception as exc:  # noqa: BLE001  (only allocation failures are retried)
                if not is_out_of_memory(exc):
                    raise
                self._shrink(exc)
                continue
            yield start + done, len(piece), result
            done += len(piece)

    def _shrink(self, exc: BaseException) -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if self.size == 1:
            raise UserInputError(f"config key '{self.key}': out of memory with a batch of one stimulus ({exc}); "
                                 "the job needs more memory (resources.extract.mem_mb, or a GPU with more "
                                 "memory), a smaller dtype or a shorter max_length") from None
        self.size = max(1, self.size // 2)
        self.retries += 1
        print(f"brainalign: out of memory at batch size {self.size * 2}; retrying at {self.size} "
              f"({self.key})", file=sys.stderr)

    def attrs(self) -> dict:
        return {"batch_size": self.requested, "batch_size_final": self.size, "oom_retries": self.retries}
