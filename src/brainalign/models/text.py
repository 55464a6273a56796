"""Language models from transformers: every hidden state, pooled over tokens.

``hf_text`` loads any transformers encoder or decoder (hub id or local folder);
``hf_gguf`` loads a GGUF checkpoint through transformers' ``gguf_file=``
(de-quantised to the configured dtype).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..config import resolve_source
from ..io import file_checksum
from ..metrics.backend import numpy_dtype, resolve_device, resolve_dtype

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
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

    def __init__(self, name: str, spec: dict, base_dir=None):
        from transformers import AutoModel, AutoTokenizer

        self.name, self.spec = name, spec
        self.pooling = spec.get("pooling", "mean")
        self.max_length = int(spec.get("max_length", 128))
        self.device = resolve_device(spec.get("device", "auto"))
        self.dtype = resolve_dtype(spec.get("dtype"), default=torch.float32, half=True)
        where, self.local = resolve_source(spec["source"], base_dir)
        kwargs = self._load_kwargs(spec)
        if not self.local and spec.get("revision"):
            kwargs["revision"] = spec["revision"]
        self.tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModel.from_pretrained(where, dtype=self.dtype, **kwargs).to(self.device).eval()
        n_states = self.model.config.num_hidden_layers + 1
        self.layer_indices, self.layer_names, self.depths = hidden_state_layers(
            n_states, spec.get("layers", "all"), f"models.{name}.layers")
        self.widths = [int(self.model.config.hidden_size)] * len(self.layer_indices)
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
            "dtype": spec.get("dtype", "float32"),
            "n_hidden_states": n_states,
        }

    def _load_kwargs(self, spec) -> dict:
        return {}

    def _weight_files(self, where: str) -> list[Path]:
        return sorted(p for p in Path(where).iterdir() if p.suffix in WEIGHT_SUFFIXES)

    def _checksum(self, where: str) -> str:
        if not self.local:
            return ""
        digests = [f"{p.name}:{file_checksum(p)}" for p in self._weight_files(where)]
        return ";".join(digests)

    def _revision(self, where: str) -> str:
        commit = getattr(self.model.config, "_commit_hash", None)
        return commit or ("local" if self.local else self.spec.get("revision", "main"))

    @torch.inference_mode()
    def encode(self, contents: list[str]) -> list[np.ndarray]:
        enc = self.tokenizer(list(contents), padding=True, truncation=True,
                             max_length=self.max_length, return_tensors="pt").to(self.device)
        out = self.model(**enc, output_hidden_states=True)
        mask = enc["attention_mask"]
        out_dtype = numpy_dtype(self.dtype)
        return [pool_tokens(out.hidden_states[i].float() if self.dtype in (torch.float16, torch.bfloat16)
                            else out.hidden_states[i], mask, self.pooling).cpu().numpy().astype(out_dtype)
                for i in self.layer_indices]


class GGUFTextModel(HFTextModel):
    """A GGUF checkpoint (for example SmolLM2-135M-Instruct Q4_1) via ``gguf_file=``."""

    def _load_kwargs(self, spec) -> dict:
        return {"gguf_file": spec["gguf_file"]}

    def _weight_files(self, where: str) -> list[Path]:
        return [Path(where) / self.spec["gguf_file"]]


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
