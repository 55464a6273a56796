"""Extraction sized to the hardware: the dtype ``auto`` picks, and the batch size that backs off
when a batch does not fit in memory.

``dtype: auto`` is bfloat16 on a GPU that supports it (Ampere and later) and float32 elsewhere
(CPUs, and older GPUs, where float16 could overflow); the activations file records the dtype used.

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
