"""Words in context: one vector per word from a language model run over its story.

A word stimulus set (:mod:`brainalign.words`) is laid out group by group (story, passage)
as one text; the tokenizer's offset mapping assigns every token to the word whose characters
it covers (a token of whitespace only, such as a byte-level BPE's lone ``Ġ``, belongs to the
word after it), so no token string is ever parsed. The model then runs under a context policy:

``none``
    each word alone (its own text), as sentence stimuli are run.
``group``
    one forward pass over the whole group; it must fit the model's positions.
``window`` (``tokens`` N, ``stride`` S)
    passes over consecutive chunks of whole words of at most S tokens (the targets), each
    preceded by the N tokens before the chunk as left context (fewer at the group's start).
    Each word thus sees at least N (at most N + S - 1) tokens of left context, recorded per
    word as ``context_tokens``; a group of T tokens costs about T (N + S) / S token
    positions, so ``stride: 1`` (one pass per word, exactly N tokens of context) is the
    slow exact case and S = N costs two passes' worth.

Every pass is wrapped in the tokenizer's own special tokens (``[CLS] ... [SEP]`` for BERT,
nothing for SmolLM2). A word's vector pools its own tokens' states (``word_pooling``:
``last``, ``mean`` or ``first``), so special tokens never enter it.

For causal language models, :func:`word_surprisal` terms come from the same passes:
the surprisal of a word is the sum over its tokens of -log2 p(token | everything before
it in the pass), and its entropy is that of the next-token distribution before its first
token (bits). The first word of a group has no context to be predicted from: NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..stimuli import StimulusError

POLICIES = ("none", "group", "window")
WORD_POOLINGS = ("last", "mean", "first")


@dataclass(frozen=True)
class ContextPolicy:
    policy: str = "none"
    tokens: int = 0       # left context of a window
    stride: int = 0       # target tokens per window pass

    @classmethod
    def from_spec(cls, spec: dict | None, key: str) -> "ContextPolicy":
        spec = dict(spec or {})
        policy = spec.get("policy", "none")
        if policy not in POLICIES:
            raise ValueError(f"config key '{key}.policy': unknown '{policy}' (use one of {list(POLICIES)})")
        if policy != "window":
            return cls(policy)
        tokens = int(spec.get("tokens", 256))
        stride = int(spec.get("stride", tokens))
        if tokens < 1 or stride < 1:
            raise ValueError(f"config key '{key}': tokens and stride must be at least 1")
        return cls(policy, tokens, stride)

    def attrs(self) -> dict:
        return {"context_policy": self.policy, "context_tokens": self.tokens, "context_stride": self.stride}


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text (``[CLS]``, ``[SEP]``; a BOS)."""
    probe = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(probe) + 1):
        if full[i:i + len(probe)] == probe:
            return full[:i], full[i + len(probe):]
    return [], []


def align_tokens(text: str, spans: np.ndarray, offsets, words, what: str) -> np.ndarray:
    """The word index of every token of ``text`` (``offsets``: the tokenizer's (start, end)
    per token; ``spans``: each word's character span). Checks that every word's tokens cover
    exactly its characters; a word without tokens of its own, a token across two words or a
    character no token covers is an error naming the word and ``what`` (its group)."""
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    starts, ends = offsets[:, 0].copy(), offsets[:, 1].copy()
    for t in range(len(starts)):  # whitespace belongs to no word
        while starts[t] < ends[t] and text[starts[t]].isspace():
            starts[t] += 1
        while ends[t] > starts[t] and text[ends[t] - 1].isspace():
            ends[t] -= 1
    word = np.searchsorted(spans[:, 0], starts, side="right") - 1
    blank = starts >= ends
    for t in np.flatnonzero(~blank):
        w = word[t]
        if w < 0 or ends[t] > spans[w, 1]:
            inside = [words[i] for i in range(len(spans)) if spans[i, 0] < ends[t] and spans[i, 1] > starts[t]]
            raise StimulusError(f"{what}: a token covers {text[starts[t]:ends[t]]!r}, across the words {inside}")
    # a whitespace-only token joins the next word with tokens of its own
    following = np.full(len(word), -1)
    nxt = -1
    for t in range(len(word) - 1, -1, -1):
        if not blank[t]:
            nxt = word[t]
        following[t] = nxt
    word = np.where(blank, following, word)
    if (word < 0).any():
        raise StimulusError(f"{what}: trailing tokens cover no word")
    counts = np.bincount(word, minlength=len(spans))
    if (counts == 0).any():
        w = int(np.flatnonzero(counts == 0)[0])
        raise StimulusError(f"{what}: the word {words[w]!r} (position {w + 1}) has no tokens of its own; "
                            "the tokenizer merges it with a neighbour")
    for w in range(len(spans)):
        mine = ~blank & (word == w)
        covered = np.array([c.isspace() for c in text[spans[w, 0]:spans[w, 1]]], bool)  # a sentence's spaces
        for s, e in zip(starts[mine], ends[mine]):
            covered[s - spans[w, 0]:e - spans[w, 0]] = True
        if not covered.all():
            missing = "".join(c for c, ok in zip(words[w], covered) if not ok)
            raise StimulusError(f"{what}: the tokens of the word {words[w]!r} (position {w + 1}) leave "
                                f"{missing!r} uncovered")
    return word


