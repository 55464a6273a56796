"""RSA figures drawn from a scores NetCDF alone: what is drawn, not only that a file appears.

Small synthetic scores files in the RSA format (5 layers, 3 subjects, 2 ROIs, 12 stimuli
in 3 interleaved categories; and a time-resolved one with 20 time points) are built here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import pdist, squareform
from scipy.stats import false_discovery_control, rankdata, spearmanr

from brainalign.figures import plot_file
from brainalign.figures.layer_curves import plot_layer_curves, plot_time_curves
from brainalign.figures.rdms import plot_rdm_mds, plot_rdm_panels
from brainalign.io import write_netcdf

LAYERS = ["embeddings", "block_01", "block_02", "block_03", "block_04"]
ROIS = ["early", "late"]
SUBJECTS = ["sub-01", "sub-02", "sub-03"]
CATEGORIES = ["face", "body", "object"] * 4  # interleaved: grouping must reorder the stimuli
GROUPED = [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]  # stable grouping, categories in order of first appearance
METRIC_LABEL = "RSA (Spearman rho, correlation RDMs)"
TIMES = np.linspace(-0.1, 0.6, 20)  # seconds


def _common(ds: xr.Dataset, alpha: float) -> xr.Dataset:
    ds = ds.assign_coords(layer_index=("layer", np.arange(len(LAYERS))),
                          depth=("layer", np.linspace(0, 1, len(LAYERS))))
    ds["score"].attrs["long_name"] = METRIC_LABEL
    ds.attrs.update(metric="rsa", metric_label=METRIC_LABEL, model="toy", dataset="synthetic", confidence=0.95,
                    alpha=alpha, n_bootstrap=0, n_permutations=100, bootstrap="stimuli", seed=7,
                    higher_is_better=1, planted="")
    return ds


def _fdr(p: np.ndarray) -> np.ndarray:
    return false_discovery_control(p.ravel(), method="bh").reshape(p.shape)


def make_scores(alpha: float = 0.05) -> xr.Dataset:
    rng = np.random.default_rng(0)
    n_stim = len(CATEGORIES)
    features = [rng.normal(size=(n_stim, 8))]
    for _ in LAYERS[1:]:
        features.append(features[-1] + 0.6 * rng.normal(size=(n_stim, 8)))
    layer_rdms = np.stack([squareform(pdist(f, "correlation")) for f in features])
    brain_rdms = np.stack([squareform(pdist(features[k] + 0.3 * rng.normal(size=(n_stim, 8)), "correlation"))
                           for k in (1, 3)])
    vectors = [squareform(r, checks=False) for r in (*layer_rdms, *brain_rdms)]
    distance = np.array([[1 - spearmanr(a, b)[0] for b in vectors] for a in vectors])
    np.fill_diagonal(distance, 0.0)

    score = rng.uniform(0.0, 0.5, size=(len(LAYERS), len(SUBJECTS), len(ROIS)))
    mean = score.mean(axis=1)
    # chosen so that some raw p values pass 0.05 but fail after FDR adjustment
    p_value = np.array([[0.001, 0.0001], [0.004, 0.03], [0.02, 0.04], [0.5, 0.002], [0.045, 0.9]])
    best = mean.argmax(axis=0)
    ds = xr.Dataset(
        {
            "score": (("layer", "subject", "roi"), score),
            "score_mean": (("layer", "roi"), mean),
            "ci_low": (("layer", "roi"), mean - 0.05),
            "ci_high": (("layer", "roi"), mean + 0.05),
            "boot_ci_low": (("layer", "roi"), np.full(mean.shape, np.nan)),
            "boot_ci_high": (("layer", "roi"), np.full(mean.shape, np.nan)),
            "p_value": (("layer", "roi"), p_value),
            "p_fdr": (("layer", "roi"), _fdr(p_value)),
            "best_layer_p": (("layer", "roi"), np.where(np.arange(5)[:, None] == best, np.nan, 0.2)),
            "ceiling_low": ("roi", [0.55, np.nan]),
            "ceiling_high": ("roi", [0.7, np.nan]),
            "brain_rdm": (("roi", "stimulus", "stimulus_"), brain_rdms),
            "best_rdm": (("roi", "stimulus", "stimulus_"), layer_rdms[best]),
            "rdm_distance": (("rdm", "rdm_"), distance),
        },
        coords={
            "layer": LAYERS, "subject": SUBJECTS, "roi": ROIS,
            "stimulus_id": ("stimulus", [f"s{k:02d}" for k in range(n_stim)]),
            "category": ("stimulus", CATEGORIES),
            "best_layer": ("roi", [LAYERS[k] for k in best]),
            "rdm_label": ("rdm", LAYERS + [f"brain: {roi}" for roi in ROIS]),
            "rdm_kind": ("rdm", ["layer"] * len(LAYERS) + ["brain"] * len(ROIS)),
        },
    )
    return _common(ds, alpha)


def make_time_scores(alpha: float = 0.05) -> xr.Dataset:
    rng = np.random.default_rng(1)
    shape = (len(LAYERS), len(SUBJECTS), len(ROIS), TIMES.size)
    bump = np.exp(-((TIMES - 0.15) / 0.08) ** 2)
    score = 0.3 * bump * rng.uniform(0.5, 1.5, size=shape) + 0.02 * rng.normal(size=shape)
    mean = score.mean(axis=1)
    p_value = np.where(bump > 0.3, 0.001, 0.6) * np.ones_like(mean)
    ceiling = np.stack([np.where(TIMES > 0, 0.35, np.nan), np.full(TIMES.size, np.nan)])  # late: undefined
    ds = xr.Dataset(
        {
            "score": (("layer", "subject", "roi", "time"), score),
            "score_mean": (("layer", "roi", "time"), mean),
            "ci_low": (("layer", "roi", "time"), mean - 0.05),
            "ci_high": (("layer", "roi", "time"), mean + 0.05),
            "p_value": (("layer", "roi", "time"), p_value),
            "p_fdr": (("layer", "roi", "time"), _fdr(p_value)),
            "ceiling_low": (("roi", "time"), ceiling),
            "ceiling_high": (("roi", "time"), ceiling + 0.1),
        },
        coords={"layer": LAYERS, "subject": SUBJECTS, "roi": ROIS, "time": TIMES},
    )
    return _common(ds, alpha)


def _labelled(ax, label):
    return [artist for artist in [*ax.lines, *ax.collections, *ax.patches] if artist.get_label() == label]


def _no_legend_over_axes(fig):
    fig.canvas.draw()
    for legend in fig.legends:
        box = legend.get_window_extent()
        for ax in fig.axes:
            if ax.get_visible() and ax.get_label() != "<colorbar>":
                assert not box.overlaps(ax.get_window_extent()), "legend drawn over a panel"


# --------------------------------------------------------------------------- layer curves
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_layer_curves_mark_fdr_significant_layers(tmp_path, alpha):
    scores = make_scores(alpha)
    p_fdr = scores["p_fdr"].values
    assert (p_fdr < alpha).sum() != (scores["p_value"].values < alpha).sum()  # the test can tell them apart
    fig = plot_layer_curves(scores, [tmp_path / "curves.png"])
    label = f"p_FDR < {alpha:g}"
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len(ROIS)
    for ax, roi in zip(panels, ROIS):
        marks = _labelled(ax, label)
        expected = scores["layer_index"].values[p_fdr[:, ROIS.index(roi)] < alpha]
        got = marks[0].get_xdata() if marks else []
        np.testing.assert_array_equal(got, expected)
        assert expected.size > 0
    assert panels[0].get_ylabel() == METRIC_LABEL
    assert sum(len(line.get_xdata()) for ax in panels for line in _labelled(ax, label)) == (p_fdr < alpha).sum()
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert label in legend_texts and "noise ceiling" in legend_texts
    # the noise ceiling is drawn where it is finite (ROI "early") and only there
    assert len(_labelled(panels[0], "noise ceiling")) == 1 and not _labelled(panels[1], "noise ceiling")
    _no_legend_over_axes(fig)
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_layer_curves_of_old_files_use_raw_p(tmp_path):
    old = make_scores().drop_vars(["p_fdr", "best_layer_p", "boot_ci_low", "boot_ci_high", "brain_rdm",
                                   "best_rdm", "rdm_distance", "category", "best_layer", "rdm_label", "rdm_kind"])
    old.attrs.pop("alpha")
    fig = plot_layer_curves(old, [tmp_path / "old.png"])
    n_marks = sum(len(line.get_xdata()) for ax in fig.axes for line in _labelled(ax, "p < 0.05"))
    assert n_marks == (old["p_value"].values < 0.05).sum()
    assert not any(_labelled(ax, "p_FDR < 0.05") for ax in fig.axes)


# --------------------------------------------------------------------------- RDM panels
def _percentiles(rdm):
    upper = np.triu_indices(rdm.shape[0], 1)
    ranks = rankdata(rdm[upper])
    out = np.full(rdm.shape, np.nan)
    out[upper] = 100 * (ranks - ranks.min()) / (ranks.max() - ranks.min())
    out.T[upper] = out[upper]
    return out


def test_rdm_panels_show_percentile_rdms_grouped_by_category(tmp_path):
    scores = make_scores()
    fig = plot_rdm_panels(scores, [tmp_path / "rdms.png", tmp_path / "rdms.pdf"])
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2 * len(ROIS)
    assert all(len(ax.images) == 1 for ax in panels)
    for row, roi in enumerate(ROIS):
        brain_ax, model_ax = panels[2 * row], panels[2 * row + 1]
        assert brain_ax.get_title() == f"brain: {roi}"
        assert model_ax.get_title() == f"toy {scores['best_layer'].sel(roi=roi).item()}"
        for ax, name in ((brain_ax, "brain_rdm"), (model_ax, "best_rdm")):
            rdm = scores[name].sel(roi=roi).values[np.ix_(GROUPED, GROUPED)]
            shown = np.ma.filled(np.ma.asarray(ax.images[0].get_array(), dtype=float), np.nan)
            np.testing.assert_allclose(shown, _percentiles(rdm), equal_nan=True)
            assert ax.images[0].get_clim() == (0, 100)
            ticks = {t.get_text() for t in ax.get_xticklabels()} | {t.get_text() for t in ax.get_yticklabels()}
            assert {"face", "body", "object"} <= ticks
    colourbars = [ax for ax in fig.axes if ax.get_ylabel() == "dissimilarity (percentile)"]
    assert len(colourbars) == 1  # one shared colour scale
    assert (tmp_path / "rdms.png").stat().st_size > 0
    assert (tmp_path / "rdms.pdf").read_bytes().startswith(b"%PDF")


# --------------------------------------------------------------------------- MDS
def test_rdm_mds_places_layers_and_brains(tmp_path):
    scores = make_scores()
    fig = plot_rdm_mds(scores, [tmp_path / "mds.png", tmp_path / "mds.svg"])
    ax = fig.axes[0]
    (layers,) = _labelled(ax, "toy layer RDMs")
    (brains,) = _labelled(ax, "brain RDMs")
    assert len(layers.get_offsets()) == len(LAYERS)
    assert len(brains.get_offsets()) == len(ROIS)
    np.testing.assert_allclose(layers.get_array(), scores["depth"].values)  # coloured by depth
    assert np.allclose(brains.get_facecolors()[:, :3], 0)  # black
    # the drawn configuration reproduces the RDM distances (Kruskal stress-1)
    points = np.vstack([layers.get_offsets(), brains.get_offsets()])
    drawn, given = pdist(points), squareform(scores["rdm_distance"].values, checks=False)
    assert np.sqrt(((drawn - given) ** 2).sum() / (drawn ** 2).sum()) < 0.2
    assert np.corrcoef(drawn, given)[0, 1] > 0.9
    assert ax.get_xlabel().startswith("MDS 1") and ax.get_ylabel().startswith("MDS 2")
    texts = {t.get_text() for t in ax.texts}
    assert {"brain: early", "brain: late"} <= texts
    assert any(other.get_ylabel() == "relative depth" for other in fig.axes[1:])
    _no_legend_over_axes(fig)
    assert b"<svg" in (tmp_path / "mds.svg").read_bytes()[:500]


# --------------------------------------------------------------------------- time curves
def test_time_curves(tmp_path):
    scores = make_time_scores()
    fig = plot_time_curves(scores, [tmp_path / "time.png"])
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_xlabel() == "time (ms)"]
    assert len(panels) == len(ROIS)
    best_depth = scores["depth"].values[scores["score_mean"].argmax("layer").transpose("roi", "time").values]
    for ax, roi in zip(panels, ROIS):
        assert ax.get_title() == f"ROI: {roi}"
        lines = [line for line in ax.lines if line.get_label() in LAYERS]
        assert len(lines) == len(LAYERS)
        for line in lines:
            np.testing.assert_allclose(line.get_xdata(), TIMES * 1000)
        np.testing.assert_allclose(lines[2].get_ydata(), scores["score_mean"].sel(roi=roi, layer=LAYERS[2]))
        # marks where the best layer at that time is FDR-significant, coloured by its depth
        mean = scores["score_mean"].sel(roi=roi).transpose("layer", "time").values
        p = scores["p_fdr"].sel(roi=roi).transpose("layer", "time").values
        sig = p[mean.argmax(axis=0), np.arange(TIMES.size)] < 0.05
        marks = _labelled(ax, "best layer p_FDR < 0.05 (colour: its depth)")
        assert sig.any() and len(marks) == 1
        np.testing.assert_allclose(marks[0].get_offsets()[:, 0], TIMES[sig] * 1000)
        np.testing.assert_allclose(marks[0].get_array(), best_depth[ROIS.index(roi)][sig])
    assert panels[0].get_ylabel() == METRIC_LABEL
    # the ceiling band is drawn where the ceiling is finite (ROI "early", t > 0) and not for ROI "late"
    (band,) = _labelled(panels[0], "noise ceiling")
    band_x = np.concatenate([path.vertices[:, 0] for path in band.get_paths()])
    assert band_x.min() >= 0 and band_x.max() == pytest.approx(TIMES.max() * 1000)
    assert not _labelled(panels[1], "noise ceiling")
    assert any(ax.get_ylabel() == "relative depth" for ax in fig.axes)
    assert "toy" in fig.get_suptitle() and "synthetic" in fig.get_suptitle()
    _no_legend_over_axes(fig)


def test_time_resolved_files_draw_time_curves_not_layer_curves(tmp_path):
    path = write_netcdf(make_time_scores(), tmp_path / "rsa.nc")
    for fig in (plot_file(path, [tmp_path / "auto.png"]),
                plot_layer_curves(make_time_scores(), [tmp_path / "direct.png"])):
        assert any(ax.get_xlabel() == "time (ms)" for ax in fig.axes)
        assert not any(ax.get_xlabel().startswith("layer") for ax in fig.axes)


# --------------------------------------------------------------------------- plot_file and CLI
def test_plot_file_dispatch_and_missing_variables(tmp_path):
    static = write_netcdf(make_scores(), tmp_path / "static.nc")
    timed = write_netcdf(make_time_scores(), tmp_path / "timed.nc")
    assert any(ax.images for ax in plot_file(static, [tmp_path / "r.png"], figure="rdms").axes)
    assert plot_file(static, [tmp_path / "m.png"], figure="mds").axes[0].get_xlabel().startswith("MDS 1")
    assert any(ax.get_xlabel().startswith("layer") for ax in plot_file(static, [tmp_path / "a.png"]).axes)
    with pytest.raises(ValueError, match=r"timed\.nc.*'rdms'.*'brain_rdm'"):
        plot_file(timed, [tmp_path / "x.png"], figure="rdms")
    with pytest.raises(ValueError, match="'rdm_distance'"):
        plot_file(timed, [tmp_path / "x.png"], figure="mds")
    with pytest.raises(ValueError, match="dimension 'time'"):
        plot_file(static, [tmp_path / "x.png"], figure="time")
    with pytest.raises(ValueError, match="'similarity'"):
        plot_file(static, [tmp_path / "x.png"], figure="heatmap")
    assert not (tmp_path / "x.png").exists()


def _cli():
    script = Path(sys.executable).with_name("brainalign")
    return [str(script)] if script.exists() else [sys.executable, "-m", "brainalign.cli"]


def test_cli_draws_rdms_and_names_missing_variable(tmp_path):
    static = write_netcdf(make_scores(), tmp_path / "static.nc")
    png, svg = tmp_path / "out" / "rdms.png", tmp_path / "out" / "rdms.svg"
    done = subprocess.run([*_cli(), "plot", str(static), "--figure", "rdms", "-o", str(png), str(svg)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000
    assert b"<svg" in svg.read_bytes()[:500] and svg.stat().st_size > 1000

    timed = write_netcdf(make_time_scores(), tmp_path / "timed.nc")
    failed = subprocess.run([*_cli(), "plot", str(timed), "--figure", "rdms", "-o", str(tmp_path / "no.png")],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode != 0
    assert "brain_rdm" in failed.stderr and "timed.nc" in failed.stderr
    assert not (tmp_path / "no.png").exists()
