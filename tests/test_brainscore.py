"""Brain-Score (brainio) NeuroidAssembly files read by the ``netcdf`` dataset kind,
and the way back with ``to_assembly``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from brainalign.datasets import netcdf
from brainalign.datasets.brainscore import from_assembly, is_assembly, to_assembly
from brainalign.datasets.contract import BrainDataError
from brainalign.io import read_netcdf

N_STIM, N_REP = 5, 3
STIMULUS_IDS = np.array([f"img{i:02d}" for i in range(N_STIM)])
OBJECTS = np.array(["car", "dog", "car", "face", "dog"])
BINS = [(70, 170), (170, 270)]


def make_assembly(time_bins=False, seed=0, id_level="stimulus_id", drop=()) -> xr.DataArray:
    """A brainio-style assembly: MultiIndexed presentation (stimulus_id, repetition,
    object_name) in shuffled order and neuroid (neuroid_id, region, animal):
    2 regions x 2 animals x 2 sites, 3 repetitions."""
    rng = np.random.default_rng(seed)
    stim = np.repeat(np.arange(N_STIM), N_REP)
    rep = np.tile(np.arange(N_REP), N_STIM)
    order = rng.permutation(len(stim))
    stim, rep = stim[order], rep[order]
    region = np.repeat(["V4", "IT"], 4)
    animal = np.tile(np.repeat(["chabo", "tito"], 2), 2)
    shape = (len(stim), len(region)) + ((len(BINS),) if time_bins else ())
    pres = {id_level: STIMULUS_IDS[stim], "repetition": rep, "object_name": OBJECTS[stim]}
    neu = {"neuroid_id": np.array([f"{a}_{r}_{i}" for i, (a, r) in enumerate(zip(animal, region))]),
           "region": region, "animal": animal, "x": rng.uniform(0, 4, len(region))}
    pres = {k: v for k, v in pres.items() if k not in drop}
    coords = {**{k: ("presentation", v) for k, v in pres.items()}, **{k: ("neuroid", v) for k, v in neu.items()}}
    dims = ("presentation", "neuroid")
    index = {"presentation": list(pres), "neuroid": list(neu)}
    if time_bins:
        dims += ("time_bin",)
        coords.update(time_bin_start=("time_bin", [b[0] for b in BINS]),
                      time_bin_end=("time_bin", [b[1] for b in BINS]))
        index["time_bin"] = ["time_bin_start", "time_bin_end"]
    attrs = {"identifier": "test.Assembly2024", "stimulus_set_identifier": "test.stimuli",
             "stimulus_set": pd.DataFrame({"stimulus_id": STIMULUS_IDS})}
    da = xr.DataArray(rng.standard_normal(shape), dims=dims, coords=coords, attrs=attrs)
    return da.set_index(index)


def write_like_brainio(assembly: xr.DataArray, path, name=None):
    """What brainio's write_netcdf does: reset the MultiIndexes, drop DataFrame attrs, h5netcdf."""
    flat = assembly.reset_index(list(assembly.indexes))
    flat.attrs = {k: v for k, v in flat.attrs.items() if not isinstance(v, pd.DataFrame)}
    flat = flat.rename(name) if name else flat
    flat.to_netcdf(path, engine="h5netcdf")
    return path


def stimulus_set(ids=STIMULUS_IDS, seed=1):
    ids = np.asarray(ids)[np.random.default_rng(seed).permutation(len(ids))]
    return xr.Dataset(coords={"stimulus_id": ("stimulus", ids)})


def load(path, stimuli=None, **spec):
    """``netcdf.load`` as the workflow calls it, for ``datasets.bs``."""
    spec = {"kind": "netcdf", "stimuli": "s", "path": str(path), **spec}
    return netcdf.load("bs", spec, stimulus_set() if stimuli is None else stimuli)


def flat_sorted(da: xr.DataArray) -> xr.DataArray:
    """Flattened, presentations sorted by (stimulus_id, repetition), neuroids by neuroid_id."""
    flat = da.reset_index([d for d in da.dims if isinstance(da.indexes.get(d), pd.MultiIndex)])
    p = np.lexsort((flat["repetition"].values, flat["stimulus_id"].values.astype(str)))
    return flat.isel(presentation=p, neuroid=np.argsort(flat["neuroid_id"].values.astype(str)))


