"""The real 92-image data (Kriegeskorte et al. 2008) through the whole workflow,
checked against rsatoolbox's own computation on the same files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.io as sio
import yaml
from conftest import SHARED_DATA, check_golden, copy_workflow, run_snakemake

from brainalign.io import read_netcdf

DATA = SHARED_DATA / "kriegeskorte2008_92images"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"real data not found at {DATA}")

N_PERM, N_BOOT = 200, 200


@pytest.fixture(scope="module")
def k92_run(tmp_path_factory):
    """The example config, run as a user would, beside a ../shared checkout; fewer
    resamples than the example's 1000 to keep the suite fast."""
    root = tmp_path_factory.mktemp("k92")
    os.symlink(SHARED_DATA.parent, root / "shared")
    workdir = copy_workflow(root / "brainalign")
    config = yaml.safe_load((workdir / "config/examples/kriegeskorte92.yaml").read_text())
    config["metrics"]["rsa"].update(n_permutations=N_PERM, n_bootstrap=N_BOOT)
    (workdir / "k92.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "--profile", "profiles/local", "--configfile", "k92.yaml", check=True)
    run_snakemake(workdir, "--configfile", "k92.yaml", "--report", "results/report.html", check=True)
    return workdir


def human_it_rdms():
    """The 4 subjects' human IT RDMs (92 x 92), each the mean of its two sessions (in float64;
    the file stores float32, and brainalign averages in float64)."""
    rdms = sio.loadmat(DATA / "92_brainRDMs.mat")["RDMs"]
    return np.stack([(rdms[0, s, 0]["RDM"].astype(np.float64) + rdms[0, s, 1]["RDM"]) / 2 for s in range(4)])


def model_rdms():
    models = sio.loadmat(DATA / "92_modelRDMs.mat")["Models"][0]
    return [str(m["name"][0]) for m in models], np.stack([m["RDM"] for m in models])


def test_noise_ceiling_and_monkey_vs_human_equal_rsatoolbox(k92_run):
    from rsatoolbox.inference import boot_noise_ceiling
    from rsatoolbox.rdm import RDMs, compare

    scores = read_netcdf(k92_run / "results/scores/human_it/models92/rsa.nc")
    human = RDMs(human_it_rdms())
    low, high = boot_noise_ceiling(human, method="tau-a", rdm_descriptor="index")
    assert float(scores["ceiling_low"].sel(roi="hIT")) == pytest.approx(low, abs=1e-8)
    assert float(scores["ceiling_high"].sel(roi="hIT")) == pytest.approx(high, abs=1e-8)
    assert 0.05 < low < high < 0.6

    names, models = model_rdms()
    expected = compare(RDMs(models), human, method="tau-a")  # (model, subject)
    got = scores["score"].sel(roi="hIT").transpose("layer", "subject")
    assert list(got["layer"].values) == names
    np.testing.assert_allclose(got.values, expected, atol=1e-8, rtol=0)
    np.testing.assert_allclose(scores["score_mean"].sel(roi="hIT").values, expected.mean(1), atol=1e-8, rtol=0)
    monkey = float(scores["score_mean"].sel(layer="monkeyIT", roi="hIT"))
    assert monkey == pytest.approx(expected[names.index("monkeyIT")].mean(), abs=1e-8)


def test_inference_on_real_data(k92_run):
    scores = read_netcdf(k92_run / "results/scores/human_it/models92/rsa.nc")
    hit = scores.sel(roi="hIT")
    mean, low, high = hit["score_mean"].values, hit["boot_ci_low"].values, hit["boot_ci_high"].values
    assert scores.attrs["n_bootstrap"] == N_BOOT and scores.attrs["n_permutations"] == N_PERM
    assert np.all(low <= mean) and np.all(mean <= high) and np.all(high - low > 0.005)
    # Monkey IT and the animacy model match human IT far beyond chance (Kriegeskorte et al. 2008).
    for layer in ("monkeyIT", "animacy"):
        assert float(hit["p_value"].sel(layer=layer)) == pytest.approx(1 / (N_PERM + 1))
        assert float(hit["p_fdr"].sel(layer=layer)) < 0.05
        assert float(hit["boot_ci_low"].sel(layer=layer)) > 0
    best = str(hit["best_layer"].values)
    assert best == hit["layer"].values[np.argmax(mean)]
    assert np.isnan(float(hit["best_layer_p"].sel(layer=best)))
    # Low-level models (V1, silhouette, Radon) are reliably worse than the best model.
    for layer in ("V1", "Silhouette", "RADON"):
        assert float(hit["best_layer_p"].sel(layer=layer)) < 0.05


def test_monkey_it_dataset_and_behaviour(k92_run):
    monkey = read_netcdf(k92_run / "results/scores/monkey_it/models92/rsa.nc")
    names, models = model_rdms()
    supplemental = sio.loadmat(DATA / "Kriegeskorte_Neuron2008_supplementalData.mat")["RDMs_mIT_hIT_fig1"]
    from rsatoolbox.rdm import RDMs, compare

    expected = compare(RDMs(models), RDMs(supplemental[0, 0]["RDM"]), method="tau-a")[:, 0]
    np.testing.assert_allclose(monkey["score"].sel(roi="mIT").squeeze("subject").values, expected, atol=1e-8)
    assert np.isnan(monkey["ceiling_low"]).all()  # one monkey: no ceiling across subjects
    behaviour = read_netcdf(k92_run / "results/scores/behaviour/models92/rsa.nc")
    assert behaviour.sizes["subject"] == 16
    assert np.isfinite(behaviour["ceiling_low"]).all()


def test_figures_and_categories(k92_run):
    scores = read_netcdf(k92_run / "results/scores/human_it/models92/rsa.nc")
    assert scores.sizes["stimulus"] == 92 and "category" in scores.coords
    np.testing.assert_allclose(scores["brain_rdm"].sel(roi="hIT").values, human_it_rdms().mean(0), atol=1e-6)
    for name in ("rsa", "rsa_rdms", "rsa_mds"):
        for ext in ("png", "svg"):
            path = k92_run / f"results/figures/human_it/models92/{name}.{ext}"
            assert path.stat().st_size > 5000, path
    report = (k92_run / "results/report.html").read_text(errors="replace")
    assert "rsa_rdms.png" in report and "rsa_mds.png" in report


NETWORKS = ("efficientnet_lite0", "mobilenet_v2")


@pytest.fixture(scope="module")
def best_layers(k92_run):
    """Each network's (and control's) best layer for human IT on the same 1,000 stimulus resamples."""
    from brainalign.jobs import rsa as rsa_scores
    from brainalign.io import read_activations

    brain = rsa_scores.brain_rdms(read_netcdf(k92_run / "results/brain/human_it.nc"))
    models, depths = {}, {}
    for name in [n + suffix for n in NETWORKS for suffix in ("", "_untrained")]:
        layers, _ = read_activations(k92_run / f"results/activations/objects92/{name}.nc")
        models[name] = rsa_scores.model_rdms(layers, "correlation")
        depths[name] = [float(layer["depth"]) for layer in layers]
    result = rsa_scores.best_layer_bootstrap(models, brain, "tau-a", 1000, np.random.default_rng(2008), depths)
    return result.sel(roi="hIT")


@pytest.mark.slow
@pytest.mark.parametrize("network", NETWORKS)
def test_pretrained_best_layer_beats_untrained_on_human_it(best_layers, k92_run, network):
    """Trained ImageNet networks match human IT better than the same architecture with
    random weights (e.g. Khaligh-Razavi & Kriegeskorte 2014; Storrs et al. 2021): the
    95% paired bootstrap interval of (best trained layer - best untrained layer) is above 0."""
    diff = best_layers["best_score"].sel(model=network) - best_layers["best_score"].sel(model=network + "_untrained")
    low, high = np.quantile(diff, [0.025, 0.975])
    assert low > 0, (network, low, high)
    # The pipeline's own per-layer scores agree with the bootstrap's observed values.
    scores = read_netcdf(k92_run / f"results/scores/human_it/{network}/rsa.nc").sel(roi="hIT")
    assert float(scores["score_mean"].max()) == pytest.approx(
        float(best_layers["observed_best_score"].sel(model=network)), abs=1e-10)
    control = read_netcdf(k92_run / f"results/scores/human_it/{network}_untrained/rsa.nc").sel(roi="hIT")
    assert float(scores["score_mean"].max()) > float(control["score_mean"].max()) + 0.05
    # The best trained layer reaches at least half of the lower noise ceiling.
    assert float(scores["score_mean"].max()) > 0.5 * float(scores["ceiling_low"])


@pytest.mark.slow
@pytest.mark.parametrize("network", NETWORKS)
def test_best_pretrained_layer_lies_in_the_deeper_half(best_layers, network):
    """The best layer's relative depth is >= 0.5 on the full data, and in at least 95% of
    the stimulus resamples (a one-sided 95% bootstrap test against the shallower half)."""
    depth = best_layers["best_depth"].sel(model=network).values
    assert float(best_layers["observed_best_depth"].sel(model=network)) >= 0.5
    assert np.mean(depth >= 0.5) >= 0.95, (network, np.quantile(depth, [0.05, 0.5]))


def test_vision_activations_carry_provenance(k92_run):
    from brainalign.io import read_activations

    layers, attrs = read_activations(k92_run / "results/activations/objects92/efficientnet_lite0.nc")
    assert [str(layer["layer"].values) for layer in layers] == \
        ["_bn0"] + [f"_blocks.{i}" for i in range(16)] + ["_bn1", "_fc"]
    assert [layer.sizes["unit"] for layer in layers] == [4096] * 18 + [1000]
    assert attrs["untrained"] == 0 and attrs["pooling"] == "random_projection"
    assert attrs["model_checksum"] == "57934424" + attrs["model_checksum"][8:]  # the file's sha256
    _, control = read_activations(k92_run / "results/activations/objects92/efficientnet_lite0_untrained.nc")
    assert control["untrained"] == 1 and control["control_of"] == "efficientnet_lite0"
    assert control["init_seed"] == 2008 and control["model_checksum"].startswith("state_dict:")
    figure = k92_run / "results/figures/human_it/efficientnet_lite0_untrained/rsa.png"
    assert figure.stat().st_size > 5000


def test_golden_scores(k92_run):
    """The 92-image example's key numbers (at this test's resample counts) equal
    tests/golden/kriegeskorte92.json at 1e-10."""
    check_golden(k92_run / "results", "kriegeskorte92")


def test_plan_estimates_within_30_percent_of_measured_peaks(k92_run):
    """``brainalign plan`` for the 92-image networks and their untrained controls (on CPU)
    against the peak resident memory each extraction job logged."""
    from brainalign.config import load_config
    from test_job_memory import check_estimates

    rows = check_estimates(k92_run, load_config(k92_run / "k92.yaml", base_dir=k92_run))
    assert len(rows) == 4
