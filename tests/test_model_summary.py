"""Several models' scores gathered on one relative-depth axis, and the comparison figure."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from brainalign.io import read_netcdf, write_netcdf
from brainalign.jobs.summary import collect_file, collect_scores
from brainalign.figures import plot_file


def scores_file(path, n_layers: int, peak: int, rois=("IT", "V1"), boot=True, time=False):
    rng = np.random.default_rng(n_layers)
    mean = np.stack([np.exp(-0.5 * ((np.arange(n_layers) - peak) / 2.0) ** 2) * (0.3 + 0.1 * j)
                     for j in range(len(rois))], axis=1)  # (layer, roi)
    dims = ("layer", "roi")
    data = {"score": (("layer", "subject", "roi"), mean[:, None, :] + rng.normal(0, 0.01, (n_layers, 3, len(rois)))),
            "score_mean": (dims, mean), "ci_low": (dims, mean - 0.05), "ci_high": (dims, mean + 0.05),
            "boot_ci_low": (dims, mean - 0.02 if boot else np.full_like(mean, np.nan)),
            "boot_ci_high": (dims, mean + 0.02 if boot else np.full_like(mean, np.nan)),
            "ceiling_low": ("roi", [0.4, 0.5]), "ceiling_high": ("roi", [0.6, 0.7])}
    ds = xr.Dataset(data, coords={"layer": [f"l{i}" for i in range(n_layers)], "roi": list(rois),
                                  "depth": ("layer", np.linspace(0, 1, n_layers)), "subject": ["a", "b", "c"]},
                    attrs={"metric": "rsa", "dataset": "toy", "higher_is_better": 1, "confidence": 0.95,
                           "bootstrap": "stimuli", "seed": 1})
    if time:
        ds = xr.concat([ds * 0.5, ds], dim=xr.DataArray([0.1, 0.2], dims="time", name="time"))
        ds.attrs.update(metric="rsa", dataset="toy", higher_is_better=1)
    write_netcdf(ds, path)
    return path


def test_collect_pads_models_and_finds_each_best_layer(tmp_path):
    paths = {"deep": scores_file(tmp_path / "a.nc", 10, peak=8),
             "deep_untrained": scores_file(tmp_path / "b.nc", 10, peak=1, boot=False),
             "short": scores_file(tmp_path / "c.nc", 5, peak=2)}
    out = collect_scores(paths, control_of={"deep_untrained": "deep"})
    assert dict(out.sizes) == {"model": 3, "slot": 10, "roi": 2}
    assert list(out["control_of"].values) == ["", "deep", ""]
    assert np.isnan(out["score_mean"].sel(model="short").values[5:]).all()
    assert list(out["best_layer"].sel(roi="IT").values) == ["l8", "l1", "l2"]
    np.testing.assert_allclose(out["best_depth"].sel(roi="IT").values, [8 / 9, 1 / 9, 0.5])
    np.testing.assert_allclose(out["best_score"].sel(roi="V1").values, [0.4, 0.4, 0.4])
    # The stimulus bootstrap interval where the file has one, else the across-subject one.
    assert list(out["ci_kind"].values) == ["bootstrap (stimuli)", "across subjects", "bootstrap (stimuli)"]
    np.testing.assert_allclose(out["best_ci_low"].sel(roi="IT").values, [0.28, 0.25, 0.28])
    np.testing.assert_allclose(out["ceiling_low"].values, [0.4, 0.5])


def test_time_resolved_scores_are_taken_at_the_peak_time(tmp_path):
    out = collect_scores({"m": scores_file(tmp_path / "t.nc", 6, peak=3, time=True),
                          "n": scores_file(tmp_path / "u.nc", 6, peak=1, time=True)})
    np.testing.assert_allclose(out["best_score"].sel(roi="IT").values, [0.3, 0.3])


def test_mismatched_rois_name_the_file(tmp_path):
    a = scores_file(tmp_path / "a.nc", 4, peak=1)
    b = scores_file(tmp_path / "b.nc", 4, peak=1, rois=("IT", "V4"))
    with pytest.raises(ValueError, match=r"b\.nc: ROIs \['V1'\] are missing"):
        collect_scores({"a": a, "b": b})


def test_comparison_figure_draws_one_curve_per_model(tmp_path):
    paths = {"deep": scores_file(tmp_path / "a.nc", 10, peak=8),
             "deep_untrained": scores_file(tmp_path / "b.nc", 10, peak=1),
             "short": scores_file(tmp_path / "c.nc", 5, peak=2)}
    summary = collect_file(paths, tmp_path / "summary.nc", control_of={"deep_untrained": "deep"})
    assert read_netcdf(summary).attrs["brainalign_version"]
    fig = plot_file(summary, [tmp_path / "models.png", tmp_path / "models.svg"])
    assert (tmp_path / "models.png").stat().st_size > 10_000 and (tmp_path / "models.svg").exists()
    ax = fig.axes[0]
    curves = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in curves] == ["deep", "deep_untrained", "short"]
    assert curves[1].get_linestyle() == "--" and curves[0].get_color() == curves[1].get_color()
    assert "relative depth" in ax.get_xlabel() and ax.get_ylabel() == "rsa"
    assert len(fig.axes) == 2  # one panel per ROI
