"""The ``mne_epochs`` dataset kind (MNE ``*-epo.fif`` files) and the simulated MEG writer."""

from __future__ import annotations

import json

import mne
import numpy as np
import pytest
import xarray as xr

from brainalign.datasets import mne_epochs
from brainalign.datasets.contract import BrainDataError, check_brain
from brainalign.io import ActivationWriter, array_checksum
from brainalign.simulate import meg

CHANNELS = {"MEG 0111": "mag", "MEG 0121": "mag", "MEG 0211": "mag", "MEG 0112": "grad", "MEG 0113": "grad",
            "EEG 001": "eeg", "EEG 002": "eeg", "STI 014": "stim"}
DATA_CHANNELS = [ch for ch, kind in CHANNELS.items() if kind != "stim"]
STIMULI = ["s3", "s1", "s2"]  # the stimulus set's order, deliberately not sorted
CODES = [2, 1, 3, 3, 1, 2, 1, 2, 3]  # three trials of each stimulus, in presentation order
NAMES = {"s1": 1, "s2": 2, "s3": 3}
ALIASING = "ignore:The measurement information indicates a low-pass"


def stimulus_set(ids=STIMULI) -> xr.Dataset:
    return xr.Dataset(coords={"stimulus_id": ("stimulus", np.asarray(ids))})


def write_epochs(path, codes=CODES, event_id=None, sfreq=100.0, tmin=-0.1, n_times=31, seed=0, data=None):
    """Random epochs (T-scale) on :data:`CHANNELS` saved to ``path``."""
    info = mne.create_info(list(CHANNELS), sfreq, list(CHANNELS.values()))
    if data is None:
        data = np.random.default_rng(seed).standard_normal((len(codes), len(CHANNELS), n_times)) * 1e-12
    events = np.stack([100 * np.arange(1, len(codes) + 1), np.zeros(len(codes), int), codes], axis=1)
    event_id = event_id or {sid: code for sid, code in NAMES.items() if code in codes}
    epochs = mne.EpochsArray(data, info, events, tmin=tmin, event_id=event_id, verbose="error")
    epochs.save(path, overwrite=True, verbose="error")
    return path


def trials_by_stimulus(codes, ids=STIMULI):
    """Trial indices of each stimulus (stimulus-set order), in presentation order."""
    return [np.flatnonzero(np.asarray(codes) == NAMES[sid]) for sid in ids]


def expected_block(epochs: mne.Epochs, codes=CODES, ids=STIMULI) -> np.ndarray:
    """(stimulus, channel, repetition, time) built by hand from MNE's own data."""
    data = epochs.get_data()
    return np.stack([np.stack([data[t] for t in rows], axis=1) for rows in trials_by_stimulus(codes, ids)])


def subject_block(brain: xr.Dataset, subject: str, channels=DATA_CHANNELS) -> np.ndarray:
    """A subject's responses with neuroids in ``channels`` order."""
    resp = brain["responses"].isel(neuroid=np.flatnonzero(brain["subject"].values == subject))
    sensors = list(resp["sensor"].values)
    resp = resp.isel(neuroid=[sensors.index(ch) for ch in channels])
    return resp.transpose("stimulus", "neuroid", "repetition", "time").values


def load(tmp_path, ids=STIMULI, **spec):
    return mne_epochs.load("meg", {"kind": "mne_epochs", "files": "sub-*_epo.fif", **spec}, stimulus_set(ids),
                           base_dir=tmp_path)


# --------------------------------------------------------------------------- contract
def test_contract_equals_epochs_data(tmp_path):
    paths = [write_epochs(tmp_path / f"sub-0{s}_task-x_epo.fif", seed=s) for s in (1, 2)]
    brain = check_brain(load(tmp_path))
    resp = brain["responses"]
    assert resp.dims == ("stimulus", "neuroid", "repetition", "time")
    assert resp.sizes == {"stimulus": 3, "neuroid": 14, "repetition": 3, "time": 31}
    assert brain["stimulus_id"].values.tolist() == STIMULI
    assert sorted(set(brain["subject"].values)) == ["sub-01", "sub-02"]
    assert "STI 014" not in brain["sensor"].values  # picks: "data"
    for coord in ("subject", "roi", "sensor", "ch_type"):
        assert brain[coord].dims == ("neuroid",)
    assert np.array_equal(brain["roi"].values, brain["ch_type"].values)  # one ROI per channel type
    assert set(brain["roi"].values) == {"mag", "grad", "eeg"}
    assert brain["time"].attrs["units"] == "s"
    for s, path in enumerate(paths, start=1):
        epochs = mne.read_epochs(path, preload=True, verbose="error").pick("data")
        assert np.array_equal(brain["time"].values, epochs.times)
        assert np.array_equal(subject_block(brain, f"sub-0{s}"), expected_block(epochs))
    assert brain.attrs["dataset_kind"] == "mne_epochs"
    assert brain.attrs["source_files"] == ",".join(map(str, paths))
    assert brain.attrs["n_trials_dropped"] == 0 and brain.attrs["n_channels_dropped"] == 0
    assert brain.attrs["sfreq"] == 100.0
    assert brain.attrs["dataset_checksum"] == array_checksum(resp.values, np.asarray(STIMULI))


