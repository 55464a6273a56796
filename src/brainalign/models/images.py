"""Image files -> model input tensors: resize, centre crop, scale to [0, 1], normalise.

The defaults are the usual ImageNet evaluation transform (shorter side to 256,
centre crop 224, ImageNet mean and standard deviation), the same steps as
torchvision's ``Resize(256), CenterCrop(224), ToTensor(), Normalize(...)``.
EfficientNet-Lite was trained on inputs scaled to [-1, 1]; its example config
sets ``mean: [0.498, 0.498, 0.498]`` and ``std: [0.502, 0.502, 0.502]``
(TensorFlow's 127/128).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "lanczos")


@dataclass(frozen=True)
class Preprocessing:
    """Settings of the ``preprocessing:`` block of a vision model entry.

    ``resize`` sets the shorter side (``null``: no resize); ``crop`` takes the
    centre square (``null``: no crop, so ``resize`` must give a fixed size).
    """

    resize: int | None = 256
    crop: int | None = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"

    @classmethod
    def from_config(cls, settings: dict | None) -> "Preprocessing":
        kwargs = dict(settings or {})
        for key in ("mean", "std"):
            if key in kwargs:
                kwargs[key] = tuple(float(v) for v in kwargs[key])
        return cls(**kwargs)

    @property
    def input_size(self) -> int:
        size = self.crop or self.resize
        if size is None:
            raise ValueError("preprocessing needs 'crop' or 'resize' to fix the input size")
        return int(size)

    def as_attrs(self) -> dict:
        return {"preprocessing_resize": self.resize or 0, "preprocessing_crop": self.crop or 0,
                "preprocessing_mean": list(self.mean), "preprocessing_std": list(self.std),
                "preprocessing_interpolation": self.interpolation}


def load_image(path: str | Path):
    """Open an image file as RGB (PIL); the error names the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc


def transform(image, settings: Preprocessing) -> np.ndarray:
    """One PIL image -> a normalised (channel, height, width) float32 array."""
    from PIL import Image

    method = getattr(Image.Resampling, settings.interpolation.upper())
    if settings.resize:
        w, h = image.size
        scale = settings.resize / min(w, h)
        size = (settings.resize, max(1, int(settings.resize * h / w))) if w <= h else \
               (max(1, int(settings.resize * w / h)), settings.resize)
        if scale != 1:
            image = image.resize(size, method)
    if settings.crop:
        w, h = image.size
        if w < settings.crop or h < settings.crop:
            raise ValueError(f"image of size {w}x{h} is smaller than the crop {settings.crop}")
        left, top = int(round((w - settings.crop) / 2.0)), int(round((h - settings.crop) / 2.0))
        image = image.crop((left, top, left + settings.crop, top + settings.crop))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    pixels = (pixels - np.asarray(settings.mean, np.float32)) / np.asarray(settings.std, np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def image_batch(paths, settings: Preprocessing) -> torch.Tensor:
    """Load and transform image files into one (image, channel, height, width) tensor."""
    return torch.from_numpy(np.stack([transform(load_image(p), settings) for p in paths]))
