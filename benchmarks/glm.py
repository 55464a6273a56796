"""Single-trial GLM speed: the ``nifti_events`` adapter vs nilearn's per-trial contrasts.

One simulated run of the default config's fMRI (nilearn's 4 mm MNI152 grid, 120 trials, TR 2 s,
AR(1) noise model, ROI voxels of four Seitzman networks), fitted two ways on the same data:

1. Reference (what a nilearn user writes): ``FirstLevelModel(...).fit(run, events)``, then
   ``compute_contrast(trial, output_type="effect_size")`` for each of the 120 trial regressors,
   each map masked to the ROI voxels.
   Timed twice: with the default BLAS threads, and under one BLAS thread (threadpoolctl).
2. Ours: ``nifti_events._fit_run``: the same ``FirstLevelModel`` fit under one BLAS thread, then
   every beta read in one pass from the fitted model's per-AR-bin results.

The betas must agree (max abs difference printed); the ratio is reference / ours.

    python benchmarks/glm.py
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

from brainalign.datasets import nifti_events
from brainalign.datasets.nifti_rois import roi_labels
from brainalign.simulate import fmri
from brainalign.stimuli import load_stimulus_table

ROOT = Path(__file__).resolve().parents[1]
ROIS = {"coords": "seitzman_2018", "radius": 8, "select": ["Auditory", "FrontoParietal", "DefaultMode", "Visual"]}


def fake_activations(ids, out: Path) -> Path:
    """Planted features without running a model: one random 64-unit layer."""
    from brainalign.io import ActivationWriter

    rng = np.random.default_rng(0)
    with ActivationWriter(out, ids, ["random"], [64], layer_indices=[0]) as writer:
        writer.write(0, [rng.standard_normal((len(ids), 64))])
    return out


def main() -> None:
    warnings.simplefilter("ignore")
    stimuli = load_stimulus_table(ROOT / "config" / "stimuli" / "sentences.csv")
    ids = stimuli["stimulus_id"].values.astype(str)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = {"kind": "nifti_events", "task": "bench", "rois": ROIS,
                "simulate": {"subjects": 1, "runs": 1, "planted": {"Auditory": {"model": "m", "layer": 0}}}}
        fmri.write("bench", spec, stimuli, {"m": fake_activations(ids, tmp / "m.nc")}, tmp / "bids", seed=0)
        run = nifti_events.discover_runs("bench", {**spec, "root": str(tmp / "bids")}, None)[0]
        img = nib.load(run.bold)
        img = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine, img.header)
        events = nifti_events.read_events(run, ids, "stimulus_id", img.shape[3] * 2.0)
        labels, _ = roi_labels(ROIS, img.affine, img.shape[:3], key="rois")
        from nilearn.datasets import load_mni152_gm_mask

        mask = (labels > 0) & (np.asarray(load_mni152_gm_mask(resolution=4).dataobj) > 0)
        mask_img = nib.Nifti1Image(mask.astype(np.uint8), img.affine)
        print(f"run: {img.shape}, {int(mask.sum())} ROI voxels, {len(events)} trials")

        from nilearn.glm.first_level import FirstLevelModel

        from threadpoolctl import threadpool_limits

        design = events[["onset", "duration", "regressor"]].rename(columns={"regressor": "trial_type"})

        def reference_fit():
            model = FirstLevelModel(t_r=2.0, mask_img=mask_img).fit(img, events=design)
            return np.stack([np.asarray(model.compute_contrast(t, output_type="effect_size").dataobj)[mask]
                             for t in events["regressor"]])

        t0 = time.perf_counter()
        reference = reference_fit()
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        with threadpool_limits(1):
            reference_fit()
        t_ref1 = time.perf_counter() - t0

        glm = dict(nifti_events.GLM_DEFAULTS)
        t0 = time.perf_counter()
        ours = nifti_events._fit_run(img, events, None, mask_img, 2.0, glm, lambda i: np.asarray(i.dataobj)[mask])
        t_ours = time.perf_counter() - t0
        print(f"nilearn fit + 120 compute_contrast: {t_ref:7.2f} s (default BLAS threads)")
        print(f"  the same under one BLAS thread:   {t_ref1:7.2f} s")
        print(f"brainalign nifti_events GLM:        {t_ours:7.2f} s")
        print(f"ratio (nilearn / ours): {t_ref / t_ours:.1f}x; max |beta difference| "
              f"{np.abs(reference - ours).max():.2e} (betas' sd {reference.std():.2f})")


if __name__ == "__main__":
    main()