@pytest.mark.filterwarnings(ALIASING)
def test_baseline_crop_and_decimation_match_mne(tmp_path):
    path = write_epochs(tmp_path / "sub-01_epo.fif")
    brain = load(tmp_path, baseline=[None, 0], crop=[-0.05, 0.2], decim=2)
    epochs = (mne.read_epochs(path, preload=True, verbose="error").pick("data").apply_baseline((None, 0))
              .crop(-0.05, 0.2).decimate(2))
    assert np.allclose(brain["time"].values, epochs.times, rtol=0, atol=1e-12)
    assert np.array_equal(subject_block(brain, "sub-01"), expected_block(epochs))
    assert brain.attrs["sfreq"] == 50.0


def test_picks_and_a_bad_crop(tmp_path):
    write_epochs(tmp_path / "sub-01_epo.fif")
    brain = load(tmp_path, picks="mag")
    assert brain["sensor"].values.tolist() == ["MEG 0111", "MEG 0121", "MEG 0211"]
    with pytest.raises(BrainDataError, match=r"datasets\.meg\.crop") as err:
        load(tmp_path, crop=[5.0, 6.0])
    assert "sub-01_epo.fif" in str(err.value)


def test_file_stem_is_the_subject_without_a_bids_entity(tmp_path):
    write_epochs(tmp_path / "alice-epo.fif")
    brain = mne_epochs.load("meg", {"files": ["alice-epo.fif"]}, stimulus_set(), base_dir=tmp_path)
    assert set(brain["subject"].values) == {"alice-epo"}
    assert mne_epochs.subject_label(tmp_path / "x" / "sub-07_ses-1_task-a_epo.fif.gz") == "sub-07"


def test_files_resolve_against_root_before_base_dir(tmp_path):
    (tmp_path / "data").mkdir()
    write_epochs(tmp_path / "data" / "sub-01_epo.fif")
    brain = mne_epochs.load("meg", {"files": "sub-*_epo.fif"}, stimulus_set(), base_dir=tmp_path,
                            root=tmp_path / "data")
    assert brain.attrs["source_files"] == str(tmp_path / "data" / "sub-01_epo.fif")


# --------------------------------------------------------------------------- events
def test_event_map_by_name_code_and_tsv(tmp_path):
    by_label = {"cond/a": 1, "cond/b": 2, "cond/c": 3}
    write_epochs(tmp_path / "sub-01_epo.fif", event_id=by_label)
    (tmp_path / "names.tsv").write_text("event\tstimulus_id\ncond/a\ts1\ncond/b\ts2\ncond/c\ts3\n")
    (tmp_path / "codes.tsv").write_text("event\tstimulus_id\n1\ts1\n2\ts2\n3\ts3\n")
    maps = {"name": {"cond/a": "s1", "cond/b": "s2", "cond/c": "s3"}, "code": {1: "s1", 2: "s2", 3: "s3"},
            "code_str": {"1": "s1", "2": "s2", "3": "s3"}, "tsv_names": "names.tsv", "tsv_codes": "codes.tsv"}
    epochs = mne.read_epochs(tmp_path / "sub-01_epo.fif", preload=True, verbose="error").pick("data")
    for label, event_map in maps.items():
        brain = load(tmp_path, event_map=event_map)
        assert np.array_equal(subject_block(brain, "sub-01"), expected_block(epochs)), label


