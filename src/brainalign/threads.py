"""The thread count of the numeric libraries, fixed by config, not by the cores a job gets.

Floating-point sums split across threads add in another order: OpenBLAS's matrix
products, LAPACK's eigensolvers and torch's reductions give results that differ in the
last bits between one thread and two (measured: up to 1e-13 relative in float64), and
those bits can flip a chosen alpha or a best layer. Snakemake scales a rule's ``threads``
down to ``--cores`` and sets ``OMP_NUM_THREADS`` & co. from it, so the same config would
give other numbers under other resources. Every workflow job therefore pins torch, the
BLAS/OpenMP pools already loaded (through threadpoolctl) and the environment variables
that libraries loaded later read, to the count its rule declares (config ``threads`` for
the multi-threaded rules, 1 for the others); that number is in every file's provenance.
Changing config ``threads`` may change the last digits; changing ``--cores`` never does.

Size-dependent policies inside a job (``metrics.backend.one_thread_if_small``) depend on
the problem, not the machine, so they keep this property.

This module imports torch only if it is already imported.
"""

from __future__ import annotations

import os
import sys

#: environment variables that BLAS, OpenMP and numexpr read when they load
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

_pinned: int | None = None


def pin_threads(n: int) -> int:
    """Make every numeric library in this process compute with ``n`` threads, now and for
    libraries loaded later. Returns ``n``."""
    global _pinned
    n = int(n)
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    _pinned = n
    return n


def pinned_threads() -> int | None:
    """The count :func:`pin_threads` set in this process (None outside a workflow job)."""
    return _pinned