# --------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("name", [None, "data"], ids=["unnamed", "named"])
@pytest.mark.parametrize("time_bins", [False, True], ids=["static", "time_bins"])
def test_round_trip_through_a_brainio_file(tmp_path, time_bins, name):
    source = make_assembly(time_bins)
    path = write_like_brainio(source, tmp_path / "assy.nc", name)
    stimuli = stimulus_set()
    assert is_assembly(read_netcdf(path))
    brain = load(path, stimuli=stimuli)

    assert brain["stimulus_id"].values.tolist() == stimuli["stimulus_id"].values.tolist()
    assert brain["responses"].dims == ("stimulus", "neuroid", "repetition") + (("time",) if time_bins else ())
    assert brain.sizes["repetition"] == N_REP and brain.sizes["neuroid"] == 8
    flat = source.reset_index(["presentation", "neuroid"])
    for i, sid in enumerate(brain["stimulus_id"].values):
        for r in range(N_REP):
            row = np.flatnonzero((flat["stimulus_id"].values == sid) & (flat["repetition"].values == r)).item()
            for j, nid in enumerate(brain["neuroid_id"].values):
                col = np.flatnonzero(flat["neuroid_id"].values == nid).item()
                np.testing.assert_array_equal(brain["responses"].values[i, j, r], flat.values[row, col])
    assert brain["repetition"].values.tolist() == list(range(N_REP))
    assert brain["roi"].values.tolist() == flat["region"].values.tolist()
    assert brain["subject"].values.tolist() == brain["animal"].values.tolist() == flat["animal"].values.tolist()
    np.testing.assert_array_equal(brain["x"].values, flat["x"].values)
    expected_objects = dict(zip(STIMULUS_IDS, OBJECTS))
    assert brain["object_name"].values.tolist() == [expected_objects[s] for s in brain["stimulus_id"].values]
    assert brain.attrs["source_format"] == "brainscore_assembly" and brain.attrs["dataset_kind"] == "netcdf"
    assert brain.attrs["n_trials_dropped"] == 0 and len(brain.attrs["dataset_checksum"]) == 64
    assert brain.attrs["identifier"] == "test.Assembly2024"
    assert brain.attrs["source_file"] == str(path)
    if time_bins:
        np.testing.assert_allclose(brain["time"].values, [0.12, 0.22])
        assert brain["time"].attrs["units"] == "s"
        assert brain["time_bin_start"].values.tolist() == [70, 170]
        assert brain["time_bin_end"].values.tolist() == [170, 270]

    back = to_assembly(brain)
    assert back.dims == source.dims
    assert set(back.indexes["presentation"].names) >= {"stimulus_id", "repetition", "object_name"}
    assert list(back.indexes["neuroid"].names)[:3] == ["neuroid_id", "region", "subject"]
    got, want = flat_sorted(back), flat_sorted(source)
    np.testing.assert_array_equal(got.values, want.values)
    for level in want.coords:
        np.testing.assert_array_equal(got[level].values, want[level].values, err_msg=level)
    np.testing.assert_array_equal(got["subject"].values, want["animal"].values)


def test_in_memory_multiindexed_assembly_matches_the_file(tmp_path):
    source = make_assembly(time_bins=True)
    stimuli = stimulus_set()
    in_memory = from_assembly(source, stimuli["stimulus_id"].values, what="memory")
    from_file = load(write_like_brainio(source, tmp_path / "assy.nc"), stimuli=stimuli)
    xr.testing.assert_identical(in_memory["responses"], from_file["responses"])
    assert in_memory.attrs["dataset_checksum"] == from_file.attrs["dataset_checksum"]
    assert "stimulus_set" not in in_memory.attrs  # the DataFrame attr is dropped


def test_image_id_and_subject_fallbacks(tmp_path):
    source = make_assembly(id_level="image_id").reset_index("neuroid").drop_vars("animal")
    brain = load(write_like_brainio(source, tmp_path / "assy.nc"), subject="monkey-m", rois=["IT"])
    assert set(brain["subject"].values.tolist()) == {"monkey-m"}
    assert set(brain["roi"].values.tolist()) == {"IT"} and brain.sizes["neuroid"] == 4
    no_subject = from_assembly(source, STIMULUS_IDS, what="x")
    assert set(no_subject["subject"].values.tolist()) == {"sub-01"}


# --------------------------------------------------------------------------- unequal repetitions
def _unequal(tmp_path):
    """img00 loses its repetition 0: it keeps repetitions 1 and 2, the others 0, 1, 2."""
    source = make_assembly().reset_index(["presentation", "neuroid"])
    gone = (source["stimulus_id"].values == "img00") & (source["repetition"].values == 0)
    source = source.isel(presentation=np.flatnonzero(~gone))
    return source, write_like_brainio(source, tmp_path / "assy.nc")