def test_repetitions_follow_presentation_order_across_runs(tmp_path):
    """Repetition k of a stimulus is its k-th trial: run 1's trials first, then run 2's."""
    markers = {}
    for run, codes in ((1, [2, 1, 3, 1]), (2, [3, 2, 3, 1, 2])):
        marker = 10.0 * run + np.arange(len(codes))
        data = (marker[:, None, None] + 0.001 * np.arange(31)) * np.ones((1, len(CHANNELS), 1)) * 1e-12
        write_epochs(tmp_path / f"sub-01_run-{run}_epo.fif", codes=codes, data=data)
        for c, m in zip(codes, marker):
            markers.setdefault(c, []).append(m)
    brain = load(tmp_path)
    assert brain.sizes["repetition"] == 3 and set(brain["subject"].values) == {"sub-01"}
    first = brain["responses"].isel(neuroid=0, time=0).transpose("stimulus", "repetition").values * 1e12
    assert np.allclose(first, [markers[NAMES[sid]] for sid in STIMULI], rtol=1e-6)


def test_unequal_trials(tmp_path):
    codes = [1, 2, 3, 1, 2, 3, 1, 3]  # s1: 3, s2: 2, s3: 3 trials
    path = write_epochs(tmp_path / "sub-01_epo.fif", codes=codes)
    data = mne.read_epochs(path, preload=True, verbose="error").pick("data").get_data()
    with pytest.warns(UserWarning, match="2 trial"):
        brain = load(tmp_path)
    assert brain.sizes["repetition"] == 2 and brain.attrs["n_trials_dropped"] == 2
    first_two = [rows[:2] for rows in trials_by_stimulus(codes)]
    assert np.array_equal(subject_block(brain, "sub-01"), np.stack([np.stack([data[t] for t in r], 1)
                                                                     for r in first_two]))
    brain = load(tmp_path, unequal_trials="average")
    mean = np.stack([data[rows].mean(0) for rows in trials_by_stimulus(codes)])[:, :, None]
    assert brain.sizes["repetition"] == 1 and np.allclose(subject_block(brain, "sub-01"), mean, rtol=1e-12)
    with pytest.raises(BrainDataError, match="unequal_trials") as err:
        load(tmp_path, unequal_trials="error")
    assert "sub-01_epo.fif" in str(err.value)


def test_unequal_repetitions_across_subjects(tmp_path):
    write_epochs(tmp_path / "sub-01_epo.fif")
    write_epochs(tmp_path / "sub-02_epo.fif", codes=[1, 2, 3, 3, 2, 1])
    with pytest.warns(UserWarning, match="different numbers of repetitions"):
        brain = load(tmp_path)
    assert brain.sizes["repetition"] == 2 and brain.attrs["n_trials_dropped"] == 3
    with pytest.raises(BrainDataError, match="unequal_trials"):
        load(tmp_path, unequal_trials="error")


# --------------------------------------------------------------------------- ROIs and channels
def test_rois_from_channel_patterns(tmp_path):
    write_epochs(tmp_path / "sub-01_epo.fif")
    brain = load(tmp_path, rois={"left": ["MEG 01*"], "mags": ["MEG ??11", "MEG 0121"]})
    sensors = {roi: sorted(brain["sensor"].values[brain["roi"].values == roi]) for roi in ("left", "mags")}
    assert sensors == {"left": ["MEG 0111", "MEG 0112", "MEG 0113", "MEG 0121"],
                       "mags": ["MEG 0111", "MEG 0121", "MEG 0211"]}


def test_roi_matching_no_channel(tmp_path):
    write_epochs(tmp_path / "sub-01_epo.fif")
    with pytest.raises(BrainDataError, match=r"datasets\.meg\.rois\.frontal") as err:
        load(tmp_path, rois={"left": ["MEG 01*"], "frontal": ["MEG 99*"]})
    assert "sub-01_epo.fif" in str(err.value)


def test_bad_channels(tmp_path):
    data = np.random.default_rng(0).standard_normal((len(CODES), len(CHANNELS), 31)) * 1e-12
    data[4, 1, 7] = np.nan  # MEG 0121
    data[:, 5, :] = 3e-6  # EEG 001 is flat
    write_epochs(tmp_path / "sub-01_epo.fif", data=data)
    with pytest.raises(BrainDataError, match=r"datasets\.meg\.bad_channels") as err:
        load(tmp_path, bad_channels="error")
    assert "sub-01_epo.fif" in str(err.value) and "MEG 0121" in str(err.value)
    with pytest.warns(UserWarning, match="2 channel"):
        brain = check_brain(load(tmp_path))
    assert brain.attrs["n_channels_dropped"] == 2
    assert sorted(brain["sensor"].values) == sorted(set(DATA_CHANNELS) - {"MEG 0121", "EEG 001"})


