"""Vision models: any ``torch.nn.Module`` (``torch_vision``) and transformers'
vision models (``hf_vision``).

``torch_vision`` builds the network from an import path (``package.module:callable``,
called with ``arguments``), loads a state dict from a local file, an installed
package (``package:NAME/file.pth``) or a URL with a checksum, and captures the
outputs of the layers named in ``layers`` (module names, or glob patterns where
``*`` stays within one dotted part and ``**`` crosses parts) with forward hooks.

``hf_vision`` loads a transformers vision model (a hub id or a local folder) and
takes its hidden states, as ``hf_text`` does for language models.

Every model entry with weights gets an untrained control (``<name>_untrained``,
see :func:`brainalign.config.add_untrained_controls`): the same architecture,
initialised by its own initialiser under ``torch.manual_seed(init_seed)``.
"""

from __future__ import annotations

import hashlib
import importlib
import re

import numpy as np
import torch

from ..config import resolve_source, split_import_path
from ..io import file_checksum
from ..metrics.backend import numpy_dtype, resolve_device
from .hardware import dispatch_kwargs, dtype_name, input_device, model_dtype
from .images import Preprocessing, image_batch
from .pooling import SparseProjection, output_tensor, pool
from .text import hidden_state_layers


def import_callable(path: str, key: str):
    """``package.module:attr.attr`` (or ``package.module.attr``) -> the object."""
    module_name, attr = split_import_path(path)
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"config key '{key}': cannot import module '{module_name}': {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"config key '{key}': '{module_name}' has no attribute '{attr}'") from None
    if not callable(obj):
        raise ValueError(f"config key '{key}': '{path}' is not callable")
    return obj


def glob_regex(pattern: str) -> re.Pattern:
    """A layer pattern as a regex: ``*`` within one dotted part, ``**`` across parts."""
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    table = {"**": ".*", "*": r"[^.]*", "?": r"[^.]"}
    return re.compile("".join(table.get(p, re.escape(p)) for p in parts) + r"\Z")


def select_layers(module: torch.nn.Module, patterns, key: str) -> list[str]:
    """Module names matching ``patterns``, in the network's definition order.

    A plain name must exist; a pattern must match at least one module. The
    error lists the top-level names, so a user can see what there is.
    """
    names = [name for name, _ in module.named_modules() if name]
    chosen: set[str] = set()
    for pattern in patterns:
        regex = glob_regex(pattern)
        hits = [n for n in names if regex.match(n)]
        if not hits:
            top = [n for n in names if "." not in n]
            raise ValueError(f"config key '{key}': no module matches '{pattern}' "
                             f"(top-level modules: {top})")
        chosen.update(hits)
    return [n for n in names if n in chosen]


