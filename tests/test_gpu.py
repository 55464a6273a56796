"""Every torch solver on CUDA gives the CPU's numbers (float64), wherever a GPU is present.

This machine has no GPU, so these tests are skipped here with that reason; on a cluster node
with CUDA, ``pytest tests/test_gpu.py`` runs them. ``device: auto`` picks the GPU there.
"""

import numpy as np
import pytest
import torch
from sklearn.model_selection import KFold

from brainalign.metrics import backend, banded, ridge, similarity

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device: the GPU path is tested where torch sees one")

ALPHAS = np.logspace(-2, 4, 7)


def _data(n=120, p=40, v=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p))
    y = x @ rng.standard_normal((p, v)) * 0.3 + rng.standard_normal((n, v))
    return x, y


def test_auto_is_the_gpu():
    assert backend.resolve_device("auto").type == "cuda"


@pytest.mark.parametrize("cv", ["loo", "kfold"])
@pytest.mark.parametrize("p", [40, 200])  # primal and dual (kernel) paths
def test_ridge_cv_on_cuda_equals_cpu(cv, p):
    x, y = _data(p=p)
    folds = "loo" if cv == "loo" else list(KFold(5, shuffle=True, random_state=0).split(x))
    cpu = ridge.ridge_cv(x, y, ALPHAS, folds, dtype=torch.float64, device="cpu")
    gpu = ridge.ridge_cv(x, y, ALPHAS, folds, dtype=torch.float64, device="cuda")
    np.testing.assert_array_equal(gpu.alphas, cpu.alphas)
    np.testing.assert_allclose(gpu.predict(x[:10]).cpu().numpy(), cpu.predict(x[:10]).numpy(), rtol=0, atol=1e-9)


def test_banded_ridge_on_cuda_equals_cpu():
    x, y = _data(p=60)
    xs = [x[:, :20], x[:, 20:]]
    folds = list(KFold(4, shuffle=True, random_state=1).split(x))
    gammas = banded.simplex_grid(2, 5)
    cpu = banded.banded_ridge_cv(xs, y, ALPHAS, gammas, folds, dtype=torch.float64, device="cpu")
    gpu = banded.banded_ridge_cv(xs, y, ALPHAS, gammas, folds, dtype=torch.float64, device="cuda")
    np.testing.assert_array_equal(gpu.gamma_index, cpu.gamma_index)
    np.testing.assert_allclose(gpu.coef.cpu().numpy(), cpu.coef.cpu().numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("measure", similarity.MEASURES)
def test_similarity_measures_on_cuda_equal_cpu(measure):
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((50, d)) for d in (8, 30)]
    ys = [xs[0] @ rng.standard_normal((8, 12)) + rng.standard_normal((50, 12))]
    cpu = similarity.pairwise(measure, xs, ys, dtype="float64", device="cpu")
    gpu = similarity.pairwise(measure, xs, ys, dtype="float64", device="cuda")
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-9)
