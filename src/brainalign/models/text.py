"""Language models from transformers: every hidden state, pooled over tokens.

``hf_text`` loads any transformers encoder or decoder (hub id or local folder);
``hf_gguf`` loads a GGUF checkpoint through transformers' ``gguf_file=``
(de-quantised to the configured dtype).

Sentence stimuli are pooled over their tokens (``pooling``), leaving out the tokens that
``exclude_tokens`` names: ``auto`` (the default) keeps every token of a bidirectional
encoder (sentence-transformers' mean pooling) and leaves out special tokens and the first
token of a causal decoder (whose first position carries the "attention sink": activations
hundreds of times larger than the rest, which dominate a mean); ``none``, ``special`` and
``special_and_first`` choose explicitly.

``prefix_space: true`` puts a space before every stimulus encoded on its own (a word or sentence
without context): byte-level BPE tokenizers (GPT-2, SmolLM2) then give a word the token it has in
running text (``Ġold``) instead of a rarer word-initial piece (``old``, or ``str`` + ``ange``).

Units in context (word stimulus sets, or sentences grouped into passages) run group by group
under the ``context`` policy (:mod:`brainalign.models.context`), one vector per unit pooled
from its own tokens (``word_pooling``: ``auto`` is ``last`` for causal models, ``mean``
otherwise). With ``surprisal: true`` (causal models, ``group`` or ``window`` context) the file
gains two one-unit layers after the hidden states: ``surprisal`` and ``entropy`` (bits).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..config import resolve_source
from ..io import file_checksum
from ..metrics.backend import numpy_dtype, resolve_device
from .hardware import dispatch_kwargs, dtype_name, input_device, model_dtype
from .context import (ContextPolicy, plan_passes, pool_word, special_tokens, token_log_probs, tokenize_group,
                      unit_surprisal)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
EXCLUDE_TOKENS = ("auto", "none", "special", "special_and_first")
SCALAR_LAYERS = ("surprisal", "entropy")


def is_causal(config) -> bool:
    """A decoder-only language model (its architecture has a causal-LM head and no masked-LM one)."""
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    model_type = getattr(config, "model_type", "")
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def pooling_mask(attention_mask: torch.Tensor, special_mask: torch.Tensor, exclude: str) -> torch.Tensor:
    """The tokens a sentence pools over: real tokens, less special tokens (``special``) and the
    first remaining token (``special_and_first``); a row left empty keeps its real tokens."""
    keep = attention_mask.bool()
    if exclude in ("special", "special_and_first"):
        keep = keep & ~special_mask.bool()
    if exclude == "special_and_first":
        first = keep.int().argmax(1)
        several = keep.sum(1) > 1
        keep[torch.arange(keep.shape[0])[several], first[several]] = False
    empty = keep.sum(1) == 0
    keep[empty] = attention_mask.bool()[empty]
    return keep.to(attention_mask.dtype)


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool ``hidden`` (batch, token, unit) over real tokens (``mask`` = 1).

    ``mean`` averages real tokens; ``first`` and ``last`` take the first or last
    real token, whichever side the tokenizer pads on.
    """
    mask = mask.to(hidden.dtype)
    if pooling == "mean":
        return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    n_tokens = mask.shape[1]
    if pooling == "first":
        index = mask.argmax(1)
    elif pooling == "last":
        index = n_tokens - 1 - mask.flip(1).argmax(1)
    else:
        raise ValueError(f"unknown pooling '{pooling}' (use mean, first or last)")
    return hidden[torch.arange(hidden.shape[0]), index]


def layer_name(index: int) -> str:
    return "embeddings" if index == 0 else f"block_{index:02d}"


def hidden_state_layers(n_states: int, wanted, key: str):
    """Indices, names and relative depths of the hidden states a ``layers`` entry asks for."""
    indices = list(range(n_states)) if wanted == "all" else list(wanted)
    bad = [i for i in indices if i >= n_states]
    if bad:
        raise ValueError(f"config key '{key}': {bad} out of range; the model has hidden states 0..{n_states - 1}")
    return indices, [layer_name(i) for i in indices], [i / (n_states - 1) for i in indices]


