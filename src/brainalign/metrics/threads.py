"""Run small torch problems on one CPU thread.

Small SVDs, QRs and products on several BLAS/OpenMP threads are slower than on
one, and far slower (10x and more, measured) when other processes share the
cores: the threads spin waiting for each other. Large problems keep every thread.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

#: problems with fewer elements than this (in their largest input) run on one thread
SMALL_PROBLEM = 2_000_000


@contextmanager
def one_thread_if_small(n_elements: int, device=None):
    """Limit torch to one thread inside the block when the problem is small and on the CPU
    (``device``: None, ``"auto"``, or anything ``torch.device`` takes)."""
    if device in (None, "auto"):
        on_cpu = not torch.cuda.is_available()
    else:
        on_cpu = torch.device(device).type == "cpu"
    small = on_cpu and n_elements < SMALL_PROBLEM
    previous = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if small:
            torch.set_num_threads(previous)
