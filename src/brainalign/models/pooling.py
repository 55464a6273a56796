"""One vector per stimulus from a layer's output, whatever its shape.

=====================  ==========================================================
``pooling``            (batch, channel, height, width) or (batch, token, unit) ->
=====================  ==========================================================
``avg``                mean over space (or tokens): one value per channel
``flatten``            every unit
``random_projection``  every unit, projected to ``projection_dims`` by a seeded
                       sparse random matrix (layers with fewer units are flattened)
``cls``                the first token (token outputs only)
=====================  ==========================================================

The projection is the very sparse random projection of Li, Hastie and Church
(2006), the same distribution as scikit-learn's
``SparseRandomProjection(density="auto")``: entries are
+-sqrt(1 / (density * k)) with probability density / 2 each and 0 otherwise,
with density = 1 / sqrt(n_units). Squared distances are preserved in
expectation. The matrix is drawn by geometric gaps between non-zeros (exact
Bernoulli sampling), which takes milliseconds where scikit-learn's row loop
takes seconds for a 200,000-unit map, and it is applied as a CSR product, so
memory grows with the non-zeros (about k * sqrt(n_units)), not with k * n_units.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

POOLINGS = ("avg", "flatten", "random_projection", "cls")


def sparse_projection_matrix(n_features: int, n_components: int, seed, density: float | None = None):
    """The (n_components, n_features) projection as a ``scipy.sparse.csr_matrix`` (float64)."""
    from scipy import sparse

    density = 1.0 / math.sqrt(n_features) if density is None else float(density)
    if not 0 < density <= 1:
        raise ValueError(f"projection density must be in (0, 1], got {density}")
    rng = np.random.default_rng(seed)
    total = n_features * n_components
    expected = total * density
    positions, last = [], -1
    while last < total - 1:
        # Gaps between successive non-zeros of the flattened matrix are geometric.
        chunk = last + np.cumsum(rng.geometric(density, size=int(expected * 0.1) + 1024))
        positions.append(chunk[chunk < total])
        last = int(chunk[-1])
    flat = np.concatenate(positions)
    signs = rng.integers(0, 2, size=len(flat)) * 2.0 - 1.0
    values = signs * math.sqrt(1.0 / density) / math.sqrt(n_components)
    rows, cols = np.divmod(flat, n_features)
    return sparse.csr_matrix((values, (rows, cols)), shape=(n_components, n_features))


class SparseProjection:
    """A seeded sparse random projection of flattened activations (torch CSR)."""

    def __init__(self, n_features: int, n_components: int, seed, device="cpu", dtype=torch.float32):
        self.n_features, self.n_components = int(n_features), int(n_components)
        matrix = sparse_projection_matrix(self.n_features, self.n_components, seed)
        self.matrix = matrix
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product is all we use
            warnings.simplefilter("ignore", UserWarning)
            self._tensor = torch.sparse_csr_tensor(
                torch.from_numpy(matrix.indptr.astype(np.int64)), torch.from_numpy(matrix.indices.astype(np.int64)),
                torch.from_numpy(matrix.data).to(dtype), size=matrix.shape, check_invariants=False).to(device)

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        """(batch, n_features) -> (batch, n_components)."""
        return torch.sparse.mm(self._tensor, flat.to(self._tensor.device, self._tensor.dtype).T.contiguous()).T


def output_tensor(output) -> torch.Tensor:
    """The tensor of a module's output (the first element of a tuple or a model output)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if hasattr(output, "last_hidden_state"):
        return output.last_hidden_state
    raise TypeError(f"cannot pool a layer output of type {type(output).__name__}")


def pool(t: torch.Tensor, pooling: str, layout: str = "channels_first") -> torch.Tensor:
    """Reduce a (batch, ...) tensor to (batch, units) before any projection.

    ``layout`` says where the units are in 3-D outputs: ``channels_first`` for
    (batch, channel, length) maps, ``tokens`` for (batch, token, unit) sequences.
    """
    if t.ndim == 2 or pooling in ("flatten", "random_projection"):
        return t.reshape(t.shape[0], -1)
    if pooling == "avg":
        if t.ndim == 3 and layout == "tokens":
            return t.mean(1)
        return t.flatten(2).mean(-1)
    if pooling == "cls":
        if t.ndim != 3:
            raise ValueError(f"pooling 'cls' needs a (batch, token, unit) output, got shape {tuple(t.shape)}")
        return t[:, 0]
    raise ValueError(f"unknown pooling '{pooling}' (use one of {POOLINGS})")
