"""Single trials -> the brain contract's (stimulus, neuroid, repetition) block.

Adapters that read trial-wise data (GLM betas of fMRI events, MEG epochs,
Brain-Score presentations) hand their trials here: one row per trial, with the
trial's ``stimulus_id``. The k-th trial of a stimulus (in the given order)
becomes repetition k.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .contract import BrainDataError


def check_known_stimuli(trial_ids, stimulus_ids, what: str) -> None:
    """Every trial's stimulus id must be in the stimulus set; the error names ``what``."""
    unknown = np.setdiff1d(np.asarray(trial_ids, dtype=str), np.asarray(stimulus_ids, dtype=str))
    if len(unknown):
        raise BrainDataError(f"{what}: {len(unknown)} stimulus id(s) not in the stimulus set, "
                             f"e.g. {unknown[:5].tolist()}")


def stack_repetitions(trials: np.ndarray, trial_ids, stimulus_ids, what: str,
                      unequal: str = "truncate") -> tuple[np.ndarray, dict]:
    """Arrange ``trials`` (trial x ...) into (stimulus x ... x repetition).

    Stimuli come out in the order of ``stimulus_ids`` (the stimulus set); every one
    must have at least one trial. When stimuli have different numbers of trials,
    ``unequal='truncate'`` keeps each stimulus's first ``min`` trials (with a
    warning; the count of dropped trials is returned), ``'average'`` averages all
    trials into one repetition, and ``'error'`` raises.

    Returns the array and ``{"n_trials_dropped": int, "repetitions": int}``.
    """
    trial_ids = np.asarray(trial_ids, dtype=str)
    stimulus_ids = np.asarray(stimulus_ids, dtype=str)
    check_known_stimuli(trial_ids, stimulus_ids, what)
    positions = pd.Series(np.arange(len(trial_ids))).groupby(trial_ids, sort=False).indices
    empty = np.array([], dtype=np.int64)
    rows = [np.sort(positions.get(s, empty)) for s in stimulus_ids]
    counts = np.array([len(r) for r in rows])
    if (counts == 0).any():
        missing = stimulus_ids[counts == 0]
        raise BrainDataError(f"{what}: no trials for {len(missing)} stimulus id(s) of the stimulus set, "
                             f"e.g. {missing[:5].tolist()}")
    if unequal == "average":
        return np.stack([trials[r].mean(0) for r in rows])[..., None], {"n_trials_dropped": 0, "repetitions": 1}
    n_rep = int(counts.min())
    dropped = int((counts - n_rep).sum())
    if dropped:
        if unequal == "error":
            raise BrainDataError(f"{what}: stimuli have between {counts.min()} and {counts.max()} trials; "
                                 "set 'unequal_trials: truncate' or 'average' to accept this")
        warnings.warn(f"{what}: stimuli have between {counts.min()} and {counts.max()} trials; kept the first "
                      f"{n_rep} of each ({dropped} trial(s) dropped)", stacklevel=2)
    stacked = np.stack([trials[r[:n_rep]] for r in rows])  # stimulus x rep x ...
    return np.moveaxis(stacked, 1, -1), {"n_trials_dropped": dropped, "repetitions": n_rep}
