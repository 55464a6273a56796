"""A model's word surprisal on Natural Stories against the GPT-3 (davinci) surprisal that ships with
the corpus (``all_stories_gpt3.csv``: log probabilities of every subword token with its character
offset in the story), aligned word by word through the character offsets.

    python tools/naturalstories_gpt3.py results/activations/naturalstories/smollm2.nc \\
        [--corpus ../shared/data/naturalstories]

Prints Pearson and Spearman r over the words both give a value to, with 95% intervals from a
bootstrap over stories.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "naturalstories"


def gpt3_word_surprisal(corpus: Path = DEFAULT_CORPUS):
    """The Natural Stories word set and GPT-3's surprisal (bits) of each word (NaN for first words)."""
    from brainalign.stimuli import read_stimulus_table
    from brainalign.words import sum_token_values

    corpus = Path(corpus)
    table = pd.read_csv(corpus / "all_stories_gpt3.csv", keep_default_na=False)
    tokens = pd.DataFrame({"group": (table["story"] + 1).astype(str), "offset": table["offset"],
                           "token": table["token"],
                           "value": -pd.to_numeric(table["logprob"], errors="coerce") / np.log(2)})
    stimuli = read_stimulus_table({"kind": "words", "path": str(corpus / "all_stories.tok"),
                                   "group_column": "item", "position_column": "zone"})
    return stimuli, sum_token_values(stimuli, tokens, what=str(corpus / "all_stories_gpt3.csv"))


def main(argv=None):
    from scipy.stats import pearsonr, spearmanr

    from brainalign.io import read_activations
    from brainalign.stimuli import align_to

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("activations")
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args(argv)
    stimuli, gpt3 = gpt3_word_surprisal(Path(args.corpus))
    layers, attrs = read_activations(args.activations)
    found = [da for da in layers if str(da["layer"].item()) == "surprisal"]
    if not found:
        raise SystemExit(f"{args.activations}: no 'surprisal' layer (models.<name>.surprisal: true)")
    ours = align_to(found[0], stimuli["stimulus_id"].values).values[:, 0].astype(float)
    groups = stimuli["group"].values.astype(str)
    ok = np.isfinite(ours) & np.isfinite(gpt3)
    r, rho = pearsonr(ours[ok], gpt3[ok])[0], spearmanr(ours[ok], gpt3[ok])[0]
    rng = np.random.default_rng(0)
    labels = np.unique(groups)
    boot = []
    for _ in range(args.bootstrap):
        rows = np.concatenate([np.flatnonzero((groups == g) & ok) for g in rng.choice(labels, len(labels))])
        boot.append((pearsonr(ours[rows], gpt3[rows])[0], spearmanr(ours[rows], gpt3[rows])[0]))
    (r_lo, rho_lo), (r_hi, rho_hi) = np.percentile(np.array(boot), [2.5, 97.5], axis=0)
    print(f"{attrs.get('model_name', '')} ({attrs.get('context_policy')}, {attrs.get('context_tokens')} tokens, stride "
          f"{attrs.get('context_stride')}) vs GPT-3 davinci surprisal, {ok.sum()} words: Pearson r = {r:.3f} "
          f"[{r_lo:.3f}, {r_hi:.3f}], Spearman rho = {rho:.3f} [{rho_lo:.3f}, {rho_hi:.3f}] (95%, stories resampled); "
          f"mean surprisal {np.nanmean(ours[ok]):.2f} vs {np.nanmean(gpt3[ok]):.2f} bits")


if __name__ == "__main__":
    main()