def state_dict_checksum(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, value in module.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class _Capture:
    """Forward hooks that keep each chosen layer's output of the current batch."""

    def __init__(self, model: torch.nn.Module, names: list[str]):
        self.names, self.outputs, modules = names, {}, dict(model.named_modules())
        self.handles = [modules[n].register_forward_hook(self._hook(n)) for n in names]

    def _hook(self, name):
        def keep(module, inputs, output):
            if name in self.outputs:
                raise RuntimeError(f"layer '{name}' ran twice in one forward pass (a shared module); "
                                   "choose its parent or a module that runs once")
            self.outputs[name] = output_tensor(output)
        return keep

    def take(self) -> list[torch.Tensor]:
        missing = [n for n in self.names if n not in self.outputs]
        if missing:
            raise RuntimeError(f"layers {missing} did not run in the forward pass")
        out, self.outputs = [self.outputs[n] for n in self.names], {}
        return out


class VisionModel:
    """Shared machinery: device, dtype, pooling, projection and the output widths."""

    modality = "image"
    layout = "channels_first"

    def _setup_pooling(self, spec: dict, seed: int) -> None:
        self.pooling = spec.get("pooling", "avg")
        self.projection_dims = int(spec.get("projection_dims", 4096))
        self.projection_seed = int(spec.get("projection_seed", seed))
        self.projections: list[SparseProjection | None] = []

    def _probe(self, size: int) -> None:
        """One forward pass on a blank ``size`` x ``size`` image fixes each layer's width (and projection)."""
        shapes = [tuple(t.shape[1:]) for t in self._forward(torch.zeros(1, 3, size, size))]
        self.shapes, self.widths = shapes, []
        for i, shape in enumerate(shapes):
            n_units = int(np.prod(shape)) if self.pooling in ("flatten", "random_projection") else \
                int(pool(torch.zeros((1, *shape)), self.pooling, self.layout).shape[1])
            projection = None
            if self.pooling == "random_projection" and n_units > self.projection_dims:
                seed = np.random.SeedSequence([self.projection_seed, i])
                projection = SparseProjection(n_units, self.projection_dims, seed, device=self.device)
            self.projections.append(projection)
            self.widths.append(self.projection_dims if projection is not None else n_units)

    def prepare(self, contents: list[str]) -> torch.Tensor:
        """Image paths -> the model's input batch (decoding and preprocessing only, so the
        next batch can be prepared in a thread while the current one runs)."""
        return image_batch(contents, self.preprocessing)

    def encode(self, contents: list[str]) -> list[np.ndarray]:
        """Image paths -> one (image, unit) float array per layer."""
        return self.encode_prepared(self.prepare(contents))

    @torch.inference_mode()
    def encode_prepared(self, pixels: torch.Tensor) -> list[np.ndarray]:
        """A prepared input batch -> one (image, unit) float array per layer."""
        outputs = self._forward(pixels)
        result = []
        for t, projection in zip(outputs, self.projections):
            flat = pool(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t, self.pooling, self.layout)
            if projection is not None:
                flat = projection(flat)
            result.append(flat.cpu().numpy().astype(self.out_dtype, copy=False))
        return result

    @property
    def out_dtype(self):
        return numpy_dtype(self.dtype)

    def _common_attrs(self, spec: dict) -> dict:
        attrs = {
            "model_name": self.name, "model_kind": spec["kind"], "pooling": self.pooling,
            "device": str(self.device), "dtype": dtype_name(self.dtype),
            "untrained": int(bool(spec.get("untrained", False))), "control_of": spec.get("control_of", ""),
            "layer_modules": list(self.layer_names),
        }
        if spec.get("untrained"):
            attrs["init_seed"] = int(spec.get("init_seed", self.seed))
        if self.pooling == "random_projection":
            attrs.update(projection_dims=self.projection_dims, projection_seed=self.projection_seed,
                         projection="very sparse random projection (Li et al. 2006), density 1/sqrt(units)",
                         projected_layers=[n for n, p in zip(self.layer_names, self.projections) if p is not None])
        if self.preprocessing:
            attrs.update(self.preprocessing.as_attrs())
        return attrs


class TorchVisionModel(VisionModel):
    """Any ``torch.nn.Module`` given by import path, with layers captured by forward hooks."""

    def __init__(self, name: str, spec: dict, base_dir=None, seed: int = 0):
        self.name, self.spec, self.seed = name, spec, seed
        key = f"models.{name}"
        self.device = resolve_device(spec.get("device", "auto"))
        self.dtype = model_dtype(spec.get("dtype"), self.device)
        self.preprocessing = Preprocessing.from_config(spec.get("preprocessing"))
        self._setup_pooling(spec, seed)
        build = import_callable(spec["architecture"], f"{key}.architecture")
        untrained = bool(spec.get("untrained", False))
        if untrained:
            torch.manual_seed(int(spec.get("init_seed", seed)))
        model = build(**spec.get("arguments", {}))
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"config key '{key}.architecture': '{spec['architecture']}' returned "
                             f"{type(model).__name__}, not a torch.nn.Module")
        weights_file = None
        if not untrained:
            weights_file = self._load_weights(model, spec, key, base_dir)
        self.model = model.to(self.device, self.dtype).eval()
        self.layer_names = select_layers(self.model, spec.get("layers", ["*"]), f"{key}.layers")
        self._capture = _Capture(self.model, self.layer_names)
        self._probe(self.preprocessing.input_size)
        n = len(self.layer_names)
        self.layer_indices = list(range(n))
        self.depths = [i / max(n - 1, 1) for i in range(n)]
        self.attrs = {**self._common_attrs(spec), "model_source": spec["architecture"],
                      "model_arguments": repr(spec.get("arguments", {})),
                      "model_weights": str(weights_file or "untrained"),
                      "model_revision": "untrained" if untrained else "local",
                      "model_checksum": file_checksum(weights_file) if weights_file else
                      f"state_dict:{state_dict_checksum(self.model)}"}

    @staticmethod
    def _load_weights(model, spec, key, base_dir):
        from ..sources import resolve_file

        weights = spec.get("weights")
        if not weights:
            raise ValueError(f"config key '{key}.weights': required unless 'untrained: true'")
        if weights.startswith("package:"):
            try:
                path, _ = resolve_source(weights, base_dir)
            except FileNotFoundError as exc:
                raise ValueError(f"config key '{key}.weights': {exc}") from None
        else:
            path = resolve_file(weights, url=spec.get("weights_url"), sha256=spec.get("weights_sha256"),
                                key=key, base_dir=base_dir)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"config key '{key}.weights': cannot load {path}: {exc}") from None
        for part in filter(None, str(spec.get("state_dict_key", "")).split(".")):
            state = state[part]
        prefix = spec.get("strip_prefix", "")
        if prefix:
            state = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
        try:
            model.load_state_dict(state, strict=bool(spec.get("strict", True)))
        except RuntimeError as exc:
            raise ValueError(f"config key '{key}.weights': {path} does not fit "
                             f"'{spec['architecture']}': {str(exc)[:600]}") from None
        return path

    def _forward(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        self.model(pixels.to(self.device, self.dtype))
        return self._capture.take()


class HFVisionModel(VisionModel):
    """A transformers vision model (ViT, DeiT, ...): hidden state 0 is the patch embedding."""

    layout = "tokens"

    def __init__(self, name: str, spec: dict, base_dir=None, seed: int = 0):
        from transformers import AutoConfig, AutoModel

        self.name, self.spec, self.seed = name, spec, seed
        key = f"models.{name}"
        self.device = resolve_device(spec.get("device", "auto"))
        self.dtype = model_dtype(spec.get("dtype"), self.device)
        self._setup_pooling({"pooling": "cls", **spec}, seed)
        where, self.local = resolve_source(spec["source"], base_dir)
        kwargs, commit = {}, None
        if not self.local:  # a hub id: its pinned snapshot (the prefetch rule's), loaded offline
            from .hub import snapshot_of

            where, commit = snapshot_of(name, spec)
            kwargs["local_files_only"] = True
        if spec.get("untrained"):
            torch.manual_seed(int(spec.get("init_seed", seed)))
            model = AutoModel.from_config(AutoConfig.from_pretrained(where, **kwargs)).to(self.device, self.dtype)
        else:
            dispatch = dispatch_kwargs(spec, self.device)
            model = AutoModel.from_pretrained(where, dtype=self.dtype, **kwargs, **dispatch)
            if not dispatch:
                model = model.to(self.device, self.dtype)
            self.device = input_device(model, self.device)
        self.model = model.eval()
        self.preprocessing = Preprocessing.from_config(spec["preprocessing"]) if "preprocessing" in spec else None
        if self.preprocessing is None:
            from transformers import AutoImageProcessor

            try:
                self.image_processor = AutoImageProcessor.from_pretrained(where, **kwargs)
            except OSError as exc:
                raise ValueError(f"config key '{key}.preprocessing': {where} has no image processor; "
                                 f"give 'preprocessing' in the config ({exc})") from None
        n_states = self.model.config.num_hidden_layers + 1
        self.layer_indices, self.layer_names, self.depths = hidden_state_layers(
            n_states, spec.get("layers", "all"), f"{key}.layers")
        size = self.model.config.image_size
        self._probe(int(size[0] if isinstance(size, (list, tuple)) else size))
        self.attrs = {**self._common_attrs(spec), "model_source": spec["source"], "model_path": where,
                      "model_revision": "untrained" if spec.get("untrained") else (commit or "local"),
                      "model_checksum": f"state_dict:{state_dict_checksum(self.model)}",
                      "n_hidden_states": n_states}

    def prepare(self, contents: list[str]) -> torch.Tensor:
        """Image paths -> pixel values, through the config's preprocessing or the model's image processor."""
        if self.preprocessing:
            return super().prepare(contents)
        from .images import load_image

        return self.image_processor(images=[load_image(p) for p in contents], return_tensors="pt")["pixel_values"]

    def _forward(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        out = self.model(pixel_values=pixels.to(self.device, self.dtype), output_hidden_states=True)
        return [out.hidden_states[i] for i in self.layer_indices]