class HFTextModel:
    """A transformers language model; hidden state 0 is the embedding output."""

    modality = "text"

    def __init__(self, name: str, spec: dict, base_dir=None, seed: int = 0):
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        self.name, self.spec, self.seed = name, spec, seed
        self.pooling = spec.get("pooling", "mean")
        self.max_length = int(spec.get("max_length", 128))
        self.device = resolve_device(spec.get("device", "auto"))
        self.dtype = model_dtype(spec.get("dtype"), self.device)
        where, self.local = resolve_source(spec["source"], base_dir)
        kwargs = self._load_kwargs(spec)
        self.commit = None
        if not self.local:  # a hub id: its pinned snapshot (the prefetch rule's), loaded offline
            from .hub import snapshot_of

            where, self.commit = snapshot_of(name, spec)
            kwargs["local_files_only"] = True
        self.context = ContextPolicy.from_spec(spec.get("context"), f"models.{name}.context")
        self.surprisal = bool(spec.get("surprisal", False))
        self.prefix_space = bool(spec.get("prefix_space", False))
        self.tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.surprisal:
            from transformers import AutoModelForCausalLM as AutoModel  # noqa: N814  (the LM head too)
        if spec.get("untrained"):  # the architecture with seeded random weights: the untrained control
            torch.manual_seed(int(spec.get("init_seed", seed)))
            self.model = AutoModel.from_config(AutoConfig.from_pretrained(where, **kwargs), dtype=self.dtype)
            self.model = self.model.to(self.device)
        else:
            dispatch = dispatch_kwargs(spec, self.device)
            self.model = AutoModel.from_pretrained(where, dtype=self.dtype, **kwargs, **dispatch)
            if not dispatch:
                self.model = self.model.to(self.device)
            self.device = input_device(self.model, self.device)
        self.model = self.model.eval()
        self.causal = is_causal(self.model.config)
        if self.surprisal and not self.causal:
            raise ValueError(f"config key 'models.{name}.surprisal': '{spec['source']}' is not a causal "
                             "language model (no next-token distribution)")
        if self.surprisal and self.context.policy == "none":
            raise ValueError(f"config key 'models.{name}.surprisal': needs context policy 'group' or 'window' "
                             "(a word alone has nothing to be predicted from)")
        exclude = spec.get("exclude_tokens", "auto")
        self.exclude = ("special_and_first" if self.causal else "none") if exclude == "auto" else exclude
        word_pooling = spec.get("word_pooling", "auto")
        self.word_pooling = ("last" if self.causal else "mean") if word_pooling == "auto" else word_pooling
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        n_states = self.model.config.num_hidden_layers + 1
        self.layer_indices, self.layer_names, self.depths = hidden_state_layers(
            n_states, spec.get("layers", "all"), f"models.{name}.layers")
        self.widths = [int(self.model.config.hidden_size)] * len(self.layer_indices)
        self.hidden_indices = list(self.layer_indices)
        if self.surprisal:
            self.layer_names += list(SCALAR_LAYERS)
            self.layer_indices += [n_states, n_states + 1]
            self.depths += [1.0, 1.0]
            self.widths += [1, 1]
        self.attrs = {
            "model_name": name,
            "model_kind": spec["kind"],
            "model_source": spec["source"],
            "model_path": where,
            "model_revision": self._revision(where),
            "model_checksum": self._checksum(where),
            "pooling": self.pooling,
            "max_length": self.max_length,
            "device": str(self.device),
            "dtype": dtype_name(self.dtype),
            "n_hidden_states": n_states,
            "causal": int(self.causal),
            "exclude_tokens": self.exclude,
            "word_pooling": self.word_pooling,
            "prefix_space": int(self.prefix_space),
            **self.context.attrs(),
            "surprisal_layers": ",".join(SCALAR_LAYERS) if self.surprisal else "",
            "tokenizer_class": type(self.tokenizer).__name__,
            "tokenizer_checksum": self._tokenizer_checksum(),
            "untrained": int(bool(spec.get("untrained", False))), "control_of": spec.get("control_of", ""),
        }
        if spec.get("untrained"):
            self.attrs["init_seed"] = int(spec.get("init_seed", seed))

    def _load_kwargs(self, spec) -> dict:
        return {}

    def _weight_files(self, where: str) -> list[Path]:
        return sorted(p for p in Path(where).iterdir() if p.suffix in WEIGHT_SUFFIXES)

    def _tokenizer_checksum(self) -> str:
        """SHA-256 of the tokenizer's full serialisation (vocabulary, merges, normaliser, specials)."""
        import hashlib

        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        text = backend.to_str() if backend is not None else repr(sorted(self.tokenizer.get_vocab().items()))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _checksum(self, where: str) -> str:
        digests = [f"{p.name}:{file_checksum(p)}" for p in self._weight_files(where)]
        return ";".join(digests)

    def _revision(self, where: str) -> str:
        return self.commit or "local"

    def _states(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden.float() if self.dtype in (torch.float16, torch.bfloat16) else hidden

    def _backbone(self):
        """The model that returns hidden states (the causal LM's base model when surprisal is on)."""
        return self.model.base_model if self.surprisal else self.model

    @torch.inference_mode()
    def encode(self, contents: list[str], pooling: str | None = None, exclude: str | None = None) -> list[np.ndarray]:
        if self.prefix_space:  # as the text would appear after another word (byte-level BPE: "Ġold", not "old")
            contents = [" " + str(c).lstrip() for c in contents]
        enc = self.tokenizer(list(contents), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt", return_special_tokens_mask=True).to(self.device)
        special = enc.pop("special_tokens_mask")
        out = self._backbone()(**enc, output_hidden_states=True)
        mask = pooling_mask(enc["attention_mask"], special, self.exclude if exclude is None else exclude)
        out_dtype = numpy_dtype(self.dtype)
        return [pool_tokens(self._states(out.hidden_states[i]), mask.to(out.hidden_states[i].device),
                            pooling or self.pooling)
                .cpu().numpy().astype(out_dtype) for i in self.hidden_indices]

    def _check_pass_length(self, n_tokens: int, group: str) -> None:
        if self.max_positions and n_tokens > self.max_positions:
            hint = ("lower context.tokens or context.stride" if self.context.policy == "window"
                    else "use context policy 'window'")
            raise ValueError(f"config key 'models.{self.name}.context': a pass over group '{group}' holds "
                             f"{n_tokens} tokens, more than the model's {self.max_positions} positions; {hint}")

    @torch.inference_mode()
    def encode_in_context(self, stimuli, batch_size: int = 16):
        """Yield ``(rows, layers)`` for units in context (:func:`brainalign.words.group_texts`):
        ``rows`` index ``stimuli``, ``layers`` one (rows, width) array per layer (hidden states,
        then surprisal and entropy when on)."""
        from ..words import group_texts

        out_dtype = numpy_dtype(self.dtype)
        contents = stimuli["content"].values.astype(str)
        if self.context.policy == "none":  # each unit alone: its own tokens, no special tokens
            for _, rows, _, _ in group_texts(stimuli):
                for start in range(0, len(rows), batch_size):
                    chunk = rows[start:start + batch_size]
                    yield chunk, self.encode(contents[chunk].tolist(), self.word_pooling, "special")
            return
        pre, post = special_tokens(self.tokenizer)
        for group, rows, text, spans in group_texts(stimuli):
            units = contents[rows]
            ids, unit_of = tokenize_group(self.tokenizer, text, spans, units, f"group '{group}'")
            bounds = np.searchsorted(unit_of, np.arange(len(rows) + 1))
            for p in plan_passes(unit_of, len(rows), self.context):
                tokens = torch.as_tensor(np.concatenate([pre, ids[p.start:p.stop], post]).astype(np.int64))
                self._check_pass_length(len(tokens), group)
                positions = [np.arange(bounds[w], bounds[w + 1]) - p.start + len(pre)
                             for w in range(p.first_word, p.last_word)]
                out = self.model(input_ids=tokens[None].to(self.device), output_hidden_states=True)
                layers = [pool_word(self._states(out.hidden_states[i][0]), positions, self.word_pooling)
                          .cpu().numpy().astype(out_dtype) for i in self.hidden_indices]
                if self.surprisal:
                    logp, entropy = token_log_probs(out.logits[0], tokens.to(out.logits.device))
                    surprisal, before = unit_surprisal(logp.cpu().numpy(), entropy.cpu().numpy(), positions)
                    layers += [surprisal[:, None].astype(out_dtype), before[:, None].astype(out_dtype)]
                yield rows[p.first_word:p.last_word], layers


class GGUFTextModel(HFTextModel):
    """A GGUF checkpoint (for example SmolLM2-135M-Instruct Q4_1) via ``gguf_file=``."""

    def _load_kwargs(self, spec) -> dict:
        return {"gguf_file": spec["gguf_file"]}

    def _weight_files(self, where: str) -> list[Path]:
        return [Path(where) / self.spec["gguf_file"]]


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
