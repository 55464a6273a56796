"""Features on the scanner's clock: word-level features brought to fMRI volumes.

A story heard in the scanner gives one feature vector per word, at the word's time, and one
response per volume, every TR. Two methods bring the words to the volumes, each a linear map
(volume x word) applied to every feature column at once:

- ``lanczos``: Lanczos-windowed sinc interpolation of the word-level signal at the volume times,
  the Huth lab's ``lanczosinterp2D`` (cutoff = ``cutoff_mult`` / mean TR, ``window`` lobes);
  the haemodynamic lag is then learnt by FIR ``delays`` (copies shifted by whole volumes).
- ``hrf``: every word an impulse of its feature's amplitude, convolved with nilearn's HRF
  (``glover`` or ``spm``) and sampled at each volume. The matrix equals what
  :func:`nilearn.glm.first_level.compute_regressor` gives for zero-duration events of these
  amplitudes (the same oversampled grid, kernel and linear interpolation), for all columns at once.

Times: the transcript's clock (s) and the scanner's agree at the first acquired volume, so kept
volume ``k`` (after ``discarded`` volumes) is acquired at ``(discarded + k + slice_time_ref) * tr
+ offset`` on the transcript's clock.
"""

from __future__ import annotations

import numpy as np

METHODS = ("lanczos", "hrf")
HRF_MODELS = ("glover", "spm")


def volume_times(n_volumes: int, tr: float, discarded: int = 0, slice_time_ref: float = 0.0,
                 offset: float = 0.0) -> np.ndarray:
    """Acquisition time (s, transcript clock) of each kept volume."""
    return (discarded + np.arange(n_volumes) + slice_time_ref) * float(tr) + float(offset)


def lanczos_matrix(event_times, sample_times, window: int = 3, cutoff_mult: float = 1.0) -> np.ndarray:
    """(sample, event) Lanczos interpolation weights, as ``lanczosinterp2D``."""
    event_times = np.asarray(event_times, dtype=np.float64)
    sample_times = np.asarray(sample_times, dtype=np.float64)
    cutoff = cutoff_mult / np.mean(np.diff(sample_times))
    t = (sample_times[:, None] - event_times[None, :]) * cutoff
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = window * np.sin(np.pi * t) * np.sin(np.pi * t / window) / (np.pi ** 2 * t ** 2)
    weights[t == 0] = 1.0
    weights[np.abs(t) > window] = 0.0
    return weights


def hrf_kernel(hrf_model: str, tr: float, oversampling: int = 50, time_length: float = 32.0) -> np.ndarray:
    """nilearn's HRF sampled every ``tr / oversampling`` s (it sums to 1)."""
    from nilearn.glm.first_level import hemodynamic_models as models

    if hrf_model not in HRF_MODELS:
        raise ValueError(f"hrf_model must be one of {HRF_MODELS}, got {hrf_model!r}")
    kernel = getattr(models, f"{hrf_model}_hrf")
    return np.asarray(kernel(tr, oversampling=oversampling, time_length=time_length, onset=0.0), dtype=np.float64)


def hrf_matrix(event_times, sample_times, hrf_model: str = "glover", oversampling: int = 50,
               min_onset: float = -24.0) -> np.ndarray:
    """(sample, event) weights: each event's HRF response sampled at ``sample_times``, built as
    nilearn's ``compute_regressor`` builds a regressor of zero-duration events (an impulse of one
    high-resolution sample at the first grid time at or after the onset, convolved with the
    kernel, linearly interpolated at the sample times)."""
    event_times = np.asarray(event_times, dtype=np.float64)
    frame_times = np.asarray(sample_times, dtype=np.float64)
    n_frames = len(frame_times)
    tr = float(np.min(np.diff(frame_times)))  # nilearn's kernel uses the shortest interval
    # nilearn's grid: _compute_n_frames_high_res and the linspace of _sample_condition
    first, last = frame_times.min(), frame_times.max()
    n_high = int(np.rint((n_frames - 1) / (last - first) * (last * (1 + 1.0 / (n_frames - 1)) - first - min_onset)
                         * oversampling + 1))
    grid = np.linspace(frame_times.min() + min_onset, frame_times.max() * (1 + 1.0 / (n_frames - 1)), n_high)
    kernel = hrf_kernel(hrf_model, tr, oversampling)
    onset_index = np.minimum(np.searchsorted(grid, event_times), n_high - 1)
    # linear interpolation of the high-resolution regressor at each frame time
    right = np.clip(np.searchsorted(grid, frame_times, side="right"), 1, n_high - 1)
    left = right - 1
    frac = (frame_times - grid[left]) / (grid[right] - grid[left])

    def response(index):  # kernel value at high-res sample ``index`` for every (frame, event)
        lag = index[:, None] - onset_index[None, :]
        inside = (lag >= 0) & (lag < len(kernel))
        return np.where(inside, kernel[np.clip(lag, 0, len(kernel) - 1)], 0.0)

    weights = (1 - frac)[:, None] * response(left) + frac[:, None] * response(right)
    weights[:, event_times < grid[0]] = 0.0  # nilearn drops events before frame_times[0] + min_onset
    return weights


def clock_matrix(event_times, sample_times, method: str = "lanczos", *, window: int = 3,
                 cutoff_mult: float = 1.0, hrf_model: str = "glover", oversampling: int = 50) -> np.ndarray:
    """The (sample, event) map of ``method`` (see the module's docstring)."""
    if method == "lanczos":
        return lanczos_matrix(event_times, sample_times, window=window, cutoff_mult=cutoff_mult)
    if method == "hrf":
        return hrf_matrix(event_times, sample_times, hrf_model=hrf_model, oversampling=oversampling)
    raise ValueError(f"feature method must be one of {METHODS}, got {method!r}")


def on_volumes(values: np.ndarray, matrix: np.ndarray, delays=(0,)) -> np.ndarray:
    """Word-level ``values`` (event, feature) on the volumes: ``matrix @ values``, then the FIR
    copies shifted by each of ``delays`` volumes (features of delay d at volume k come from
    volume k - d; 0 before the start), concatenated delay by delay: (sample, delay * feature)."""
    from .metrics.encoding import delay_features

    sampled = matrix @ np.asarray(values, dtype=np.float64)
    delays = [int(d) for d in delays]
    return sampled if delays == [0] else delay_features(sampled, delays)
