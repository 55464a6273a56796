"""What a model's extraction job holds in memory, read from its files without loading weights.

Each model kind's registry entry names one function here (``memory``), ``facts(entry, where,
stimuli) -> ModelMemory``: the parameter bytes in the run's dtype (from the safetensors or GGUF
headers, or the architecture built on the ``meta`` device), what loading adds for a moment (the
weight files read, GGUF de-quantisation), what stays resident beside the weights (tokenizer,
random projections) and the bytes one stimulus of a batch holds at the forward pass's peak (the
hidden states kept, attention and MLP intermediates; for vision networks the captured outputs and
the largest intermediate). :mod:`brainalign.job_memory` turns them into a job's peak.

The constants were measured on CPU with this repository's default models and the 92-image
networks (``tests/test_job_memory.py`` checks the estimates against measured peaks).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

MiB = 2**20
#: bytes per value of the dtypes a model may run in
DTYPE_BYTES = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "auto": 4, None: 4}
#: the tokenizer and transformers' own modules, loaded with a text model
TEXT_EXTRA = 95 * MiB
#: resident besides a vision network's weights and projections (probe pass, image pipeline)
IMAGE_EXTRA = 90 * MiB
#: bytes per stored non-zero of a random projection: the scipy matrix (float64 value, int32 index)
#: and its torch copy (float32 value, int64 index)
PROJECTION_BYTES = 24
#: a vision forward pass's transient peak, in units of its largest intermediate output
VISION_TRANSIENT = 2.5


@dataclass(frozen=True)
class ModelMemory:
    weights: int          # parameter bytes in the run's dtype
    load: int             # extra bytes while loading (files read, de-quantisation), freed after
    resident: int         # other bytes held for the whole job
    per_item: int         # bytes per stimulus of a batch at the forward pass's peak
    batch: int            # stimuli per forward pass
    widths: tuple         # units per layer written (for the score jobs that read the file)

    def peak(self) -> int:
        """Peak bytes of the job above the process's own (weights, then the larger of loading and a batch)."""
        return self.weights + self.resident + max(self.load, self.batch * self.per_item)


# ------------------------------------------------------------------ parameter counts from headers
def safetensors_params(folder: Path) -> int | None:
    """Parameters in a folder's ``*.safetensors`` files, from their JSON headers (floating-point
    tensors only: integer buffers such as BERT's ``position_ids`` are not weights)."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with open(path, "rb") as fh:
            header = json.loads(fh.read(struct.unpack("<Q", fh.read(8))[0]))
        total += sum(math.prod(t["shape"]) for k, t in header.items()  # floating tensors: not index buffers
                     if k != "__metadata__" and str(t.get("dtype", "F")).startswith(("F", "BF")))
    return total


_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def gguf_header(path: Path) -> tuple[dict, list[list[int]]] | None:
    """A GGUF file's key-values (arrays left out) and its tensors' shapes, from the header alone
    (no tensor data read); None when it is not GGUF (version 2 or later)."""
    with open(path, "rb") as fh:
        def read(fmt):
            return struct.unpack("<" + fmt, fh.read(struct.calcsize("<" + fmt)))[0]

        def value(kind):
            if kind == 8:
                return fh.read(read("Q")).decode("utf-8", "replace")
            if kind == 9:
                item, count = read("I"), read("Q")
                if item in _GGUF_SCALARS:
                    fh.seek(count * struct.calcsize("<" + _GGUF_SCALARS[item]), 1)
                else:
                    for _ in range(count):
                        value(item)
                return None
            return read(_GGUF_SCALARS[kind])

        if fh.read(4) != b"GGUF" or read("I") < 2:
            return None
        n_tensors, n_kv = read("Q"), read("Q")
        found = {}
        for _ in range(n_kv):
            key = fh.read(read("Q")).decode("utf-8", "replace")
            found[key] = value(read("I"))
        shapes = []
        for _ in range(n_tensors):
            fh.seek(read("Q"), 1)
            shapes.append([read("Q") for _ in range(read("I"))])
            read("I"), read("Q")
    return found, shapes


def gguf_params(path: Path) -> int | None:
    """Parameters of a GGUF file, from its header's tensor shapes."""
    header = gguf_header(path)
    return None if header is None else sum(math.prod(shape) for shape in header[1])


def _hf_config(folder: Path) -> dict:
    path = Path(folder) / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _first(config: dict, *keys, default=None):
    for key in keys:
        if isinstance(config.get(key), int):
            return config[key]
    return default


# ------------------------------------------------------------------ per kind
def text_tokens(entry: dict, stimuli) -> int:
    """Tokens of the longest forward pass: windows of ``context.tokens + stride``; a whole group
    (a story, a passage) with context policy ``group``; otherwise the longest stimulus, at most
    ``max_length``. About 3 characters per token, plus special tokens."""
    context = entry.get("context") or {}
    if context.get("policy") == "window":
        return int(context.get("tokens", 256)) + int(context.get("stride", context.get("tokens", 256))) + 2
    if context.get("policy") == "group":
        from ..words import group_texts

        return max((len(text) for _, _, text, _ in group_texts(stimuli)), default=3) // 3 + 2
    longest = max((len(str(c)) for c in stimuli["content"].values), default=1)
    return min(int(entry.get("max_length", 128)), math.ceil(longest / 3) + 2)


