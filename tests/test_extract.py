"""Real MiniLM forward passes: every hidden state, pooled as configured."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainalign.config import resolve_source
from brainalign.jobs.extract import extract_activations
from brainalign.io import read_activations
from brainalign.models import load_model
from brainalign.models.text import pool_tokens
from brainalign.stimuli import load_stimulus_table

SENTENCES = ["The cat sat on the mat.", "Heavy rain flooded the narrow streets of the old town today.", "Bread."]


@pytest.fixture(scope="module")
def reference(minilm_spec):
    """Hidden states of each sentence run alone (no padding) through transformers."""
    from transformers import AutoModel, AutoTokenizer

    where, _ = resolve_source(minilm_spec["source"])
    tok = AutoTokenizer.from_pretrained(where)
    model = AutoModel.from_pretrained(where).eval()
    out = []
    with torch.inference_mode():
        for s in SENTENCES:
            enc = tok(s, return_tensors="pt")
            out.append([h[0].numpy() for h in model(**enc, output_hidden_states=True).hidden_states])
    return out


@pytest.mark.parametrize("pooling", ["mean", "first", "last"])
def test_batched_pooling_matches_unpadded_reference(minilm_spec, reference, pooling):
    model = load_model("minilm", {**minilm_spec, "pooling": pooling})
    batch = model.encode(SENTENCES)  # padded to the longest sentence
    assert len(batch) == 7 == len(reference[0])
    for layer in range(7):
        for i in range(len(SENTENCES)):
            states = reference[i][layer]
            expected = {"mean": states.mean(0), "first": states[0], "last": states[-1]}[pooling]
            np.testing.assert_allclose(batch[layer][i], expected, atol=2e-5, rtol=1e-4)


def test_pool_tokens_left_padding():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float64).reshape(2, 4, 1)
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])  # left-padded first row
    assert pool_tokens(hidden, mask, "first")[:, 0].tolist() == [2.0, 4.0]
    assert pool_tokens(hidden, mask, "last")[:, 0].tolist() == [3.0, 7.0]
    assert pool_tokens(hidden, mask, "mean")[:, 0].tolist() == [2.5, 5.5]


def test_layer_subset_keeps_indices_and_depth(tmp_path, stimuli_csv, minilm_spec, minilm_activations):
    stimuli = load_stimulus_table(stimuli_csv)
    out = tmp_path / "subset.nc"
    extract_activations(stimuli, "minilm", {**minilm_spec, "layers": [0, 3, 6], "batch_size": 7}, out,
                        progress=False)
    layers, attrs = read_activations(out)
    assert [int(d["layer_index"]) for d in layers] == [0, 3, 6]
    assert [float(d["depth"]) for d in layers] == [0.0, 0.5, 1.0]
    assert [str(d["layer"].item()) for d in layers] == ["embeddings", "block_03", "block_06"]
    full, _ = read_activations(minilm_activations)
    # A different batch size changes padding, not the pooled representation.
    for d in layers:
        np.testing.assert_allclose(d.values, full[int(d["layer_index"])].values, atol=2e-5, rtol=1e-4)


def test_extraction_is_reproducible(tmp_path, stimuli_csv, minilm_spec, minilm_activations):
    out = tmp_path / "again.nc"
    extract_activations(load_stimulus_table(stimuli_csv), "minilm", minilm_spec, out, seed=0, progress=False)
    a, attrs_a = read_activations(out)
    b, attrs_b = read_activations(minilm_activations)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.values, y.values)
    assert attrs_a["model_checksum"] == attrs_b["model_checksum"] != ""


def test_out_of_range_layer_names_the_key(minilm_spec):
    with pytest.raises(ValueError, match=r"models\.minilm\.layers"):
        load_model("minilm", {**minilm_spec, "layers": [0, 9]})


def test_hub_ids_stay_hub_ids():
    assert resolve_source("sentence-transformers/all-MiniLM-L6-v2") == ("sentence-transformers/all-MiniLM-L6-v2", False)
    with pytest.raises(FileNotFoundError):
        resolve_source("./models/missing")
