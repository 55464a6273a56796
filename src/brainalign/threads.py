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

How idle threads wait (:func:`use_passive_wait`, applied when brainalign is imported): GNU
OpenMP, which torch's CPU kernels and LAPACK calls run on, lets a thread that waits for its
siblings spin on its core. When another process keeps a core busy, the spinning thread takes
the time slices that the descheduled sibling needs, and LAPACK's many synchronisation points
turn that into slowdowns of 10x and more (measured: one 1,600 x 1,024 SVD took 0.7 to 25 s
with a second process busy on one of 2 cores). Passive waiting ends that: a 5-fold
``ridge_cv`` at n = 2,000, p = 1,024, V = 4,000 went from 3.2 s idle to 8.0 s beside a busy
process with spinning threads, and from 3.9 s to 5.8 s with passive ones. The policy is read
once, when the OpenMP runtime loads, so it is set before torch is imported; a value the user
set is kept.

This module imports torch only if it is already imported.
"""

from __future__ import annotations

import os
import sys

#: environment variables that BLAS, OpenMP and numexpr read when they load
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

_pinned: int | None = None

#: how idle OpenMP threads wait, unless OMP_WAIT_POLICY is already set
WAIT_POLICY = "PASSIVE"


def use_passive_wait() -> str | None:
    """Set ``OMP_WAIT_POLICY`` (unless set) for the OpenMP runtime torch loads. Returns the
    policy in force, or None when torch was imported first and its runtime already read it."""
    if "torch" in sys.modules and "OMP_WAIT_POLICY" not in os.environ:
        return None
    return os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


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
