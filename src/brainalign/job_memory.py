"""The planner: the estimated peak memory of every extraction job, before the run, and the
SLURM requests made from it.

An extraction job's peak is the job process's own (Python, torch, numpy, xarray and brainalign
imported: :data:`PROCESS`) plus what its model kind reports (:mod:`brainalign.models.memory`:
weights in the run's dtype, what loading adds, what stays resident, and a batch's activations,
from the model's files, the stimulus count and lengths, layer widths and the projection). On a
GPU the weights and a batch's activations are on the device instead, plus the CUDA context.

``brainalign plan`` prints the table; the ``extract`` rule asks SLURM for :func:`request_mb`
of the estimate (the estimate plus the Snakemake process that wraps a job on a cluster node,
times :data:`HEADROOM`, rounded up to 100 MB) unless the config sets
``resources.extract.mem_mb``, and for the GPUs that hold the weights when one does not.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .models.memory import MiB, ModelMemory

#: the job process before any model: Python with torch, numpy, xarray, h5netcdf and brainalign (measured, CPU)
PROCESS = 270 * MiB
#: the Snakemake process that runs a job's script on a cluster node (SLURM counts both)
SNAKEMAKE_JOB = 200 * MiB
#: a request covers estimates up to this much too low
HEADROOM = 1.3
#: the CUDA context and kernels a process holds on its GPU, and the CUDA libraries in host memory
CUDA_CONTEXT = 500 * MiB
CUDA_HOST = 1000 * MiB


@dataclass(frozen=True)
class JobEstimate:
    rule: str
    target: str          # the job's output
    ram: int             # bytes, peak resident set of the job's script
    gpu: int             # bytes on the GPU (0 on CPU)
    facts: ModelMemory | None = None

    @property
    def ram_mb(self) -> int:
        return math.ceil(self.ram / MiB)

    @property
    def gpu_mb(self) -> int:
        return math.ceil(self.gpu / MiB)

    @property
    def request_mb(self) -> int:
        return request_mb(self.ram)


def request_mb(ram: int) -> int:
    """The ``mem_mb`` asked for a job whose script peaks at ``ram`` bytes."""
    return int(math.ceil((ram + SNAKEMAKE_JOB) * HEADROOM / MiB / 100) * 100)


@functools.lru_cache(maxsize=64)
def _stimuli(spec_json: str, base_dir: str | None):
    from .stimuli import read_stimulus_table

    return read_stimulus_table(json.loads(spec_json), base_dir)


def _model_folder(model: str, entry: dict, base_dir) -> str | None:
    """Where the model's files are: its local source, or the snapshot its lock names (None: not fetched yet)."""
    from .config import is_hub_named
    from .sources import resolve_source

    if "source" not in entry:
        return None
    if not is_hub_named(entry):
        return resolve_source(entry["source"], base_dir)[0]
    lock = Path(base_dir or ".") / "results" / "locks" / f"{model}.json"
    if lock.is_file():
        return json.loads(lock.read_text()).get("snapshot")
    return None


_FACTS: dict = {}


def _facts(function: str, entry_json: str, where, stimuli) -> ModelMemory:
    """The model kind's memory facts, once per entry, files and stimulus set (the DAG asks per job)."""
    key = (function, entry_json, where, id(stimuli))
    if key not in _FACTS:
        module, _, name = function.partition(":")
        _FACTS[key] = getattr(importlib.import_module(module), name)(json.loads(entry_json), where, stimuli)
    return _FACTS[key]


def on_gpu(entry: dict, config: dict) -> bool:
    """The job runs its model on a GPU: ``device: cuda``, or ``auto`` with GPUs requested."""
    device = entry.get("device", "auto")
    return device == "cuda" or (device == "auto" and int(config["resources"]["extract"].get("gpu", 0) or 0) > 0)


def extraction_estimate(config: dict, stimset: str, model: str, base_dir=None) -> JobEstimate | None:
    """The peak memory of extracting ``model`` on ``stimset``; None for precomputed RDMs, kinds
    without a memory model, and hub models not fetched yet."""
    from .models.registry import model_kind

    entry = config["models"][model]
    kind = model_kind(entry["kind"])
    if kind.rdms or not kind.memory:
        return None
    where = _model_folder(model, entry, base_dir)
    if kind.hub_source and where is None:
        return None
    stimuli = _stimuli(json.dumps(config["stimuli"][stimset], sort_keys=True, default=str),
                       None if base_dir is None else str(base_dir))
    facts = _facts(kind.memory, json.dumps(entry, sort_keys=True, default=str), where, stimuli)
    target = f"results/activations/{stimset}/{model}.nc"
    if on_gpu(entry, config):  # the weights pass through host memory on their way to the device
        gpu = facts.weights + facts.batch * facts.per_item + CUDA_CONTEXT
        ram = PROCESS + CUDA_HOST + facts.weights + facts.resident + facts.load
        return JobEstimate("extract", target, ram, gpu, facts)
    return JobEstimate("extract", target, PROCESS + facts.peak(), 0, facts)


@dataclass(frozen=True)
class PlannedJob:
    """An estimate and what the job asks SLURM for (``mem_mb``, GPUs)."""
    estimate: JobEstimate
    mem_mb: int
    gpus: int

    def __getattr__(self, name):
        return getattr(self.estimate, name)


def plan(config: dict, base_dir=None) -> list[PlannedJob]:
    """Every extraction job's estimate and request (jobs without an estimate are left out)."""
    from .config import extraction_jobs

    out = []
    for stimset, model in extraction_jobs(config):
        estimate = extraction_estimate(config, stimset, model, base_dir)
        if estimate is not None:
            out.append(PlannedJob(estimate, extract_mem_mb(config, stimset, model, base_dir),
                                  extract_gpus(config, stimset, model, base_dir)))
    return out


def extract_mem_mb(config: dict, stimset: str, model: str, base_dir=None) -> int:
    """``mem_mb`` of an extraction job: ``resources.extract.mem_mb`` when the config sets it, else the plan's
    request, else 16000 (a hub model not fetched yet)."""
    fixed = config["resources"]["extract"].get("mem_mb")
    if fixed:
        return int(fixed)
    estimate = extraction_estimate(config, stimset, model, base_dir)
    return estimate.request_mb if estimate is not None else 16000


def extract_gpus(config: dict, stimset: str, model: str, base_dir=None) -> int:
    """GPUs of an extraction job: ``resources.extract.gpu`` (0 = none), or more when
    ``resources.extract.gpu_mem_mb`` is set and the plan's GPU estimate needs more of them."""
    resources = config["resources"]["extract"]
    gpus = int(resources.get("gpu", 0) or 0)
    per_gpu = resources.get("gpu_mem_mb")
    if gpus == 0 or not per_gpu:
        return gpus
    estimate = extraction_estimate(config, stimset, model, base_dir)
    if estimate is None or not estimate.gpu:
        return gpus
    return max(gpus, math.ceil(estimate.gpu_mb / int(per_gpu)))


def format_plan(estimates: list["PlannedJob"]) -> str:
    rows = [("job", "RAM MB", "GPU MB", "mem_mb asked", "GPUs", "weights MB", "batch", "per stimulus MB")]
    for e in estimates:
        f = e.facts
        rows.append((e.target, str(e.ram_mb), str(e.gpu_mb) if e.gpu else "-", str(e.mem_mb), str(e.gpus),
                     f"{f.weights / MiB:.0f}", str(f.batch), f"{f.per_item / MiB:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)
