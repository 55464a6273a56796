"""Stimulus-set and brain-data figures: what is drawn and the numbers behind it.

All inputs are built here (nothing from ``results/``).

Planted reliability. Every neuroid v gets ``reps[j, i, v] = s[i, v] + e[j, i, v]`` with
signal ``s ~ N(0, var_s)`` (independent per neuroid) and noise ``e ~ N(0, var_n)``
independent per repetition j. A half of h = k / 2 repetitions averages to ``s + mean(e)``
with noise variance ``var_n / h``, so the two half means correlate with
``rho_h = var_s / (var_s + var_n / h)``; Spearman-Brown with factor k / h turns this into
the reliability of the mean of all k repetitions,
``rho_k = k/h rho_h / (1 + (k/h - 1) rho_h) = var_s / (var_s + var_n / k)``.

Tolerance. The sample r over n stimuli has SD ~ (1 - rho^2) / sqrt(n); the median over m
neuroids has SE ~ 1.2533 SD / sqrt(m); the correction multiplies it by its slope
(k/h) / (1 + (k/h - 1) rho)^2 <= 2 for k/h = 2. With n = 300 stimuli and m = 500 neuroids
the worst case (noise-only ROI, rho = 0) is 2 * 1.2533 * 0.0577 / 22.4 = 0.0065, so
+-0.03 is more than 4 SE; the small-sample bias of r (~ rho (1 - rho^2) / 2n < 0.001) is
negligible.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle

from brainalign.figures.brain_data import RELIABILITY_LABEL, neuroid_counts, plot_brain_data, roi_reliability
from brainalign.figures.stimuli import plot_stimuli, word_counts

# --------------------------------------------------------------------------- stimuli
SENTENCES = ["The cat sat.", "A dog ran across the long road today", "Birds sing - loudly!",
             "Hammers hit nails", "One", "Saws cut wood quickly and cleanly"]
CATEGORIES = ["animals", "animals", "animals", "tools", "misc", "tools"]
WORDS = [3, 8, 3, 3, 1, 6]  # "-" is not a word


def _stimuli(categories=CATEGORIES, modality="text", content=SENTENCES) -> xr.Dataset:
    n = len(content)
    coords = {"stimulus_id": ("stimulus", [f"s{i:02d}" for i in range(n)]),
              "modality": ("stimulus", [modality] * n), "content": ("stimulus", list(content))}
    if categories is not None:
        coords["category"] = ("stimulus", list(categories))
    return xr.Dataset(coords=coords, attrs={"name": "toy", "source_file": "toy.csv",
                                            "condition_columns": "category" if categories else ""})


def _axes(fig, label):
    return [ax for ax in fig.axes if ax.get_label() == label]


def _bar_widths(ax) -> dict[str, float]:
    bars = sorted((p for p in ax.patches if isinstance(p, Rectangle)), key=lambda p: p.get_y())
    ticks = {round(t.get_position()[1]): t.get_text() for t in ax.get_yticklabels()}
    return {ticks[round(b.get_y() + b.get_height() / 2)]: b.get_width() for b in bars}


def test_word_counts():
    assert word_counts(SENTENCES).tolist() == WORDS


def test_stimuli_counts_lengths_labels_and_files(tmp_path):
    paths = [tmp_path / "stim.png", tmp_path / "stim.svg"]
    fig = plot_stimuli(_stimuli(), paths)
    ax_a = fig.axes[0]
    assert _bar_widths(ax_a) == {"animals": 3, "tools": 2, "misc": 1}
    assert [t.get_text() for t in ax_a.get_yticklabels()] == ["animals", "tools", "misc"]  # first appearance
    assert ax_a.get_xlabel() == "stimuli (count)"
    (ax_b,) = _axes(fig, "sentence_length")
    assert ax_b.get_xlabel() == "sentence length (words)"
    points = {c.get_label(): c.get_offsets()[:, 0].tolist() for c in ax_b.collections
              if isinstance(c, PathCollection)}
    cats, words = np.array(CATEGORIES), np.array(WORDS)
    assert points == {c: words[cats == c].tolist() for c in ("animals", "tools", "misc")}
    # jittered dots stay on their category's row (rows 0, 1, 2 from the top)
    for k, c in enumerate(["animals", "tools", "misc"]):
        (coll,) = [x for x in ax_b.collections if x.get_label() == c]
        assert np.all(np.abs(coll.get_offsets()[:, 1] - k) < 0.25)
    assert fig._suptitle.get_text() == "Stimulus set toy: 6 stimuli"
    for p in paths:
        assert p.stat().st_size > 1000
    assert "sentence length (words)" in paths[1].read_text()


def test_stimuli_without_category_gives_one_bar(tmp_path):
    fig = plot_stimuli(_stimuli(categories=None), tmp_path / "stim.png")
    assert _bar_widths(fig.axes[0]) == {"all": 6}
    assert (tmp_path / "stim.png").stat().st_size > 0


def test_image_stimuli_thumbnails_and_missing_files(tmp_path):
    from PIL import Image

    files = []
    for i in range(5):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((40, 30, 3), 50 * i, dtype=np.uint8)).save(path)
        files.append(str(path))
    cats = ["faces", "faces", "houses", "tools", "tools"]
    fig = plot_stimuli(_stimuli(cats, "image", files), tmp_path / "img.png")
    assert _bar_widths(fig.axes[0]) == {"faces": 2, "houses": 1, "tools": 2}
    thumbs = _axes(fig, "thumbnail")
    assert [ax.get_title() for ax in thumbs] == ["faces", "houses", "tools"]  # one per category
    assert thumbs[1].images[0].get_array()[0, 0, 0] == 100  # houses: img2, grey level 2 * 50

    missing = [str(tmp_path / "nope" / f"{i}.png") for i in range(5)]
    fig = plot_stimuli(_stimuli(cats, "image", missing), tmp_path / "missing.png")
    assert [ax.get_label() for ax in fig.axes] == ["category_counts"]  # panel B omitted
    assert (tmp_path / "missing.png").stat().st_size > 0


# --------------------------------------------------------------------------- brain data
N_STIM, K = 300, 4
PLANTED = {"high": (1.0, 1.0), "mid": (1.0, 4.0), "noise": (0.0, 1.0)}  # roi: (var_s, var_n)
SIZES = {("sub-01", "high"): 500, ("sub-01", "mid"): 420, ("sub-01", "noise"): 500,
         ("sub-02", "high"): 460, ("sub-02", "mid"): 500, ("sub-02", "noise"): 380}


def expected(var_s, var_n, k=K):
    return var_s / (var_s + var_n / k)


def _planted(xyz: bool = True) -> xr.Dataset:
    rng = np.random.default_rng(11)
    blocks, subjects, rois = [], [], []
    for (subject, roi), m in SIZES.items():
        var_s, var_n = PLANTED[roi]
        s = rng.normal(0.0, np.sqrt(var_s), (N_STIM, m, 1))
        blocks.append(s + rng.normal(0.0, np.sqrt(var_n), (N_STIM, m, K)))
        subjects += [subject] * m
        rois += [roi] * m
    n = len(subjects)
    coords = {"stimulus_id": ("stimulus", [f"s{i:03d}" for i in range(N_STIM)]),
              "subject": ("neuroid", subjects), "roi": ("neuroid", rois), "repetition": np.arange(K)}
    if xyz:
        centres = {"high": (-40, -20, 10), "mid": (40, 20, 30), "noise": (0, -70, 0)}
        pos = np.array([centres[r] for r in rois], float) + rng.normal(0, 8, (n, 3))
        coords.update(x=("neuroid", pos[:, 0]), y=("neuroid", pos[:, 1]), z=("neuroid", pos[:, 2]))
    return xr.Dataset({"responses": (("stimulus", "neuroid", "repetition"), np.concatenate(blocks, axis=1))},
                      coords=coords, attrs={"dataset": "planted", "dataset_kind": "simulated"})


@pytest.fixture(scope="module")
def planted():
    return _planted()


def test_reliability_recovers_planted_values(planted):
    rel = roi_reliability(planted, n_splits=20, seed=0)
    assert rel.dims == ("subject", "roi")
    assert rel.attrs["long_name"] == RELIABILITY_LABEL
    for roi, (var_s, var_n) in PLANTED.items():
        np.testing.assert_allclose(rel.sel(roi=roi).values, expected(var_s, var_n), atol=0.03,
                                   err_msg=roi)
    assert expected(*PLANTED["high"]) == 0.8 and expected(*PLANTED["mid"]) == 0.5
    np.testing.assert_array_equal(rel["n_neuroids"].values, rel["n_used"].values)  # no subsampling
    assert rel.identical(roi_reliability(planted, n_splits=20, seed=0))  # reproducible


def test_reliability_is_median_of_corrected_correlations_for_two_reps(planted):
    """k = 2: one split, r = corr(rep 0, rep 1), corrected 2r / (1 + r); exact reference."""
    two = planted.isel(repetition=[0, 1], neuroid=slice(0, 1420))  # sub-01 only
    rel = roi_reliability(two)
    for roi in PLANTED:
        data = two["responses"].values[:, two["roi"].values == roi]
        r = np.array([np.corrcoef(data[:, v, 0], data[:, v, 1])[0, 1] for v in range(data.shape[1])])
        np.testing.assert_allclose(float(rel.sel(subject="sub-01", roi=roi)), np.median(2 * r / (1 + r)),
                                   rtol=1e-12)


def test_reliability_subsampling_is_seeded(planted):
    a = roi_reliability(planted, seed=3, max_neuroids=100)
    assert (a["n_used"].values == 100).all()
    assert a.identical(roi_reliability(planted, seed=3, max_neuroids=100))
    assert not np.array_equal(a.values, roi_reliability(planted, seed=4, max_neuroids=100).values)
    # 100 neuroids: SE ~ 0.014 at worst, so the planted values hold within 0.08
    for roi, (var_s, var_n) in PLANTED.items():
        np.testing.assert_allclose(a.sel(roi=roi).values, expected(var_s, var_n), atol=0.08)


def test_brain_figure_bars_counts_and_glass_brain(planted, tmp_path):
    paths = [tmp_path / "brain.png", tmp_path / "brain.svg"]
    fig = plot_brain_data(planted, paths, n_splits=20, seed=0)
    counts = neuroid_counts(planted)
    (ax_b,) = _axes(fig, "neuroid_counts")
    assert ax_b.get_ylabel() == "voxels"
    heights = [p.get_height() for p in ax_b.patches]
    # bars subject by subject, ROIs in sorted order within each subject
    assert heights == [SIZES[s, r] for s in ("sub-01", "sub-02") for r in ("high", "mid", "noise")]
    assert heights == counts.values.ravel().tolist()
    assert [t.get_text() for t in ax_b.get_xticklabels()] == ["high", "mid", "noise"]

    (ax_a,) = _axes(fig, "reliability")
    assert ax_a.get_ylabel() == RELIABILITY_LABEL
    rel = roi_reliability(planted, n_splits=20, seed=0)
    np.testing.assert_allclose([p.get_height() for p in ax_a.patches], rel.values.ravel(), rtol=1e-12)

    assert len(_axes(fig, "glass_brain")) == 1
    (ax_leg,) = _axes(fig, "roi_legend")
    assert [t.get_text() for t in ax_leg.get_legend().get_texts()] == ["high (500)", "mid (420)", "noise (500)"]
    assert fig._suptitle.get_text().startswith("Brain data planted: simulated")
    for p in paths:
        assert p.stat().st_size > 1000


def test_no_glass_brain_without_coordinates(tmp_path):
    small = _planted(xyz=False).isel(stimulus=slice(0, 40), neuroid=slice(0, 1420, 20))
    fig = plot_brain_data(small, tmp_path / "b.png")
    assert not _axes(fig, "glass_brain")
    (ax_b,) = _axes(fig, "neuroid_counts")
    assert ax_b.get_ylabel() == "neuroids"


def test_time_resolved_reliability_and_panel(tmp_path):
    rng = np.random.default_rng(5)
    n_stim, n_neuroid, k = 100, 60, 4
    times = np.round(np.linspace(-0.1, 0.35, 10), 3)  # 3 points up to 0 s, 7 after
    signal = rng.normal(0, 1, (n_stim, n_neuroid, 1, len(times))) * (times > 0)
    data = signal + rng.normal(0, 1, (n_stim, n_neuroid, k, len(times)))
    brain = xr.Dataset(
        {"responses": (("stimulus", "neuroid", "repetition", "time"), data)},
        coords={"stimulus_id": ("stimulus", [f"s{i}" for i in range(n_stim)]),
                "subject": ("neuroid", ["sub-01"] * 30 + ["sub-02"] * 30), "roi": ("neuroid", ["mag"] * 60),
                "sensor": ("neuroid", [f"MEG {i:04d}" for i in range(60)]), "repetition": np.arange(k),
                "time": times},
        attrs={"dataset": "meg_toy", "dataset_kind": "mne_epochs"})
    rel = roi_reliability(brain)
    assert rel.dims == ("subject", "roi", "time")
    mean = rel.mean("subject").sel(roi="mag")
    # up to 0 s: median of 30 noise r (SD 0.1), x2 slope, mean of 2 subjects: SE ~ 0.03
    assert np.all(np.abs(mean.values[times <= 0]) < 0.12)
    assert np.all(mean.values[times > 0] > 0.5)  # planted 1 / (1 + 1/4) = 0.8

    fig = plot_brain_data(brain, tmp_path / "meg.png")
    (ax_a,) = _axes(fig, "reliability")
    assert ax_a.get_xlabel() == "time (ms)"
    assert ax_a.get_ylabel() == RELIABILITY_LABEL
    thick = [line for line in ax_a.get_lines() if line.get_label() == "mag"]
    np.testing.assert_allclose(thick[0].get_xdata(), times * 1000)
    np.testing.assert_allclose(thick[0].get_ydata(), mean.values, rtol=1e-12)
    assert any(np.allclose(line.get_xdata(), 0) for line in ax_a.get_lines())  # onset line
    (ax_b,) = _axes(fig, "neuroid_counts")
    assert ax_b.get_ylabel() == "sensors"
    assert [p.get_height() for p in ax_b.patches] == [30, 30]
    assert not _axes(fig, "glass_brain")


def test_missing_responses_is_a_value_error(tmp_path):
    rdms = xr.Dataset({"rdms": (("subject", "roi", "stimulus", "stimulus_"), np.zeros((1, 1, 3, 3)))},
                      coords={"stimulus_id": ("stimulus", ["a", "b", "c"])})
    with pytest.raises(ValueError, match="'responses'"):
        plot_brain_data(rdms, tmp_path / "x.png")
    with pytest.raises(ValueError, match="'responses'"):
        roi_reliability(rdms)
    assert not (tmp_path / "x.png").exists()