# --------------------------------------------------------------------------- bad inputs
def test_unknown_event(tmp_path):
    write_epochs(tmp_path / "sub-01_epo.fif")
    with pytest.raises(BrainDataError, match=r"datasets\.meg\.event_map") as err:
        load(tmp_path, event_map={1: "s1", 2: "s2"})
    assert "sub-01_epo.fif" in str(err.value) and "s3 (code 3)" in str(err.value)
    brain = load(tmp_path, ids=["s1", "s2"], event_map={1: "s1", 2: "s2"}, unknown_events="drop")
    assert brain["stimulus_id"].values.tolist() == ["s1", "s2"]
    assert brain.attrs["n_unknown_events_dropped"] == 3 and brain.attrs["n_trials_dropped"] == 3


def test_stimulus_not_in_the_stimulus_set(tmp_path):
    write_epochs(tmp_path / "sub-01_epo.fif")
    with pytest.raises(BrainDataError, match="not in the stimulus set") as err:
        load(tmp_path, ids=["s1", "s2"])
    assert "sub-01_epo.fif" in str(err.value) and "s3" in str(err.value)


def test_no_files_matched(tmp_path):
    with pytest.raises(BrainDataError, match=r"datasets\.meg\.files") as err:
        load(tmp_path, files="meg/sub-*_epo.fif")
    assert "meg/sub-*_epo.fif" in str(err.value)
    with pytest.raises(BrainDataError, match=r"datasets\.meg\.files.*missing_epo\.fif"):
        load(tmp_path, files=["missing_epo.fif"])


def test_inconsistent_times_or_sampling(tmp_path):
    write_epochs(tmp_path / "sub-01_epo.fif")
    write_epochs(tmp_path / "sub-02_epo.fif", tmin=0.0)
    with pytest.raises(BrainDataError, match="epoch times") as err:
        load(tmp_path)
    assert "sub-01_epo.fif" in str(err.value) and "sub-02_epo.fif" in str(err.value)
    write_epochs(tmp_path / "sub-02_epo.fif", sfreq=200.0, n_times=61)
    with pytest.raises(BrainDataError, match="sampling frequencies") as err:
        load(tmp_path)
    assert "sub-02_epo.fif" in str(err.value)


# --------------------------------------------------------------------------- simulated MEG
@pytest.fixture()
def small_activations(tmp_path):
    """A fake model: 12 stimuli, hidden states 0..2 of width 16."""
    ids = [f"t{i:02d}" for i in range(12)]
    rng = np.random.default_rng(0)
    path = tmp_path / "fake.nc"
    with ActivationWriter(path, ids, ["h0", "h1", "h2"], [16, 16, 16]) as writer:
        writer.write(0, [rng.standard_normal((12, 16)) for _ in range(3)])
    return ids, path


SIM = {"subjects": 2, "repetitions": 2,
       "planted": {"early": {"model": "fake", "layer": 1, "peak": 0.1},
                   "late": {"model": "fake", "layer": 2, "peak": 0.25, "width": 0.05}}}


def test_simulated_meg_files(tmp_path, small_activations):
    ids, activations = small_activations
    paths = meg.write("toy", {"simulate": SIM}, stimulus_set(ids), {"fake": activations}, tmp_path / "sim", seed=3)
    assert [p.name for p in paths] == ["sub-01_task-toy_epo.fif", "sub-02_task-toy_epo.fif", "planted.json"]
    epochs = mne.read_epochs(paths[0], preload=True, verbose="error")
    assert epochs.ch_names == mne.channels.read_layout("Vectorview-mag").names
    assert set(epochs.get_channel_types()) == {"mag"} and epochs.info["sfreq"] == 100.0
    assert np.allclose(epochs.times, np.linspace(-0.1, 0.6, 71))
    assert epochs.event_id == {sid: code for code, sid in enumerate(sorted(ids), start=1)}
    assert np.array_equal(np.bincount(epochs.events[:, 2])[1:], np.full(12, 2))
    pos = np.array([ch["loc"][:3] for ch in epochs.info["chs"]])
    assert np.allclose(np.linalg.norm(pos, axis=1), meg.HELMET_RADIUS) and len(np.unique(pos, axis=0)) == 102
    data = epochs.get_data()
    assert 1e-14 < np.median(np.abs(data)) < 1e-12
    # Noise is correlated across sensors: before the stimulus, neighbours move together.
    noise = epochs.copy().crop(None, -0.02).get_data().transpose(1, 0, 2).reshape(102, -1)
    corr = np.corrcoef(noise)
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    near = (dist > 0) & (dist < 0.04)
    assert corr[near].mean() > 0.3 and abs(corr[dist > 0.15].mean()) < corr[near].mean() / 2
    record = json.loads(paths[-1].read_text())
    assert record["seed"] == 3 and record["snr"] == meg.DEFAULTS["snr"]
    assert record["planted"]["early"] == {"model": "fake", "layer_index": 1, "layer": "h1", "peak": 0.1,
                                          "width": meg.DEFAULT_WIDTH}
    brain = check_brain(mne_epochs.load("toy", {"files": "*_epo.fif"}, stimulus_set(ids), root=tmp_path / "sim"))
    assert brain["responses"].sizes == {"stimulus": 12, "neuroid": 204, "repetition": 2, "time": 71}
    assert set(brain["roi"].values) == {"mag"}


