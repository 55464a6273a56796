"""The ``simulated`` dataset kind on real MiniLM activations: the contract, the
planted truth in the attributes, seeding, the realised SNR, the planted geometry
and alignment by stimulus id."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from brainalign import io
from brainalign.datasets import check_brain, load_dataset
from brainalign.datasets.contract import BrainDataError
from brainalign.datasets.simulated import GRID_MM, planted_signal
from brainalign.metrics.cka import linear_cka
from brainalign.stimuli import StimulusError, load_stimulus_table

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SPEC = {
    "kind": "simulated", "stimuli": "sentences", "subjects": 3, "repetitions": 2, "snr": 0.5,
    "rois": {
        "early": {"model": "minilm", "layer": 2, "voxels": 40, "center": [-52, -20, 4]},
        "late": {"model": "minilm", "layer": 6, "voxels": 30, "center": [-48, 20, 16]},
        "noise": {"voxels": 20, "center": [8, -80, 4]},
    },
}
N_STIM = 120


@pytest.fixture(scope="module")
def stimuli(stimuli_csv):
    return load_stimulus_table(stimuli_csv)


@pytest.fixture(scope="module")
def layers(minilm_activations):
    return io.read_activations(minilm_activations)[0]


@pytest.fixture(scope="module")
def simulate(stimuli, minilm_activations):
    def run(spec=SPEC, seed=7, stim=None, activations=None):
        return load_dataset("sim", spec, stimuli if stim is None else stim,
                            activations={"minilm": activations or minilm_activations}, seed=seed)
    return run


@pytest.fixture(scope="module")
def brain(simulate):
    return simulate()


def _roi(brain, roi, subject=None):
    mask = brain["roi"].values == roi
    if subject is not None:
        mask &= brain["subject"].values == subject
    return brain["responses"].values[:, mask, :]


# --------------------------------------------------------------------------- contract
def test_shapes_and_dims(brain, stimuli):
    resp = brain["responses"]
    assert resp.dims == ("stimulus", "neuroid", "repetition")
    assert resp.shape == (N_STIM, 3 * (40 + 30 + 20), 2)
    assert resp.dtype == np.float64 and np.isfinite(resp.values).all()
    assert brain["stimulus_id"].values.tolist() == stimuli["stimulus_id"].values.tolist()
    assert brain["category"].values.tolist() == stimuli["category"].values.tolist()
    assert brain["repetition"].values.tolist() == [0, 1]
    check_brain(brain)


def test_subject_and_roi_coords(brain):
    subject, roi = brain["subject"].values, brain["roi"].values
    assert sorted(set(subject)) == ["sub-01", "sub-02", "sub-03"]
    for s in ("sub-01", "sub-02", "sub-03"):
        mine = roi[subject == s]
        assert mine.tolist() == ["early"] * 40 + ["late"] * 30 + ["noise"] * 20
    # voxels are the grid points nearest the ROI's configured centre (a voxelised sphere)
    xyz = np.stack([brain[c].values for c in "xyz"], axis=1)
    for name, spec in SPEC["rois"].items():
        for s in ("sub-01", "sub-02", "sub-03"):
            mine = xyz[(roi == name) & (subject == s)]
            np.testing.assert_array_equal(mine % GRID_MM, 0)  # on the 2 mm MNI grid
            assert len(np.unique(mine, axis=0)) == len(mine)  # one neuroid per voxel
            dist = np.linalg.norm(mine - np.asarray(spec["center"]), axis=1)
            # a ball: n voxels of 8 mm^3 fill a sphere of radius (3 n 8 / 4 pi)^(1/3), plus one voxel
            assert dist.max() <= (3 * len(mine) * GRID_MM ** 3 / (4 * np.pi)) ** (1 / 3) + GRID_MM * np.sqrt(3)
    assert brain["x"].attrs == {"units": "mm", "space": "MNI152"}


def test_planted_attrs(brain, layers):
    planted = json.loads(brain.attrs["planted"])
    assert planted == {
        "early": {"model": "minilm", "layer_index": 2, "layer": str(layers[2]["layer"].item())},
        "late": {"model": "minilm", "layer_index": 6, "layer": str(layers[6]["layer"].item())},
        "noise": None,
    }
    assert brain.attrs["snr"] == 0.5
    assert brain.attrs["simulation_seed"] == 7
    assert brain.attrs["dataset_kind"] == "simulated"


def test_spec_seed_overrides_call_seed(simulate, brain):
    spec = {**SPEC, "seed": 7}
    other = simulate(spec, seed=999)
    assert other.attrs["simulation_seed"] == 7
    np.testing.assert_array_equal(other["responses"].values, brain["responses"].values)


def test_same_seed_same_data(simulate, brain):
    again = simulate(seed=7)
    np.testing.assert_array_equal(again["responses"].values, brain["responses"].values)
    for c in "xyz":
        np.testing.assert_array_equal(again[c].values, brain[c].values)
    assert again.attrs["dataset_checksum"] == brain.attrs["dataset_checksum"]


def test_different_seed_different_data(simulate, brain):
    other = simulate(seed=8)
    a, b = other["responses"].values, brain["responses"].values
    assert a.shape == b.shape
    assert not np.any(a == b)
    # independent noise: the repetition-level correlation of the two draws is small
    assert abs(np.corrcoef(_roi(other, "noise").ravel(), _roi(brain, "noise").ravel())[0, 1]) < 0.05
    assert other.attrs["dataset_checksum"] != brain.attrs["dataset_checksum"]


# --------------------------------------------------------------------------- signal and noise
@pytest.mark.parametrize("snr", [0.5, 2.0])
def test_realised_snr_matches_config(simulate, snr):
    reps = 20
    spec = copy.deepcopy(SPEC)
    spec.update(snr=snr, repetitions=reps, subjects=2)
    spec["rois"]["early"]["voxels"] = 300
    spec["rois"]["noise"]["voxels"] = 300
    brain = simulate(spec, seed=3)
    for roi in ("early", "noise"):
        x = _roi(brain, roi)                                  # (stimulus, voxel, repetition)
        noise_var = x.var(axis=2, ddof=1).mean()              # spread around the repetition mean
        assert noise_var == pytest.approx(1.0 / snr, rel=0.02)
        signal_var = x.mean(axis=2).var(axis=0).mean() - noise_var / reps
        if roi == "noise":
            assert abs(signal_var) < 0.01 / snr
        else:
            assert signal_var == pytest.approx(1.0, rel=0.05)
            assert signal_var / noise_var == pytest.approx(snr, rel=0.05)


@pytest.mark.parametrize("layer", range(7))
def test_planted_signal_has_unit_mean_variance(layers, layer):
    x = layers[layer].values.astype(np.float64)
    signal = planted_signal(x, 250, np.random.default_rng(layer))
    assert signal.shape == (N_STIM, 250)
    assert abs(signal.var(0).mean() - 1.0) < 1e-10
    assert np.abs(signal.mean(0)).max() < 1e-10  # centred per voxel
    # the voxels differ: not a single copy of one direction
    assert np.linalg.matrix_rank(signal) > 100


def test_planted_signal_is_seeded(layers):
    x = layers[3].values.astype(np.float64)
    a = planted_signal(x, 50, np.random.default_rng(1))
    np.testing.assert_array_equal(a, planted_signal(x, 50, np.random.default_rng(1)))
    assert not np.allclose(a, planted_signal(x, 50, np.random.default_rng(2)))


@pytest.mark.parametrize("layer", [2, 4, 6])
def test_planted_signal_keeps_layer_geometry(layers, layer):
    x = layers[layer].values.astype(np.float64)
    signal = planted_signal(x, 5000, np.random.default_rng(0))
    ckas = np.array([linear_cka(signal, da.values) for da in layers])
    assert ckas[layer] > 0.99
    others = np.delete(ckas, layer)
    assert int(np.argmax(ckas)) == layer
    assert ckas[layer] - others.max() > 0.02
    far = 0 if layer == 6 else 6
    assert ckas[far] < 0.93


def test_simulated_roi_geometry_follows_its_layer(simulate, layers):
    """In the dataset itself (noise included), the repetition-averaged ROI is closest to its layer."""
    spec = copy.deepcopy(SPEC)
    spec.update(snr=4.0, repetitions=4, subjects=1)
    spec["rois"]["early"]["voxels"] = 2000
    spec["rois"]["late"]["voxels"] = 2000
    brain = simulate(spec, seed=5)
    for roi, layer in (("early", 2), ("late", 6)):
        y = _roi(brain, roi).mean(axis=2)
        ckas = [linear_cka(y, da.values) for da in layers]
        assert int(np.argmax(ckas)) == layer
    noise = _roi(brain, "noise").mean(axis=2)
    assert max(linear_cka(noise, da.values) for da in layers) < 0.5


# --------------------------------------------------------------------------- alignment by id
def test_row_order_of_stimuli_does_not_change_responses(simulate, stimuli, brain):
    order = np.random.default_rng(0).permutation(N_STIM)
    shuffled = stimuli.isel(stimulus=order)
    other = simulate(stim=shuffled)
    assert other["stimulus_id"].values.tolist() == shuffled["stimulus_id"].values.tolist()
    assert other["category"].values.tolist() == shuffled["category"].values.tolist()
    back = other.isel(stimulus=np.argsort(order))
    assert back["stimulus_id"].values.tolist() == brain["stimulus_id"].values.tolist()
    np.testing.assert_array_equal(back["responses"].values, brain["responses"].values)
    assert other.attrs["dataset_checksum"] == brain.attrs["dataset_checksum"]


def test_activation_rows_are_matched_by_id(simulate, layers, brain, tmp_path):
    """An activation file with its rows in another order gives the same dataset."""
    order = np.random.default_rng(1).permutation(N_STIM)
    path = tmp_path / "shuffled.nc"
    with io.ActivationWriter(path, layers[0]["stimulus_id"].values[order], [da.name for da in layers],
                             [da.sizes["unit"] for da in layers],
                             layer_indices=[int(da["layer_index"]) for da in layers],
                             depths=[float(da["depth"]) for da in layers]) as writer:
        writer.write(0, [da.values[order] for da in layers])
    other = simulate(activations=path)
    np.testing.assert_array_equal(other["responses"].values, brain["responses"].values)


def test_activations_for_other_stimuli_are_an_error(simulate, stimuli, minilm_activations):
    """Activations are matched to the stimulus set exactly: extra ids are not silently dropped."""
    subset = stimuli.isel(stimulus=np.arange(0, N_STIM, 3))
    with pytest.raises(StimulusError, match=rf"{minilm_activations.name}: stimulus ids do not match .*"
                                             r"80 unknown, e\.g\. \['s002', 's003', 's005'\]"):
        simulate(stim=subset)


def test_unknown_stimulus_id_is_an_error(simulate, stimuli):
    renamed = stimuli.assign_coords(stimulus_id=("stimulus", [f"x{i:03d}" for i in range(N_STIM)]))
    with pytest.raises(StimulusError, match="stimulus ids do not match"):
        simulate(stim=renamed)


def test_missing_layer_names_the_key(simulate):
    spec = copy.deepcopy(SPEC)
    spec["rois"]["late"]["layer"] = 12
    with pytest.raises(ValueError, match=r"datasets\.sim\.rois\.late\.layer.*no hidden state 12"):
        simulate(spec)


def test_missing_activations_name_the_key(stimuli):
    with pytest.raises(ValueError, match=r"datasets\.sim\.rois\.early\.model"):
        load_dataset("sim", SPEC, stimuli, activations={}, seed=0)


def test_noise_only_dataset(simulate):
    spec = {**SPEC, "rois": {"noise": {"voxels": 5}}}
    brain = simulate(spec, activations=None)
    assert json.loads(brain.attrs["planted"]) == {"noise": None}
    assert brain.sizes["neuroid"] == 15


def test_contract_rejects_empty_dataset(simulate):
    brain = simulate()
    with pytest.raises(BrainDataError, match="no neuroids"):
        check_brain(brain.isel(neuroid=[]), what="empty")