def hf_text_memory(entry: dict, where, stimuli) -> ModelMemory:
    folder = Path(where)
    gguf = folder / entry["gguf_file"] if entry.get("gguf_file") else None
    config = _hf_config(folder)
    params = (gguf_params(gguf) if gguf and gguf.is_file() else safetensors_params(folder)) or 0
    size = DTYPE_BYTES.get(entry.get("dtype"), 4)
    hidden = _first(config, "hidden_size", "n_embd", "d_model", default=768)
    layers = _first(config, "num_hidden_layers", "n_layer", "num_layers", default=12)
    inner = _first(config, "intermediate_size", "n_inner", "ffn_dim", default=4 * hidden)
    if gguf is not None and gguf.is_file():
        hidden, layers, inner = _gguf_shape(gguf) or (hidden, layers, inner)
    tokens = min(text_tokens(entry, stimuli), _first(config, "max_position_embeddings", default=2048))
    in_context = (entry.get("context") or {}).get("policy", "none") != "none"
    batch = 1 if in_context else int(entry.get("batch_size", 16))
    # every hidden state is kept, plus a few layers' worth of transients and one MLP intermediate
    # (attention scores are not materialised by PyTorch's fused attention)
    per_item = size * tokens * (hidden * (layers + 3) + inner)
    if gguf is not None and gguf.is_file():   # the file read, and the de-quantised copy only partly alive
        load = gguf.stat().st_size + int(0.6 * params * size)
    else:                                      # the weight files read (memory-mapped)
        load = sum(p.stat().st_size for p in folder.glob("*.safetensors")) or params * size
    widths = (hidden,) * (layers + 1)
    return ModelMemory(params * size, load, TEXT_EXTRA, per_item, batch, widths)


def _gguf_shape(path: Path):
    """(hidden, layers, intermediate) from a GGUF header's key-values."""
    header = gguf_header(path)
    found = header[0] if header else {}
    arch = found.get("general.architecture", "")
    keys = [f"{arch}.embedding_length", f"{arch}.block_count", f"{arch}.feed_forward_length"]
    return tuple(int(found[k]) for k in keys) if all(k in found for k in keys) else None


def hf_vision_memory(entry: dict, where, stimuli) -> ModelMemory:
    folder = Path(where)
    config = _hf_config(folder)
    size = DTYPE_BYTES.get(entry.get("dtype"), 4)
    params = safetensors_params(folder) or 0
    hidden = _first(config, "hidden_size", default=768)
    layers = _first(config, "num_hidden_layers", default=12)
    inner = _first(config, "intermediate_size", default=4 * hidden)
    image, patch = config.get("image_size", 224), config.get("patch_size", 16)
    image = image[0] if isinstance(image, (list, tuple)) else image
    patch = patch[0] if isinstance(patch, (list, tuple)) else patch
    tokens = (int(image) // int(patch)) ** 2 + 1
    per_item = size * tokens * (hidden * (layers + 3) + inner)
    load = sum(p.stat().st_size for p in folder.glob("*.safetensors")) or params * size
    return ModelMemory(params * size, load, IMAGE_EXTRA, per_item, int(entry.get("batch_size", 32)),
                       (hidden,) * (layers + 1))


def torch_vision_memory(entry: dict, where, stimuli) -> ModelMemory:
    """The architecture built on the ``meta`` device (no memory, no weights) and run on a meta
    image: parameters, the captured layers' outputs and the largest intermediate."""
    import torch

    from .images import Preprocessing
    from .vision import import_callable, select_layers

    size = DTYPE_BYTES.get(entry.get("dtype"), 4)
    build = import_callable(entry["architecture"], "architecture")
    with torch.device("meta"):
        model = build(**entry.get("arguments", {}))
    names = set(select_layers(model, entry.get("layers", ["*"]), "layers"))
    captured, largest = {}, [0]

    def hook(name):
        def keep(module, inputs, output):
            t = output[0] if isinstance(output, (tuple, list)) else output
            if isinstance(t, torch.Tensor):
                largest[0] = max(largest[0], t.numel())
                if name in names:
                    captured[name] = tuple(t.shape)
        return keep

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if n in names or not list(m.children())]
    side = Preprocessing.from_config(entry.get("preprocessing")).input_size
    with torch.inference_mode():
        model.eval()(torch.empty(1, 3, side, side, device="meta"))
    for h in handles:
        h.remove()
    params = sum(p.numel() for p in model.parameters())
    pooling, dims = entry.get("pooling", "avg"), int(entry.get("projection_dims", 4096))
    units = [math.prod(shape) for shape in captured.values()]
    flat = pooling in ("flatten", "random_projection")
    nnz = sum(dims * math.sqrt(n) for n in units if pooling == "random_projection" and n > dims)
    # the captured outputs (twice with a projection: its flattened, transposed copy), and the
    # forward pass's transients
    per_item = size * (sum(units) * (2 if pooling == "random_projection" else 1) + VISION_TRANSIENT * largest[0])
    widths = tuple((min(n, dims) if pooling == "random_projection" else n) if flat or len(shape) <= 2 else shape[1]
                   for n, shape in zip(units, captured.values()))
    return ModelMemory(params * size, params * size, IMAGE_EXTRA + int(PROJECTION_BYTES * nnz), per_item,
                       int(entry.get("batch_size", 32)), widths)