def test_simulation_is_deterministic(tmp_path, small_activations):
    ids, activations = small_activations

    def data(seed, folder, order=ids):
        paths = meg.write("toy", {"simulate": SIM}, stimulus_set(order), {"fake": activations}, tmp_path / folder, seed=seed)
        read = [mne.read_epochs(p, preload=True, verbose="error") for p in paths[:-1]]
        return [e.get_data() for e in read], [e.events for e in read]

    first, events = data(5, "a")
    again, events_again = data(5, "b", order=ids[::-1])  # the table's row order does not matter either
    other, _ = data(6, "c")
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert all(np.array_equal(x, y) for x, y in zip(events, events_again))
    assert not np.allclose(first[0], other[0], rtol=0.1, atol=0)
    assert not np.allclose(first[0], first[1], rtol=0.1, atol=0)  # subjects differ


def test_simulation_names_a_missing_planted_layer(tmp_path, small_activations):
    ids, activations = small_activations
    spec = {"planted": {"deep": {"model": "fake", "layer": 9, "peak": 0.2}}}
    with pytest.raises(ValueError, match=r"datasets\.toy\.simulate\.planted\.deep\.layer"):
        meg.write("toy", {"simulate": spec}, stimulus_set(ids), {"fake": activations}, tmp_path)
    with pytest.raises(ValueError, match=r"datasets\.toy\.simulate\.planted\.deep\.model"):
        meg.write("toy", {"simulate": {"planted": {"deep": {"model": "other", "layer": 1, "peak": 0.2}}}},
                  stimulus_set(ids), {"fake": activations}, tmp_path)


# --------------------------------------------------------------------------- planted truth
PLANTED = {2: 0.10, 4: 0.20, 6: 0.30}  # MiniLM hidden state: latency (s)


@pytest.mark.slow
def test_planted_latencies_recovered_from_meg_files(tmp_path, minilm_activations, stimuli_csv):
    """Simulated Vectorview epochs -> mne_epochs -> time-resolved RSA finds each planted
    layer at its latency (simulation defaults: snr, width, subjects, repetitions)."""
    from brainalign.jobs.score import score
    from brainalign.io import write_netcdf
    from brainalign.stimuli import load_stimulus_table

    stimuli = load_stimulus_table(stimuli_csv)
    spec = {"planted": {f"layer{layer}": {"model": "minilm", "layer": layer, "peak": peak}
                        for layer, peak in PLANTED.items()}}
    meg.write("meg", {"simulate": spec}, stimuli, {"minilm": minilm_activations}, tmp_path / "sim", seed=0)
    brain = check_brain(mne_epochs.load("meg", {"files": "*_epo.fif"}, stimuli, root=tmp_path / "sim"))
    write_netcdf(brain, tmp_path / "meg.nc")
    scores = score("rsa", minilm_activations, tmp_path / "meg.nc",
                   {"comparison": "spearman", "n_permutations": 0, "n_bootstrap": 0}, seed=0)
    assert scores["score"].dims == ("layer", "subject", "roi", "time")
    curves = scores["score_mean"].sel(roi="mag")
    curves = curves.assign_coords(layer=curves["layer_index"].values)
    peaks = {layer: float(curves["time"][int(curves.sel(layer=layer).argmax("time"))]) for layer in PLANTED}
    at_peak = {layer: curves.sel(time=peak, method="nearest").sel(layer=list(PLANTED)).values.round(3).tolist()
               for layer, peak in PLANTED.items()}
    print("recovered peaks", peaks, "planted-layer scores at each planted peak", at_peak)
    for layer, peak in PLANTED.items():
        assert abs(peaks[layer] - peak) <= 0.03 + 1e-9, (layer, peaks[layer], peak)
        here = curves.sel(time=peak, method="nearest")
        others = [o for o in PLANTED if o != layer]
        assert float(here.sel(layer=layer)) > float(here.sel(layer=others).max()), (layer, at_peak[layer])
    assert peaks[2] < peaks[4] < peaks[6]