def test_unequal_repetitions_are_truncated_with_a_warning(tmp_path):
    source, path = _unequal(tmp_path)
    with pytest.warns(UserWarning, match=r"kept the first 2 of each \(4 trial\(s\) dropped\)"):
        brain = load(path)
    assert brain.sizes["repetition"] == 2 and brain.attrs["n_trials_dropped"] == 4
    assert "repetition" not in brain.coords  # the kept labels differ between stimuli: (1, 2) vs (0, 1)
    sid = brain["stimulus_id"].values.tolist()
    for stim, reps in (("img00", [1, 2]), ("img03", [0, 1])):
        rows = [np.flatnonzero((source["stimulus_id"].values == stim) & (source["repetition"].values == r)).item()
                for r in reps]
        np.testing.assert_array_equal(brain["responses"].values[sid.index(stim)], source.values[rows].T)


def test_unequal_repetitions_can_be_averaged(tmp_path):
    source, path = _unequal(tmp_path)
    brain = load(path, unequal_trials="average")
    assert brain.sizes["repetition"] == 1 and brain.attrs["n_trials_dropped"] == 0
    for i, stim in enumerate(brain["stimulus_id"].values):
        rows = source["stimulus_id"].values == stim
        np.testing.assert_allclose(brain["responses"].values[i, :, 0], source.values[rows].mean(0))


def test_unequal_repetitions_error_on_request(tmp_path):
    _, path = _unequal(tmp_path)
    with pytest.raises(BrainDataError, match="between 2 and 3 trials"):
        load(path, unequal_trials="error")


# --------------------------------------------------------------------------- bad inputs
def test_missing_stimulus_id_level_names_the_file(tmp_path):
    path = write_like_brainio(make_assembly(drop=("stimulus_id",)), tmp_path / "noid.nc")
    with pytest.raises(BrainDataError, match=r"noid\.nc: the assembly has no 'stimulus_id' \(or 'image_id'\)"):
        load(path)


def test_assembly_stimulus_not_in_the_stimulus_set_names_the_file(tmp_path):
    path = write_like_brainio(make_assembly(), tmp_path / "extra.nc")
    with pytest.raises(BrainDataError, match=r"extra\.nc: 1 stimulus id\(s\) not in the stimulus set.*img04"):
        load(path, stimuli=stimulus_set(STIMULUS_IDS[:-1]))


def test_nan_values_are_counted(tmp_path):
    source = make_assembly()
    source.values[[0, 3, 7], [1, 1, 2]] = np.nan
    with pytest.raises(BrainDataError, match=r"nan\.nc: the assembly holds 3 NaN value\(s\) out of 120"):
        load(write_like_brainio(source, tmp_path / "nan.nc"))


def test_rois_naming_an_absent_region(tmp_path):
    path = write_like_brainio(make_assembly(), tmp_path / "assy.nc")
    with pytest.raises(BrainDataError, match=r"config key 'datasets\.bs\.rois': ROI 'V1' is empty .*\['IT', 'V4'\]"):
        load(path, rois=["IT", "V1"])


def test_unexpected_dims_and_ambiguous_variables(tmp_path):
    source = make_assembly().reset_index(["presentation", "neuroid"]).drop_attrs()
    with pytest.raises(BrainDataError, match=r"memory: .*unexpected: \['session'\]"):
        from_assembly(source.expand_dims(session=2), STIMULUS_IDS, what="memory")
    xr.Dataset({"a": source, "b": source * 2}).to_netcdf(tmp_path / "two.nc", engine="h5netcdf")
    with pytest.raises(BrainDataError, match=r"two\.nc: 2 variables .*set 'datasets\.bs\.variable'"):
        load(tmp_path / "two.nc")
    a, b = (load(tmp_path / "two.nc", variable=v)["responses"].values for v in "ab")
    np.testing.assert_array_equal(b, 2 * a)
    with pytest.raises(BrainDataError, match=r"'datasets\.bs\.variable': .*two\.nc has no variable 'c'"):
        load(tmp_path / "two.nc", variable="c")


def test_contract_files_are_not_assemblies(tmp_path):
    brain = from_assembly(make_assembly(), STIMULUS_IDS, what="x")
    assert not is_assembly(brain) and is_assembly(to_assembly(brain))
