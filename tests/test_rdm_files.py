"""Precomputed RDM files: reading (.mat, .npy), the rdm_mat/rdm_npy dataset and model
kinds, and resolve_file (local checks and downloads from a local HTTP server)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
import xarray as xr
from scipy.spatial.distance import squareform

from brainalign.datasets.rdms import load as load_rdm_dataset
from brainalign.models.rdms import read_model_rdms, write_model_rdms
from brainalign.rdm_files import read_rdm_file
from brainalign.io import file_checksum as sha256_of
from brainalign.sources import resolve_file
from brainalign.stimuli import load_stimulus_table

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kriegeskorte2008_92images"
MODEL_NAMES = ["animacy", "FaceBodyManmadeNatobj", "monkeyIT", "EVA", "HMAX", "V1", "Silhouette", "RADON"]
HUMAN_IT = {"kind": "rdm_mat", "path": "92_brainRDMs.mat", "layout": [None, "subject", "session"],
            "measure": "correlation"}

real_data = pytest.mark.skipif(not (DATA / "92_brainRDMs.mat").exists(),
                               reason=f"real RDM files not found in {DATA}")


@pytest.fixture(scope="module")
def stimuli92():
    if not (DATA / "stimuli.csv").exists():
        pytest.skip(f"stimulus table not found: {DATA / 'stimuli.csv'}")
    return load_stimulus_table(DATA / "stimuli.csv", modality="image", content_column="file",
                               condition_columns=("category",))


def stimulus_set(n: int) -> xr.Dataset:
    return xr.Dataset(coords={"stimulus_id": ("stimulus", [f"s{i:02d}" for i in range(n)])})


def random_rdms(n_rdms: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([squareform(rng.random(n * (n - 1) // 2)) for _ in range(n_rdms)])


# --------------------------------------------------------------------------- real files
@real_data
@pytest.mark.parametrize("filename, variable, count", [
    ("92_brainRDMs.mat", "RDMs", 8),
    ("92_modelRDMs.mat", "Models", 8),
    ("92_behavRDMs.mat", "rdms_behav_92", 16),
])
def test_struct_arrays_equal_loadmat(filename, variable, count):
    raw = sio.loadmat(DATA / filename)[variable]
    rdms = read_rdm_file(DATA / filename)  # the only variable: found without naming it
    assert rdms.dims == ("entry", "stimulus", "stimulus_")
    assert rdms.shape == (count, 92, 92) and rdms.dtype == np.float64
    for i in range(count):
        item = raw.flat[i]
        np.testing.assert_array_equal(rdms.values[i], item["RDM"].astype(np.float64))
        assert rdms["name"].values[i] == str(item["name"][0])
        assert [int(rdms[f"axis{k}"].values[i]) for k in range(raw.ndim)] == \
            list(np.unravel_index(i, raw.shape))


@real_data
def test_names_of_real_files():
    assert read_rdm_file(DATA / "92_modelRDMs.mat")["name"].values.tolist() == MODEL_NAMES
    brain = read_rdm_file(DATA / "92_brainRDMs.mat")
    assert brain["name"].values[:3].tolist() == ["hIT | BE | Session: 1", "hIT | BE | Session: 2",
                                                "hIT | KO | Session: 1"]
    assert brain["axis1"].values.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert brain["axis2"].values.tolist() == [0, 1] * 4


@real_data
def test_upper_triangle_vectors_equal_squareform():
    path = DATA / "Kriegeskorte_Neuron2008_supplementalData.mat"
    raw = sio.loadmat(path)["RDMs_mIT_hIT_fig1"]
    rdms = read_rdm_file(path, "RDMs_mIT_hIT_fig1")
    assert rdms.shape == (2, 92, 92)
    assert rdms["name"].values.tolist() == ["mIT_674neurons", "hITvisStim_316vx"]
    for i in range(2):
        vector = raw.flat[i]["RDM"].ravel()
        np.testing.assert_array_equal(rdms.values[i], squareform(vector))
    # the monkey IT RDM of the figure is the monkeyIT model RDM
    np.testing.assert_allclose(rdms.values[0], read_rdm_file(DATA / "92_modelRDMs.mat").values[2])


@real_data
def test_human_it_session_average(stimuli92):
    raw = read_rdm_file(DATA / "92_brainRDMs.mat").values
    brain = load_rdm_dataset("human_it", HUMAN_IT, stimuli92, base_dir=DATA)
    assert brain["rdms"].dims == ("subject", "roi", "stimulus", "stimulus_")
    assert brain["rdms"].shape == (4, 1, 92, 92)
    assert brain["subject"].values.tolist() == ["sub-01", "sub-02", "sub-03", "sub-04"]
    assert brain["roi"].values.tolist() == ["human_it"]
    assert brain["stimulus_id"].values.tolist() == stimuli92["stimulus_id"].values.tolist()
    for s in range(4):
        np.testing.assert_array_equal(brain["rdms"].values[s, 0], (raw[2 * s] + raw[2 * s + 1]) / 2)
    assert brain.attrs["distance_measure"] == "correlation"
    assert brain.attrs["content"] == "rdms"
    assert brain.attrs["dataset_checksum"] == sha256_of(DATA / "92_brainRDMs.mat")
    assert brain.attrs["source_file"] == str(DATA / "92_brainRDMs.mat")


@real_data
def test_human_it_separate_sessions(stimuli92):
    raw = read_rdm_file(DATA / "92_brainRDMs.mat").values
    spec = {**HUMAN_IT, "sessions": "separate", "subjects": ["BE", "KO", "SN", "TI"], "roi": "hIT"}
    brain = load_rdm_dataset("human_it", spec, stimuli92, base_dir=DATA)
    assert brain["subject"].values.tolist() == [f"{s}_session{k}" for s in ("BE", "KO", "SN", "TI")
                                                for k in (1, 2)]
    assert brain["roi"].values.tolist() == ["hIT"]
    np.testing.assert_array_equal(brain["rdms"].values[:, 0], raw)


@real_data
def test_pick_one_rdm_of_a_file(stimuli92):
    spec = {"path": str(DATA / "Kriegeskorte_Neuron2008_supplementalData.mat"),
            "variable": "RDMs_mIT_hIT_fig1", "entries": ["hITvisStim_316vx"]}
    brain = load_rdm_dataset("hit_fig1", spec, stimuli92)
    assert brain["rdms"].shape == (1, 1, 92, 92)
    by_index = load_rdm_dataset("hit_fig1", {**spec, "entries": [1]}, stimuli92)
    np.testing.assert_array_equal(brain["rdms"].values, by_index["rdms"].values)


@real_data
def test_model_rdms_written_and_read(stimuli92, tmp_path):
    spec = {"kind": "rdm_mat", "path": "92_modelRDMs.mat"}
    out = write_model_rdms("kriegeskorte_models", spec, stimuli92, tmp_path / "models.nc", base_dir=DATA)
    ds = read_model_rdms(out)
    assert ds["rdm"].dims == ("layer", "stimulus", "stimulus_") and ds["rdm"].shape == (8, 92, 92)
    assert ds["layer"].values.tolist() == MODEL_NAMES
    assert ds["layer_index"].values.tolist() == list(range(8))
    np.testing.assert_allclose(ds["depth"].values, np.arange(8) / 7)
    assert ds["stimulus_id"].values.tolist() == stimuli92["stimulus_id"].values.tolist()
    assert ds.attrs["content"] == "rdms" and ds.attrs["model_name"] == "kriegeskorte_models"
    assert ds.attrs["model_checksum"] == sha256_of(DATA / "92_modelRDMs.mat")
    assert ds.attrs["config_sha256"] and ds.attrs["source_file"].endswith("92_modelRDMs.mat")
    raw = sio.loadmat(DATA / "92_modelRDMs.mat")["Models"]
    np.testing.assert_array_equal(ds["rdm"].values[3], raw.flat[3]["RDM"].astype(np.float64))

    picked = read_model_rdms(write_model_rdms("m", {**spec, "layers": ["HMAX", "animacy"]}, stimuli92,
                                              tmp_path / "picked.nc", base_dir=DATA))
    assert picked["layer"].values.tolist() == ["HMAX", "animacy"]
    assert picked["depth"].values.tolist() == [0.0, 1.0]


# --------------------------------------------------------------------------- .npy
def test_npy_stack_round_trip(tmp_path):
    rdms = random_rdms(3, 6)
    np.save(tmp_path / "stack.npy", rdms)
    read = read_rdm_file(tmp_path / "stack.npy")
    np.testing.assert_array_equal(read.values, rdms)
    assert read["name"].values.tolist() == ["rdm0", "rdm1", "rdm2"]
    assert read["axis0"].values.tolist() == [0, 1, 2]


def test_npy_vectors_round_trip(tmp_path):
    rdms = random_rdms(2, 7)
    np.save(tmp_path / "vectors.npy", np.stack([squareform(m) for m in rdms]))
    np.testing.assert_array_equal(read_rdm_file(tmp_path / "vectors.npy").values, rdms)
    np.save(tmp_path / "one.npy", squareform(rdms[0]).astype(np.float32))
    single = read_rdm_file(tmp_path / "one.npy")
    assert single.shape == (1, 7, 7) and single.dtype == np.float64


def test_npy_dataset_and_model(tmp_path):
    rdms = random_rdms(3, 5)
    np.save(tmp_path / "r.npy", rdms)
    brain = load_rdm_dataset("sim", {"kind": "rdm_npy", "path": "r.npy"}, stimulus_set(5), base_dir=tmp_path)
    assert brain["subject"].values.tolist() == ["sub-01", "sub-02", "sub-03"]
    np.testing.assert_array_equal(brain["rdms"].values[:, 0], rdms)
    out = write_model_rdms("m", {"kind": "rdm_npy", "path": str(tmp_path / "r.npy"), "layers": ["rdm2"]},
                           stimulus_set(5), tmp_path / "m.nc")
    model = read_model_rdms(out)
    np.testing.assert_array_equal(model["rdm"].values, rdms[2:])
    assert model["depth"].values.tolist() == [0.0]


def test_mat_numeric_arrays(tmp_path):
    rdms = random_rdms(2, 5)
    sio.savemat(tmp_path / "plain.mat", {"stack": rdms, "vec": squareform(rdms[1])})
    np.testing.assert_array_equal(read_rdm_file(tmp_path / "plain.mat", "stack").values, rdms)
    np.testing.assert_array_equal(read_rdm_file(tmp_path / "plain.mat", "vec").values[0], rdms[1])


# --------------------------------------------------------------------------- errors
def bad_file(tmp_path, array, name="bad.npy") -> Path:
    path = tmp_path / name
    np.save(path, array)
    return path


@pytest.mark.parametrize("corrupt, message", [
    (lambda m: m.__setitem__((0, 1), m[0, 1] + 0.5), "not symmetric"),
    (lambda m: m.__setitem__((2, 2), 0.3), "diagonal is not zero"),
    (lambda m: m.__setitem__((1, 3), np.nan), "NaN"),
])
def test_invalid_matrix_names_the_file(tmp_path, corrupt, message):
    rdms = random_rdms(2, 5)
    corrupt(rdms[1])
    path = bad_file(tmp_path, rdms)
    with pytest.raises(ValueError, match=message) as err:
        read_rdm_file(path)
    assert str(path) in str(err.value) and "rdm1" in str(err.value)


def test_wrong_vector_length(tmp_path):
    path = bad_file(tmp_path, np.ones((2, 11)))
    with pytest.raises(ValueError, match="length 11 is no upper triangle") as err:
        read_rdm_file(path)
    assert str(path) in str(err.value)


def test_unknown_variable_names_the_key(tmp_path):
    sio.savemat(tmp_path / "two.mat", {"a": random_rdms(1, 4), "b": random_rdms(1, 4)})
    with pytest.raises(ValueError, match=r"no variable 'c' \(variables: \['a', 'b'\]\)"):
        read_rdm_file(tmp_path / "two.mat", "c")
    with pytest.raises(ValueError, match="holds 2 variables") as err:
        read_rdm_file(tmp_path / "two.mat")
    assert "two.mat" in str(err.value)
    with pytest.raises(ValueError, match=r"config key 'datasets\.x\.variable'.*two\.mat"):
        load_rdm_dataset("x", {"path": str(tmp_path / "two.mat"), "variable": "c"}, stimulus_set(4))


def test_stimulus_count_mismatch_names_the_key(tmp_path):
    path = bad_file(tmp_path, random_rdms(2, 5), "five.npy")
    with pytest.raises(ValueError, match=r"config key 'datasets\.x\.path'.*five\.npy.*5 x 5.*6 stimuli"):
        load_rdm_dataset("x", {"path": str(path)}, stimulus_set(6))
    with pytest.raises(ValueError, match=r"config key 'models\.m\.path'.*6 stimuli"):
        write_model_rdms("m", {"path": str(path)}, stimulus_set(6), tmp_path / "m.nc")
    assert not (tmp_path / "m.nc").exists()


def test_sha256_mismatch_names_the_key(tmp_path):
    path = bad_file(tmp_path, random_rdms(2, 5), "r.npy")
    mismatch = r"config key 'datasets\.x\.sha256'.*r\.npy.*expected 0+, got [0-9a-f]{64}"
    with pytest.raises(ValueError, match=mismatch):
        load_rdm_dataset("x", {"path": str(path), "sha256": "0" * 64}, stimulus_set(5))
    good = load_rdm_dataset("x", {"path": str(path), "sha256": sha256_of(path).upper()}, stimulus_set(5))
    assert good.attrs["dataset_checksum"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_file_without_url(tmp_path):
    with pytest.raises(ValueError, match=r"config key 'datasets\.x\.path': file not found: .*absent\.mat"):
        load_rdm_dataset("x", {"path": "absent.mat"}, stimulus_set(5), base_dir=tmp_path)


def test_unknown_layer_lists_available_names(tmp_path):
    path = bad_file(tmp_path, random_rdms(2, 5), "r.npy")
    with pytest.raises(ValueError, match=r"config key 'models\.m\.layers': unknown RDM 'conv1'.*"
                                         r"available: \['rdm0', 'rdm1'\]"):
        write_model_rdms("m", {"path": str(path), "layers": ["conv1"]}, stimulus_set(5), tmp_path / "m.nc")


@real_data
@pytest.mark.parametrize("spec, key", [
    ({"layout": ["subject", "session"]}, "layout"),
    ({"layout": [None, None, "session"]}, "layout"),
    ({"layout": [None, "subject", "run"]}, "layout"),
    ({"sessions": "median"}, "sessions"),
    ({"subjects": ["a", "b"]}, "subjects"),
    ({"entries": ["nope"]}, "entries"),
])
def test_bad_layout_names_the_key(stimuli92, spec, key):
    with pytest.raises(ValueError, match=rf"config key 'datasets\.human_it\.{key}'"):
        load_rdm_dataset("human_it", {**HUMAN_IT, **spec}, stimuli92, base_dir=DATA)


# --------------------------------------------------------------------------- downloads
@pytest.fixture()
def http_folder(tmp_path, monkeypatch):
    """Serve ``tmp_path / 'served'`` on 127.0.0.1; yields (folder, base url)."""
    folder = tmp_path / "served"
    folder.mkdir()
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_download_then_reuse(http_folder, tmp_path):
    folder, base = http_folder
    payload = np.random.default_rng(1).bytes(3 << 20)  # several chunks
    (folder / "rdms.npy").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "cache" / "rdms.npy"
    assert not dest.exists()
    got = resolve_file("cache/rdms.npy", url=f"{base}/rdms.npy", sha256=digest, key="datasets.x",
                       base_dir=tmp_path)
    assert got == dest and dest.read_bytes() == payload
    assert sorted(p.name for p in dest.parent.iterdir()) == ["rdms.npy"]  # no temporary left behind
    (folder / "rdms.npy").unlink()  # present now: no second download
    assert resolve_file(dest, url=f"{base}/rdms.npy", sha256=digest, key="datasets.x") == dest


def test_download_with_wrong_sha256_leaves_nothing(http_folder, tmp_path):
    folder, base = http_folder
    (folder / "rdms.npy").write_bytes(b"not what was promised")
    dest = tmp_path / "cache" / "rdms.npy"
    with pytest.raises(ValueError, match=r"config key 'datasets\.x\.sha256'.*rdms\.npy.*expected f+, got"):
        resolve_file(dest, url=f"{base}/rdms.npy", sha256="f" * 64, key="datasets.x")
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_download_failure_names_the_url_key(http_folder, tmp_path):
    _, base = http_folder
    dest = tmp_path / "missing.npy"
    with pytest.raises(ValueError, match=r"config key 'datasets\.x\.url'.*404"):
        resolve_file(dest, url=f"{base}/missing.npy", key="datasets.x")
    assert not dest.exists() and list(tmp_path.iterdir()) == [tmp_path / "served"]
