"""NetCDF contracts through brainalign.io: lossless round trips, atomic writes,
provenance attributes and checksums."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from importlib import metadata

import numpy as np
import pytest
import xarray as xr

from brainalign import io, stimuli
from brainalign.jobs.score import score
from brainalign.datasets import check_brain, load_dataset

from conftest import ROOT

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# --------------------------------------------------------------------------- helpers
def _parts(folder):
    """Temporary files left by an interrupted atomic write."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def _toy_layers(rng, n_stim=10, widths=(5, 8, 3), dtype="float32"):
    return [rng.standard_normal((n_stim, w)).astype(dtype) for w in widths]


def _hand_brain(rng, ids, n_rep=3):
    """A brain-contract Dataset built by hand: 2 subjects x (3 'ifg' + 2 'stg') neuroids."""
    subject = np.array(["sub-01"] * 5 + ["sub-02"] * 5)
    roi = np.array(["ifg", "ifg", "ifg", "stg", "stg"] * 2)
    xyz = rng.uniform(-60, 60, size=(10, 3))
    brain = xr.Dataset(
        {"responses": (("stimulus", "neuroid", "repetition"), rng.standard_normal((len(ids), 10, n_rep)))},
        coords={
            "stimulus_id": ("stimulus", np.asarray(ids)),
            "subject": ("neuroid", subject),
            "roi": ("neuroid", roi),
            "x": ("neuroid", xyz[:, 0]), "y": ("neuroid", xyz[:, 1]), "z": ("neuroid", xyz[:, 2]),
            "repetition": np.arange(n_rep),
        },
        attrs={"dataset_kind": "hand-made", "snr": 0.25},
    )
    brain["x"].attrs.update(units="mm", space="MNI152")
    return brain


SIM_SPEC = {
    "kind": "simulated", "stimuli": "sentences", "subjects": 2, "repetitions": 2, "snr": 1.0,
    "rois": {"early": {"model": "minilm", "layer": 1, "voxels": 12},
             "late": {"model": "minilm", "layer": 6, "voxels": 12},
             "noise": {"voxels": 6}},
}


@pytest.fixture(scope="module")
def stimulus_set(stimuli_csv):
    return stimuli.load_stimulus_table(stimuli_csv)


@pytest.fixture(scope="module")
def brain_path(tmp_path_factory, minilm_activations, stimulus_set):
    """A small simulated brain file planted from the real MiniLM activations."""
    brain = load_dataset("sim", SIM_SPEC, stimulus_set, activations={"minilm": minilm_activations}, seed=11)
    out = tmp_path_factory.mktemp("brain") / "sim.nc"
    io.write_netcdf(brain, out)
    return out


@pytest.fixture(scope="module")
def cka_scores(minilm_activations, brain_path):
    return score("cka", minilm_activations, brain_path, {"n_permutations": 20}, seed=0)