def tokenize_group(tokenizer, text: str, spans: np.ndarray, words, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of a group's text (no special tokens, no truncation) and each token's word."""
    import logging

    logger = logging.getLogger("transformers.tokenization_utils_base")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "sequence longer than the maximum": passes are cut later
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
    finally:
        logger.setLevel(level)
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    return ids, align_tokens(text, spans, enc["offset_mapping"], words, what)


@dataclass(frozen=True)
class Pass:
    """One forward pass: group tokens [start, stop), whose words from ``first_word`` to
    ``last_word`` (exclusive) are targets (their tokens begin at ``target``)."""
    start: int
    target: int
    stop: int
    first_word: int
    last_word: int


def plan_passes(word_of_token: np.ndarray, n_words: int, policy: ContextPolicy) -> list[Pass]:
    """The passes over one group's tokens (``policy`` ``group`` or ``window``)."""
    bounds = np.searchsorted(word_of_token, np.arange(n_words + 1))  # token range of each word
    n_tokens = len(word_of_token)
    if policy.policy != "window":
        return [Pass(0, 0, n_tokens, 0, n_words)]
    passes, w = [], 0
    while w < n_words:
        end = w + 1
        while end < n_words and bounds[end + 1] - bounds[w] <= policy.stride:
            end += 1
        target, stop = int(bounds[w]), int(bounds[end])
        passes.append(Pass(max(0, target - policy.tokens), target, stop, w, end))
        w = end
    return passes


def pool_word(states, positions: list[np.ndarray], pooling: str):
    """(tokens, unit) states -> (words, unit): each word's ``last``, ``first`` or ``mean`` token."""
    import torch

    if pooling == "last":
        return states[[int(p[-1]) for p in positions]]
    if pooling == "first":
        return states[[int(p[0]) for p in positions]]
    if pooling == "mean":
        return torch.stack([states[torch.as_tensor(p)].mean(0) for p in positions])
    raise ValueError(f"unknown word pooling '{pooling}' (use one of {list(WORD_POOLINGS)})")


def token_log_probs(logits, ids):
    """log p(ids[t] | ids[:t]) in nats for t >= 1 (from ``logits`` (tokens, vocab), float64),
    and the next-token entropy (nats) at every position."""
    import torch

    logp = torch.log_softmax(logits.double(), dim=-1)
    picked = logp[:-1].gather(1, ids[1:, None])[:, 0]
    entropy = -(logp.exp() * logp).sum(-1)
    return picked, entropy


LN2 = float(np.log(2.0))


def unit_surprisal(logp_next, entropy, positions: list[np.ndarray]):
    """Per unit (word): surprisal (bits) as the sum over its tokens of -log2 p(token | earlier
    tokens of the pass), and the entropy (bits) of the next-token distribution just before its
    first token. ``logp_next[t]`` is log p(token t+1 | tokens <= t) (nats); ``positions`` are
    each unit's token positions in the pass; a unit whose first token has no earlier token in
    the pass (the first word of a group, for a tokenizer without a BOS token) gets NaN."""
    logp = np.asarray(logp_next, dtype=np.float64)
    ent = np.asarray(entropy, dtype=np.float64)
    surprisal = np.full(len(positions), np.nan)
    before = np.full(len(positions), np.nan)
    for i, p in enumerate(positions):
        if p[0] >= 1:
            surprisal[i] = -logp[np.asarray(p) - 1].sum() / LN2
            before[i] = ent[p[0] - 1] / LN2
    return surprisal, before
