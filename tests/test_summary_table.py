"""The summary table (best layer per model x ROI, ceiling-normalised) and the caption settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from brainalign.figures.captions import CATEGORIES, metric_category, settings_sentence
from brainalign.figures.summary_table import cell_text, summary_frame
from brainalign.io import write_netcdf
from brainalign.jobs.summary import collect_file, collect_scores
from brainalign.figures import plot_file
from test_model_summary import scores_file


def test_table_numbers_are_the_summary_files(tmp_path):
    paths = {"deep": scores_file(tmp_path / "a.nc", 10, peak=8), "short": scores_file(tmp_path / "c.nc", 5, peak=2)}
    summary = collect_scores(paths)
    frame = summary_frame(summary)
    assert list(frame["model"]) == ["deep", "deep", "short", "short"] and list(frame["roi"]) == ["IT", "V1"] * 2
    assert list(frame["best_layer"]) == ["l8", "l8", "l2", "l2"]
    # scores_file: peak 0.3 (IT) / 0.4 (V1); bootstrap CI +-0.02; ceilings (0.4, 0.6) and (0.5, 0.7)
    np.testing.assert_allclose(frame["score"], [0.3, 0.4, 0.3, 0.4])
    np.testing.assert_allclose(frame["ci_low"], [0.28, 0.38, 0.28, 0.38])
    np.testing.assert_allclose(frame["normalised"], [0.3 / 0.6, 0.4 / 0.7, 0.3 / 0.6, 0.4 / 0.7])
    np.testing.assert_allclose(frame["normalised_ci_high"], [0.32 / 0.6, 0.42 / 0.7, 0.32 / 0.6, 0.42 / 0.7])
    assert frame["best_time_ms"].isna().all()
    assert cell_text(frame.iloc[1]) == "l8\n0.400 [0.380, 0.420]\n57% of ceiling"


def test_time_resolved_table_gives_the_peak_time_and_its_ceiling(tmp_path):
    path = scores_file(tmp_path / "t.nc", 6, peak=3, time=True)  # times 0.1 (scores x 0.5) and 0.2
    data = xr.open_dataset(path).load()
    data = data.assign(score_mean=data["score_mean"][::-1].assign_coords(time=data["time"]))  # peak at 0.1 s now
    data["ceiling_high"] = (("time", "roi"), [[0.9, 0.8], [0.95, 0.85]])
    write_netcdf(data, tmp_path / "t2.nc")
    summary = collect_scores({"m": tmp_path / "t2.nc"})
    np.testing.assert_allclose(summary["best_time"].values, [[0.1, 0.1]])
    np.testing.assert_allclose(summary["best_ceiling_high"].values, [[0.9, 0.8]])  # at the peak time
    np.testing.assert_allclose(summary["ceiling_high"].values, [0.95, 0.85])  # the band: max over time
    frame = summary_frame(summary)
    np.testing.assert_allclose(frame["best_time_ms"], [100.0, 100.0])
    np.testing.assert_allclose(frame["normalised"], frame["score"] / np.array([0.9, 0.8]))
    assert cell_text(frame.iloc[0]).startswith("l3 @ 100 ms\n")


def test_distances_are_not_ceiling_normalised(tmp_path):
    summary = collect_scores({"m": scores_file(tmp_path / "a.nc", 4, peak=1)})
    summary.attrs["higher_is_better"] = 0
    assert summary_frame(summary)["normalised"].isna().all()


def test_table_figure_and_csv_from_the_summary_file_alone(tmp_path):
    paths = {"deep": scores_file(tmp_path / "a.nc", 10, peak=8), "short": scores_file(tmp_path / "c.nc", 5, peak=2)}
    summary_path = collect_file(paths, tmp_path / "summary.nc")
    out = [tmp_path / "table.png", tmp_path / "table.svg", tmp_path / "table.csv"]
    fig = plot_file(summary_path, out, figure="table")
    table = fig.axes[0].tables[0]
    cells = table.get_celld()
    # header row: the ROIs; row labels: the models; body: one cell per model x ROI
    assert [cells[0, c].get_text().get_text() for c in range(2)] == ["IT", "V1"]
    assert [cells[r, -1].get_text().get_text() for r in (1, 2)] == ["deep", "short"]
    assert cells[2, 1].get_text().get_text() == "l2\n0.400 [0.380, 0.420]\n57% of ceiling"
    assert fig.axes[1].get_ylabel() == "score / noise ceiling (upper bound)"
    assert "best layer per model and ROI" in fig._suptitle.get_text()
    assert out[0].stat().st_size > 10_000 and out[1].read_text().startswith("<?xml")
    csv = pd.read_csv(out[2])
    expected = summary_frame(collect_scores(paths))
    expected["normalised_note"] = expected["normalised_note"].replace("", np.nan)  # an empty CSV cell reads as NaN
    pd.testing.assert_frame_equal(csv, expected, check_dtype=False, rtol=1e-5)


def test_table_without_best_layers_names_the_variable(tmp_path):
    write_netcdf(xr.Dataset({"best_score": (("model", "roi"), np.zeros((1, 1)))},
                            coords={"model": ["m"], "roi": ["r"]}), tmp_path / "s.nc")
    with pytest.raises(ValueError, match="best_ci_low"):
        plot_file(tmp_path / "s.nc", [tmp_path / "x.png"], figure="table")


def test_every_metric_has_a_report_category():
    assert CATEGORIES == ("Stimuli", "Models", "Brain data", "RSA", "CKA", "Encoding", "Reading", "Probing",
                          "Human judgements", "Geometry", "Summary")
    assert [metric_category(m) for m in ("rsa", "cka", "procrustes", "mutual_knn", "encoding", "surprisal", "probe",
                                         "word_similarity")] == \
        ["RSA", "CKA", "CKA", "CKA", "Encoding", "Reading", "Probing", "Human judgements"]
    with pytest.raises(ValueError, match="'lda'"):
        metric_category("lda")


def test_settings_sentences_state_what_made_the_figure():
    rsa = settings_sentence("rsa", {"rdm_method": "correlation", "comparison": "spearman", "n_permutations": 1000,
                                    "bootstrap": "stimuli", "n_bootstrap": 1000}, seed=2026, confidence=0.95)
    assert rsa == ("Settings: metric RSA: ``correlation`` RDMs compared by ``spearman``; no cross-validation "
                   "(all stimuli); 1000 permutations of stimulus labels; 1000 bootstrap samples over stimuli; "
                   "95% intervals; seed 2026.")
    enc = settings_sentence("encoding", {"alphas": [0.1, 1e6], "outer_folds": 5, "inner_folds": "loo",
                                         "groups": "run", "ceiling": "ncsnr"}, seed=7, confidence=0.9)
    assert "5-fold outer cross-validation over stimuli grouped by ``run``" in enc
    assert "ridge alpha per target by leave-one-out inner cross-validation over 2 alphas from 0.1 to 1e+06" in enc
    assert "noise ceiling ``ncsnr``" in enc and "no bootstrap" in enc and enc.endswith("90% intervals; seed 7.")
    split = settings_sentence("encoding", {"split": "partition"}, seed=1)
    assert "the fixed train/test split in coordinate ``partition``" in split
    cka = settings_sentence("cka", {"kernel": "rbf", "debiased": True, "n_permutations": 0, "n_bootstrap": 10},
                            seed=3)
    # the RBF kernel has the biased estimator only, whatever `debiased` says
    assert "rbf kernel, biased HSIC estimator" in cka and "no permutation test" in cka
    assert "10 subsamples of half the stimuli without replacement" in cka