# --------------------------------------------------------------------------- round trips
def test_stimulus_set_round_trip(stimulus_set, stimuli_csv, tmp_path):
    with open(stimuli_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    # the loader itself: ids, content and labels straight from the CSV, in row order
    assert stimulus_set.sizes == {"stimulus": len(rows)}
    assert stimulus_set["stimulus_id"].values.tolist() == [r["stimulus_id"] for r in rows]
    assert stimulus_set["content"].values.tolist() == [r["sentence"] for r in rows]
    assert stimulus_set["category"].values.tolist() == [r["category"] for r in rows]
    assert set(stimulus_set["modality"].values.tolist()) == {"text"}

    path = io.write_netcdf(stimulus_set, tmp_path / "stimuli.nc")
    back = io.read_netcdf(path)
    xr.testing.assert_identical(back, stimulus_set)
    assert set(back.coords) == {"stimulus_id", "modality", "content", "category"}
    assert back["content"].values.tolist() == [r["sentence"] for r in rows]
    assert back.attrs == stimulus_set.attrs
    assert back.attrs["condition_columns"] == "category"


def test_write_stimulus_set_round_trip(stimuli_csv, tmp_path):
    spec = {"path": str(stimuli_csv), "modality": "text", "content_column": "sentence",
            "condition_columns": ["category"]}
    back = io.read_netcdf(stimuli.write_stimulus_set("sentences", spec, tmp_path / "s.nc"))
    direct = stimuli.load_stimulus_table(stimuli_csv)
    xr.testing.assert_equal(back, direct)
    assert back.attrs["name"] == "sentences"
    assert back.attrs["checksum"] == io.array_checksum(direct["stimulus_id"].values, direct["content"].values)
    assert back.attrs["config_sha256"] == io.config_hash(spec)


def test_read_netcdf_closes_file_and_loads_values(stimulus_set, tmp_path):
    path = io.write_netcdf(stimulus_set, tmp_path / "s.nc")
    back = io.read_netcdf(path)
    os.remove(path)  # values were loaded into memory, so the data survives the file
    assert back["stimulus_id"].values[0] == stimulus_set["stimulus_id"].values[0]
    with pytest.raises(FileNotFoundError, match="s.nc"):
        io.read_netcdf(path)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activations_round_trip_in_batches(tmp_path, dtype):
    rng = np.random.default_rng(0)
    ids = [f"stim{i:02d}" for i in range(10)]
    names, indices, depths = ["embeddings", "block_03", "block_07"], [0, 3, 7], [0.0, 0.375, 0.875]
    arrays = _toy_layers(rng, dtype=dtype)
    attrs = {"model_name": "toy", "flag": True, "nested": {"a": [1, 2]}, "missing": None}
    path = tmp_path / "acts.nc"
    with io.ActivationWriter(path, ids, names, [a.shape[1] for a in arrays], layer_indices=indices,
                             depths=depths, attrs=attrs, dtype=dtype) as writer:
        # batches of uneven size, written out of order
        for start, stop in [(8, 10), (0, 4), (4, 8)]:
            writer.write(start, [a[start:stop] for a in arrays])
            assert not path.exists()  # the file appears only when complete
    assert _parts(tmp_path) == []

    layers, file_attrs = io.read_activations(path)
    assert len(layers) == 3
    for da, values, name, index, depth in zip(layers, arrays, names, indices, depths):
        assert da.dims == ("stimulus", "unit")
        assert da.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(da.values, values)
        assert da.name == name
        assert da["layer"].item() == name
        assert da["layer_index"].item() == index
        assert da["depth"].item() == depth
        assert da["stimulus_id"].values.tolist() == ids
        np.testing.assert_array_equal(da["unit"].values, np.arange(values.shape[1]))
    assert file_attrs["n_layers"] == 3
    assert file_attrs["model_name"] == "toy"
    assert file_attrs["flag"] == 1
    assert json.loads(file_attrs["nested"]) == {"a": [1, 2]}
    assert file_attrs["missing"] == ""


def test_activation_writer_default_indices_and_depths(tmp_path):
    arrays = _toy_layers(np.random.default_rng(1), n_stim=4, widths=(2, 2, 2, 2, 2))
    path = tmp_path / "acts.nc"
    with io.ActivationWriter(path, list("abcd"), [f"l{i}" for i in range(5)], [2] * 5) as writer:
        writer.write(0, arrays)
    layers, _ = io.read_activations(path)
    assert [int(da["layer_index"]) for da in layers] == [0, 1, 2, 3, 4]
    assert [float(da["depth"]) for da in layers] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_activation_writer_rejects_inconsistent_layers(tmp_path):
    with pytest.raises(ValueError, match="same length"):
        io.ActivationWriter(tmp_path / "a.nc", ["a"], ["l0", "l1"], [3])
    assert list(tmp_path.iterdir()) == []
    with io.ActivationWriter(tmp_path / "b.nc", ["a", "b"], ["l0", "l1"], [3, 3]) as writer:
        with pytest.raises(ValueError, match="expected 2 layers, got 1"):
            writer.write(0, [np.zeros((2, 3))])
        writer.write(0, [np.zeros((2, 3)), np.ones((2, 3))])
    layers, _ = io.read_activations(tmp_path / "b.nc")
    np.testing.assert_array_equal(layers[1].values, np.ones((2, 3)))


def test_real_activations_read_back(minilm_activations):
    layers, attrs = io.read_activations(minilm_activations)
    assert [int(da["layer_index"]) for da in layers] == list(range(7))
    assert np.all(np.diff([float(da["depth"]) for da in layers]) > 0)
    assert all(da.shape == (120, 384) for da in layers)
    assert all(np.isfinite(da.values).all() for da in layers)
    assert layers[0]["stimulus_id"].values.tolist() == [f"s{i:03d}" for i in range(1, 121)]
    assert attrs["n_layers"] == 7 and attrs["model_name"] == "minilm"


def test_brain_round_trip_hand_built(tmp_path):
    rng = np.random.default_rng(2)
    brain = _hand_brain(rng, [f"s{i:03d}" for i in range(1, 9)])
    check_brain(brain)
    back = io.read_netcdf(io.write_netcdf(brain, tmp_path / "brain.nc"))
    xr.testing.assert_identical(back, brain)
    assert back["responses"].dims == ("stimulus", "neuroid", "repetition")
    assert back["responses"].dtype == np.float64
    np.testing.assert_array_equal(back["responses"].values, brain["responses"].values)
    assert back["x"].attrs == {"units": "mm", "space": "MNI152"}
    check_brain(back, what="round trip")


def test_brain_round_trip_simulated(brain_path, minilm_activations, stimulus_set):
    brain = load_dataset("sim", SIM_SPEC, stimulus_set, activations={"minilm": minilm_activations}, seed=11)
    back = io.read_netcdf(brain_path)
    xr.testing.assert_identical(back, brain)
    assert back.sizes == {"stimulus": 120, "neuroid": 60, "repetition": 2}
    for coord in ("stimulus_id", "subject", "roi", "x", "y", "z", "category"):
        np.testing.assert_array_equal(back[coord].values, brain[coord].values)
    assert json.loads(back.attrs["planted"])["late"]["layer_index"] == 6


def test_scores_round_trip(cka_scores, tmp_path):
    back = io.read_netcdf(io.write_netcdf(cka_scores, tmp_path / "cka.nc"))
    xr.testing.assert_identical(back, cka_scores)
    assert back["score"].dims == ("layer", "subject", "roi")
    assert back.sizes == {"layer": 7, "subject": 2, "roi": 3}
    assert back["roi"].values.tolist() == ["early", "late", "noise"]
    assert back["layer_index"].values.tolist() == list(range(7))
    # NaN gaps (no ceiling_reliable interval where an ROI lacks two subjects' worth) survive as NaN
    assert np.isnan(back["boot_ci_low"].values).all() == np.isnan(cka_scores["boot_ci_low"].values).all()
    np.testing.assert_array_equal(np.isnan(back["ceiling_ci_low"].values), np.isnan(cka_scores["ceiling_ci_low"].values))
    assert back.attrs["n_permutations"] == 20 and back.attrs["metric"] == "cka"
    # p values of a 20-permutation test live on the grid k / 21
    p = back["p_value"].values * 21
    np.testing.assert_allclose(p, np.round(p), atol=1e-9)
    assert ((p >= 1) & (p <= 21)).all()


def test_scores_carry_planted_truth(cka_scores):
    planted = json.loads(cka_scores.attrs["planted"])
    assert planted["early"]["layer_index"] == 1 and planted["noise"] is None
    # sanity of the dataset used above: the late ROI prefers a late layer
    late = cka_scores["score_mean"].sel(roi="late").values
    assert int(np.argmax(late)) == 6


# --------------------------------------------------------------------------- atomic writes
def test_exception_inside_activation_writer_leaves_nothing(tmp_path):
    arrays = _toy_layers(np.random.default_rng(3))
    path = tmp_path / "acts.nc"
    with pytest.raises(RuntimeError, match="boom"):
        with io.ActivationWriter(path, [str(i) for i in range(10)], ["a", "b", "c"], [5, 8, 3]) as writer:
            writer.write(0, [a[:4] for a in arrays])
            assert len(_parts(tmp_path)) == 1  # the partial file lives under a temporary name
            raise RuntimeError("boom")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_exception_inside_activation_writer_keeps_previous_file(tmp_path):
    path = tmp_path / "acts.nc"
    path.write_bytes(b"previous complete file")
    with pytest.raises(KeyboardInterrupt):
        with io.ActivationWriter(path, ["a", "b"], ["l0"], [2]) as writer:
            writer.write(0, [np.ones((1, 2))])
            raise KeyboardInterrupt
    assert path.read_bytes() == b"previous complete file"
    assert _parts(tmp_path) == []


def test_incomplete_activation_file_is_never_published(tmp_path):
    path = tmp_path / "acts.nc"
    with pytest.raises(RuntimeError, match="6 stimuli were never written"):
        with io.ActivationWriter(path, [str(i) for i in range(10)], ["a"], [3]) as writer:
            writer.write(0, [np.ones((4, 3))])
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from brainalign import io
    writer = io.ActivationWriter(sys.argv[1], [f"s{i}" for i in range(100)], ["l0", "l1"], [64, 64])
    writer.write(0, [np.ones((50, 64)), np.zeros((50, 64))])
    print("ready", flush=True)
    time.sleep(120)
    writer.write(50, [np.ones((50, 64)), np.zeros((50, 64))])
    writer.close()
""")


def test_sigkill_midway_leaves_nothing_at_output_path(tmp_path):
    path = tmp_path / "out" / "acts.nc"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == "ready", proc.stderr.read() if proc.poll() is not None else line
        assert len(_parts(path.parent)) == 1  # mid-write: a temporary file, nothing at the path
        assert not path.exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not path.exists()
    with pytest.raises(FileNotFoundError, match="acts.nc"):
        io.read_activations(path)


class _Unprintable:
    def __str__(self):
        raise RuntimeError("cannot be serialised")

    __repr__ = __str__


def _object_variable(ds):
    return ds.assign(bad=("stimulus", np.array([{"k": i} for i in range(ds.sizes["stimulus"])], dtype=object)))


def _dict_attr(ds):
    ds = ds.copy()
    ds.attrs["bad"] = {"nested": "dicts are not NetCDF attributes"}
    return ds


@pytest.mark.parametrize("make_bad, attrs, error", [
    (_object_variable, None, ValueError),
    (_dict_attr, None, TypeError),
    (lambda ds: ds, {"bad": _Unprintable()}, RuntimeError),
], ids=["object-dtype-variable", "dict-attribute", "unserialisable-attrs-value"])
def test_failed_write_netcdf_keeps_previous_file(stimulus_set, tmp_path, make_bad, attrs, error):
    path = io.write_netcdf(stimulus_set, tmp_path / "stimuli.nc")
    before = path.read_bytes()
    with pytest.raises(error):
        io.write_netcdf(make_bad(stimulus_set), path, attrs=attrs)
    assert path.read_bytes() == before
    assert _parts(tmp_path) == []
    xr.testing.assert_identical(io.read_netcdf(path), stimulus_set)


def test_failed_write_netcdf_to_new_path_leaves_nothing(stimulus_set, tmp_path):
    with pytest.raises(ValueError):
        io.write_netcdf(_object_variable(stimulus_set), tmp_path / "new.nc")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_on_error_and_success(tmp_path):
    path = tmp_path / "f.txt"
    with pytest.raises(OSError):
        with io.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []
    with io.atomic_path(path) as tmp:
        tmp.write_text("whole")
        assert tmp.parent == path.parent and not path.exists()
    assert path.read_text() == "whole"
    assert list(tmp_path.iterdir()) == [path]


def test_written_files_get_the_usual_permissions(stimulus_set, tmp_path):
    """Atomic writes must not leave results readable by their owner only (mkstemp's 0600)."""
    umask = os.umask(0o022)
    try:
        nc = io.write_netcdf(stimulus_set, tmp_path / "s.nc")
        acts = tmp_path / "a.nc"
        with io.ActivationWriter(acts, ["a"], ["l0"], [1]) as writer:
            writer.write(0, [np.ones((1, 1))])
    finally:
        os.umask(umask)
    assert oct(nc.stat().st_mode & 0o777) == oct(0o644)
    assert oct(acts.stat().st_mode & 0o777) == oct(0o644)


# --------------------------------------------------------------------------- provenance
def _git_head():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT / "src" / "brainalign",
                             capture_output=True, text=True, timeout=10)
    except OSError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


CFG = {"kind": "simulated", "snr": 0.5, "rois": {"a": {"voxels": 3}}, "path": "x.csv"}


@pytest.fixture(params=["stimuli", "brain", "scores", "dataarray"])
def contract(request, stimulus_set, cka_scores):
    if request.param == "stimuli":
        return stimulus_set
    if request.param == "brain":
        return _hand_brain(np.random.default_rng(4), ["a", "b", "c"])
    if request.param == "scores":
        return cka_scores
    return xr.DataArray(np.arange(6.0).reshape(2, 3), dims=("x", "y"), name="values")


def test_provenance_on_every_contract(contract, tmp_path):
    back = io.read_netcdf(io.write_netcdf(contract, tmp_path / "p.nc", attrs=io.provenance(CFG, seed=3)))
    attrs = back.attrs
    assert set(io.PROVENANCE_KEYS) <= set(attrs)
    assert attrs["seed"] == 3
    assert attrs["config_sha256"] == io.config_hash(CFG)
    assert json.loads(attrs["config_section"]) == CFG
    assert attrs["brainalign_version"] == metadata.version("brainalign")
    assert attrs["git_commit"] == _git_head()
    versions = json.loads(attrs["library_versions"])
    assert versions["numpy"] == np.__version__
    assert versions["xarray"] == xr.__version__
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    # the contract's own content is untouched by the provenance attributes
    data = contract.to_dataset() if isinstance(contract, xr.DataArray) else contract
    xr.testing.assert_equal(back, data)


def test_config_hash_tracks_config():
    h = io.config_hash(CFG)
    assert len(h) == 64 and int(h, 16) >= 0
    assert io.config_hash(dict(reversed(list(CFG.items())))) == h  # key order does not matter
    assert io.config_hash({**CFG, "snr": 0.25}) != h
    assert io.config_hash({**CFG, "rois": {"a": {"voxels": 4}}}) != h
    assert io.provenance({**CFG, "snr": 0.25}, seed=3)["config_sha256"] != io.provenance(CFG, seed=3)["config_sha256"]
    assert h == hashlib.sha256(json.dumps(CFG, sort_keys=True).encode()).hexdigest()


def test_provenance_without_config_or_seed():
    attrs = io.provenance(extra_thing={"a": 1}, model_checksum="abc")
    assert attrs["seed"] == -1 and attrs["config_sha256"] == ""
    assert attrs["model_checksum"] == "abc"
    assert json.loads(attrs["extra_thing"]) == {"a": 1}
    assert all(isinstance(v, (str, int, float, np.integer, np.floating)) for v in attrs.values())


# --------------------------------------------------------------------------- checksums
def test_file_checksum_is_sha256_of_bytes(stimulus_set, tmp_path, minilm_activations):
    path = io.write_netcdf(stimulus_set, tmp_path / "s.nc")
    for f in (path, minilm_activations):
        expected = hashlib.sha256(f.read_bytes()).hexdigest()
        assert io.file_checksum(f) == expected
        assert io.file_checksum(f, chunk=4097) == expected  # many blocks, same digest


def test_file_checksum_of_folder_depends_on_names_and_bytes(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.txt").write_bytes(b"alpha")
    (tmp_path / "d" / "sub" / "b.txt").write_bytes(b"beta")
    first = io.file_checksum(tmp_path / "d")
    expected = hashlib.sha256(b"a.txt" + b"alpha" + os.path.join("sub", "b.txt").encode() + b"beta").hexdigest()
    assert first == expected
    (tmp_path / "d" / "sub" / "b.txt").write_bytes(b"betA")
    assert io.file_checksum(tmp_path / "d") != first
