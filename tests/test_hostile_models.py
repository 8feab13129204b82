"""Model files from strangers (issue 21, "trust nothing it is given"): .pth, .safetensors,
ONNX, training checkpoints and torch.hub downloads.

Every crafted file is made here by a small function (the fuzz corpus of model files), from a
tiny PSPNet (widths of 4 to 8, one block per stage, crop 33: a few thousand parameters). A file
that would make the program read or allocate without end is run through the real command line
in a child under an address-space limit (`hostile.run`); the rest calls the readers directly.
Each case: one line ``error: FILE: what`` naming the field and the value, exit 1, nothing
written, never a recommendation to unpickle.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import hostile
import psp_torch
from psp_torch.config import PSPNetConfig
from psp_torch.io import FORMAT, ModelFileError, read, save_pspnet
from psp_torch.limits import DEFAULT, Limits, ModelLimitError
from psp_torch.pspnet import PSPNet
from psp_torch.safetensors_file import FORMAT as ST_FORMAT

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "data" / "samples" / "VOC2012"

TINY = dict(num_classes=21, blocks=(1, 1, 1, 1), stem_widths=(4, 4, 8), mid_widths=(4, 4, 4, 4),
            out_widths=(8, 8, 8, 8), crop_size=33, bins=(1, 2), ppm_width=4, head_width=4)
DEPLOY = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 2 kernel_size: 1 } }
"""


# --- the corpus: crafted model files ---------------------------------------------------------

def tiny_model(**changes) -> PSPNet:
    torch.manual_seed(0)
    return PSPNet(PSPNetConfig(**{**TINY, **changes})).eval()


def payload(**changes) -> dict:
    """What save_pspnet writes for the tiny PSPNet (``config`` changes applied first)."""
    model = tiny_model(**changes)
    return {"kind": "pspnet", "config": model.config.to_dict(),
            "state_dict": model.state_dict(), "meta": dict(model.meta)}


def write_pth(path: Path, content: dict) -> Path:
    """A .pth exactly as torch.save writes one (the format field first, as io.save does)."""
    torch.save({"format": FORMAT, **content}, path)
    return path


def write_safetensors(path: Path, tensors: dict, header: dict) -> Path:
    """A safetensors file with any header strings (nothing of psp_torch's encoder checks)."""
    from safetensors.torch import save_file
    save_file(tensors, str(path), metadata={"format": ST_FORMAT, **header})
    return path


def with_config(**fields) -> dict:
    """The tiny payload whose config says something else (the tensors stay the tiny ones)."""
    p = payload()
    p["config"] = {**p["config"], **fields}
    return p


def caffenet_payload(prototxt) -> dict:
    return {"kind": "caffenet", "prototxt": prototxt,
            "blobs": {"conv": [torch.zeros(2, 3, 1, 1), torch.zeros(2)]}, "meta": {}}


def onnx_file(path: Path, props: dict | None = None, bomb: bool = False) -> Path:
    """A one-node ONNX model with the interface OnnxModel expects (data -> scores), its meta
    in metadata_props as converter/onnx_export.py writes it; `bomb`: scores are a
    ConstantOfShape of a constant shape of 10^10 elements."""
    import onnx
    from onnx import TensorProto, helper
    data = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, "H", "W"])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)
    inits = []
    if bomb:
        inits = [helper.make_tensor("shape", TensorProto.INT64, [2], [100_000, 100_000])]
        node = helper.make_node("ConstantOfShape", ["shape"], ["scores"])
    else:
        node = helper.make_node("Identity", ["data"], ["scores"])
    graph = helper.make_graph([node], "tiny", [data], [scores], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    meta = {"meta.name": '"tiny"', "meta.num_classes": "3", "meta.crop_size": "33",
            **(props or {})}
    for k, v in meta.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.save_model(model, str(path))
    return path


@pytest.fixture(scope="module")
def tiny_pth(tmp_path_factory) -> Path:
    return save_pspnet(tiny_model(), tmp_path_factory.mktemp("tiny") / "tiny.pth")


def export_cli(model_file: Path, tmp_path: Path, *extra):
    return hostile.run(["converter/export.py", model_file, "-o", tmp_path / "out", *extra],
                       cwd=tmp_path)


# --- 1. a CaffeNet's prototxt is text, never a path -------------------------------------------

@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_prototxt_field_naming_dev_zero_is_not_opened(fmt, tmp_path):
    if fmt == "pth":
        bad = write_pth(tmp_path / "zero.pth", caffenet_payload("/dev/zero"))
    else:
        bad = write_safetensors(tmp_path / "zero.safetensors",
                                {"blobs/conv/0": torch.zeros(2, 3, 1, 1)},
                                {"kind": "caffenet", "prototxt": "/dev/zero", "meta": "{}"})
    r = export_cli(bad, tmp_path)
    hostile.assert_one_line(r, bad.name, "prototxt")
    assert not (tmp_path / "out").exists()


def test_prototxt_field_naming_a_real_file_is_not_opened(tmp_path):
    (tmp_path / "deploy.prototxt").write_text(DEPLOY)
    genuine = write_pth(tmp_path / "genuine.pth", caffenet_payload(DEPLOY))
    assert psp_torch.load(genuine).meta == {}                 # the text itself: fine
    bad = write_pth(tmp_path / "path.pth", caffenet_payload(str(tmp_path / "deploy.prototxt")))
    with pytest.raises(ValueError, match="path.pth.*prototxt"):
        psp_torch.load(bad)


# --- 2. torch.hub downloads: keyed by URL, checked against a sha256 ----------------------------

@pytest.fixture
def hub(tmp_path, monkeypatch):
    """hubconf with torch.hub's cache in tmp_path and a download function serving a dict of
    URL -> local file (no network); the dict and a count of downloads come with it."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("hubconf_hostile", ROOT / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    served, fetched = {}, []

    def download(url, dst, hash_prefix=None, progress=True):
        fetched.append(url)
        Path(dst).write_bytes(Path(served[url]).read_bytes())
    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    return module, served, fetched


def test_hub_cache_is_keyed_by_url_not_by_name(hub, tmp_path):
    module, served, fetched = hub
    a = save_pspnet(tiny_model(num_classes=3), tmp_path / "a.pth")
    b = save_pspnet(tiny_model(num_classes=5), tmp_path / "b.pth")
    served["https://one.example/m/model.pth"] = a
    served["https://two.example/m/model.pth"] = b
    assert module.load("https://one.example/m/model.pth").config.num_classes == 3
    assert module.load("https://two.example/m/model.pth").config.num_classes == 5
    assert module.load("https://one.example/m/model.pth").config.num_classes == 3
    assert len(fetched) == 2                                   # the third came from the cache


def test_hub_checks_the_sha256(hub, tmp_path):
    from psp_torch.digest import file_sha256
    module, served, fetched = hub
    f = save_pspnet(tiny_model(num_classes=3), tmp_path / "f.pth")
    digest = file_sha256(f)
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:8]
    served[f"https://x.example/tiny-{wrong}.pth"] = f
    served[f"https://x.example/tiny-{digest[:8]}.pth"] = f
    served["https://x.example/plain.pth"] = f
    with pytest.raises(ValueError, match=f"sha256.*{wrong}"):
        module.load(f"https://x.example/tiny-{wrong}.pth", check_hash=True)
    assert not list((tmp_path / "hub").rglob("*.pth")), "a file failing its hash was kept"
    with pytest.raises(ValueError, match="sha256"):
        module.load("https://x.example/plain.pth", sha256=wrong)
    assert module.load(f"https://x.example/tiny-{digest[:8]}.pth",
                       check_hash=True).config.num_classes == 3
    # the cached copy is checked again on each use
    cached, = (tmp_path / "hub").rglob(f"tiny-{digest[:8]}.pth")
    data = cached.read_bytes()
    cached.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    with pytest.raises(ValueError, match="cached"):
        module.load(f"https://x.example/tiny-{digest[:8]}.pth", check_hash=True)


# --- 3. sizes are checked against the limits before anything is built -------------------------

BIG = {       # a config field, its value, the limit it trips (each would take gigabytes)
    "blocks": ([1, 1, 10**7, 1], "blocks"),
    "out_widths": ([8, 8, 8, 10**6], "width"),
    "mid_widths": ([4, 4, 8000, 8000], "parameters"),     # every width within, the sum is not
}


@pytest.mark.parametrize("field", sorted(BIG))
def test_huge_config_is_refused_before_building(field, tmp_path):
    """Through the command line, in a child under the memory limit: today's main builds
    the network first and runs out of memory."""
    value, limit = BIG[field]
    bad = write_pth(tmp_path / f"big_{field}.pth", with_config(**{field: value}))
    r = export_cli(bad, tmp_path)
    line = hostile.assert_one_line(r, bad.name, "--model-limit", limit)
    if limit != "parameters":
        assert field in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("field,value,limit", [
    ("crop_size", 16001, "crop"), ("num_classes", 100_000, "classes"),
    ("bins", list(range(1, 18)), "bins"), ("dilations", [1, 1, 2, 10**9], "dilation")])
def test_sizes_that_build_cheaply_but_run_huge_are_refused(field, value, limit, tmp_path):
    changes = {field: value, **({"crop_size": 1001} if field == "bins" else {})}
    bad = write_pth(tmp_path / "big.pth", payload(**changes) if field in ("num_classes", "bins")
                    else with_config(**changes))
    with pytest.raises(ModelLimitError, match=f"big.pth: .*{field}.*{limit}=N"):
        read(bad)


def test_meta_sizes_are_limited_too(tmp_path):
    p = payload()
    p["meta"]["crop_size"] = 16001
    with pytest.raises(ModelLimitError, match="meta crop_size 16001"):
        read(write_pth(tmp_path / "m.pth", p))


def test_a_limit_is_raised_by_the_option(tmp_path, capsys):
    from pspnet_caffe.converter import export as ex
    big = write_pth(tmp_path / "crop.pth", with_config(crop_size=16001))
    out = str(tmp_path / "out")
    assert ex.main([str(big), "-o", out]) == 1
    assert "crop_size 16001" in capsys.readouterr().err
    assert ex.main([str(big), "-o", out, "--model-limit", "crop=20000"]) == 0
    assert (tmp_path / "out" / "crop.caffemodel").is_file()
    assert read(big, limits=Limits(crop=20000))["config"]["crop_size"] == 16001
    with pytest.raises(SystemExit) as e:
        ex.main([str(big), "-o", out, "--model-limit", "kroop=20000"])
    assert e.value.code == 2 and "kroop" in capsys.readouterr().err


def test_the_limits_leave_the_released_models_far_below():
    from psp_torch.config import preset_config
    from psp_torch.config_check import check_config, parameter_count
    from psp_torch.presets import BLOCKS, PRESETS
    for name in PRESETS:
        config = preset_config(name, aux=True)
        assert check_config(config.to_dict(), name) == config
        assert parameter_count(config) * 8 < DEFAULT.parameters
        assert config.crop_size * 2 < DEFAULT.crop
    deepest = PSPNetConfig(num_classes=150, blocks=BLOCKS[269])   # the paper's deepest
    assert check_config(deepest.to_dict(), "269") == deepest


# --- 4. wrong types and shapes: one line, never a traceback -----------------------------------

WRONG = {     # name: (crafted payload, what the line must name)
    "num_classes a string": (lambda: with_config(num_classes="21"), "num_classes"),
    "blocks an int": (lambda: with_config(blocks=3), "blocks"),
    "an int a list": (lambda: with_config(head_width=[4]), "head_width"),
    "blocks too short": (lambda: with_config(blocks=[1, 1]), "blocks"),
    "bn_eps a string": (lambda: with_config(bn_eps="x"), "bn_eps"),
    "config a list": (lambda: {**payload(), "config": [1, 2]}, "config"),
    "config missing": (lambda: {k: v for k, v in payload().items() if k != "config"}, "config"),
    "tensor a string": (lambda: {**payload(), "state_dict": {
        **payload()["state_dict"], "classifier.weight": "not a tensor"}}, "classifier.weight"),
    "tensor of another shape": (lambda: {**payload(), "state_dict": {
        **payload()["state_dict"], "classifier.weight": torch.zeros(21, 4, 3, 3)}},
        "classifier.weight"),
    "state_dict a list": (lambda: {**payload(), "state_dict": [1]}, "state_dict"),
    "meta a list": (lambda: {**payload(), "meta": [1, 2]}, "meta"),
    "meta mean_rgb a string": (lambda: {**payload(), "meta": {"mean_rgb": "red"}}, "mean_rgb"),
    "meta class_names of ints": (lambda: {**payload(), "meta": {"class_names": [1, 2]}},
                                 "class_names"),
    "kind unknown": (lambda: {**payload(), "kind": {"x": 1}}, "kind"),
    "blobs a string": (lambda: {**caffenet_payload(DEPLOY), "blobs": "x"}, "blobs"),
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_wrong_types_are_one_line(case, tmp_path):
    make, field = WRONG[case]
    bad = write_pth(tmp_path / "wrong.pth", make())
    with pytest.raises(ModelFileError) as e:
        psp_torch.load(bad)
    assert "wrong.pth" in str(e.value) and field in str(e.value)
    assert "\n" not in str(e.value)


def test_wrong_type_through_the_cli(tmp_path):
    bad = write_pth(tmp_path / "wrong.pth", with_config(blocks=[1, 1, "1", 1]))
    hostile.assert_one_line(export_cli(bad, tmp_path), "wrong.pth", "blocks[2]", "'1'")


@pytest.mark.parametrize("meta", ["[" * 100_000 + "]" * 100_000, "[1, 2]", '"text"',
                                  '{"crop_size": "big"}', "{not json"],
                         ids=["nested", "list", "string", "wrong type", "not json"])
def test_safetensors_meta_that_is_not_an_object(meta, tmp_path):
    p = payload()
    bad = write_safetensors(tmp_path / "meta.safetensors", p["state_dict"],
                            {"kind": "pspnet", "config": json.dumps(p["config"]), "meta": meta})
    with pytest.raises(ModelFileError, match="meta.safetensors: .*meta") as e:
        read(bad)
    assert "\n" not in str(e.value) and len(str(e.value)) < 1000


def test_safetensors_config_nested(tmp_path):
    p = payload()
    bad = write_safetensors(tmp_path / "cfg.safetensors", p["state_dict"],
                            {"kind": "pspnet", "config": "[" * 100_000, "meta": "{}"})
    with pytest.raises(ModelFileError, match="cfg.safetensors"):
        read(bad)


@pytest.mark.parametrize("props,mention", [
    ({"meta.crop_size": '"big"'}, "crop_size"),
    ({"meta.class_names": "[" * 100_000}, "meta"),
    ({"meta.num_classes": "-3"}, "num_classes"),
    ({"meta.palette": "[[1, 2]]"}, "palette"),
    ({"meta.crop_size": "16001"}, "crop_size"),
], ids=["crop a string", "nested", "negative classes", "short colour", "huge crop"])
def test_onnx_meta_is_checked(props, mention, tmp_path):
    from pspnet_caffe.eval.onnx_model import OnnxModel
    genuine = OnnxModel(onnx_file(tmp_path / "ok.onnx"))
    assert genuine.meta["crop_size"] == 33
    x = torch.zeros(1, 3, 5, 7)
    assert torch.equal(genuine(x), x)
    with pytest.raises(ValueError, match=f"bad.onnx: .*{mention}"):
        OnnxModel(onnx_file(tmp_path / "bad.onnx", props))


def test_onnx_graph_whose_shapes_explode_is_refused_before_running(tmp_path):
    bad = onnx_file(tmp_path / "bomb.onnx", bomb=True)
    image = SAMPLES / "JPEGImages" / "2007_000033.jpg"
    r = hostile.run(["eval/run.py", "--onnx", bad, "--image", image, "--out", tmp_path / "o",
                     "--num-classes", "3", "--workers", "0"], cwd=tmp_path)
    hostile.assert_one_line(r, "bomb.onnx", "elements", "--model-limit parameters")


def test_onnx_external_data_is_refused(tmp_path):
    import onnx
    from pspnet_caffe.eval.onnx_model import check_graph
    path = onnx_file(tmp_path / "ext.onnx", bomb=True)
    model = onnx.load(str(path))
    t = model.graph.initializer[0]
    t.data_location = onnx.TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "/dev/zero"
    t.ClearField("int64_data")
    onnx.save_model(model, str(path))
    with pytest.raises(ValueError, match="ext.onnx: .*external"):
        check_graph(path)


# --- 4, 5. training checkpoints ----------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_pth):
    """A real one-iteration training run of the tiny PSPNet (its out folder and arguments)."""
    from pspnet_caffe.train import run as train_run
    d = tmp_path_factory.mktemp("run")
    (d / "list.txt").write_text("".join(
        f"JPEGImages/{p.stem}.jpg SegmentationClass/{p.stem}.png\n"
        for p in sorted((SAMPLES / "JPEGImages").glob("*.jpg"))))
    args = ["train/run.py", "--data-root", SAMPLES, "--list", d / "list.txt", "--num-classes",
            "21", "--init", tiny_pth, "--crop-size", "33", "--batch-size", "2", "--workers", "0",
            "--no-progress", "--iters", "1", "--out", d / "out"]
    assert train_run.main([str(a) for a in args[1:]]) == 0
    return d / "out", args


def _crafted_checkpoint(run_out: Path, target: Path, change) -> Path:
    import shutil
    shutil.copytree(run_out, target)
    ckpt = torch.load(target / "checkpoint.pth", weights_only=True)
    change(ckpt)
    torch.save(ckpt, target / "checkpoint.pth")
    (target / "checkpoint.prev.pth").unlink(missing_ok=True)
    return target


def _resume(args, out: Path, cwd: Path):
    args = [a if a != args[args.index("--out") + 1] else out for a in args]
    return hostile.run([*args, "--resume"], cwd=cwd)


def test_resume_past_the_runs_iterations_is_refused(finished_run, tmp_path):
    out, args = finished_run
    bad = _crafted_checkpoint(out, tmp_path / "past", lambda c: c.update(iteration=5))
    model_before = (bad / "model.pth").read_bytes()
    r = _resume(args, bad, tmp_path)
    hostile.assert_one_line(r, "checkpoint.pth", "iteration 5", "--iters 1")
    assert (bad / "model.pth").read_bytes() == model_before


@pytest.mark.parametrize("field", ["recipe", "iteration", "model", "rng", "init_hash"])
def test_checkpoint_without_a_field_is_refused(field, finished_run, tmp_path):
    from pspnet_caffe.train import checkpoint as ck
    out, _ = finished_run
    bad = _crafted_checkpoint(out, tmp_path / "c", lambda c: c.pop(field))
    with pytest.raises(ck.ResumeError, match=f"checkpoint.pth: .*{field}"):
        ck.load(bad / "checkpoint.pth")


@pytest.mark.parametrize("field,value", [("iteration", "3"), ("rng", {"torch": "x"}),
                                         ("model", {"w": [1.0]}), ("val", [[1]]),
                                         ("recipe", [1])])
def test_checkpoint_field_of_the_wrong_type_is_refused(field, value, finished_run, tmp_path):
    from pspnet_caffe.train import checkpoint as ck
    out, _ = finished_run
    bad = _crafted_checkpoint(out, tmp_path / "c", lambda c: c.update({field: value}))
    with pytest.raises(ck.ResumeError, match=f"checkpoint.pth: field '{field}'"):
        ck.load(bad / "checkpoint.pth")


def _resume_here(args, out: Path, capsys) -> str:
    """train/run.py --resume in this process: its one error line (status 1)."""
    from pspnet_caffe.train import run as train_run
    args = [str(a if a != args[args.index("--out") + 1] else out) for a in args[1:]]
    capsys.readouterr()
    assert train_run.main([*args, "--resume"]) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_checkpoint_without_a_field_through_the_cli(finished_run, tmp_path, capsys):
    out, args = finished_run
    bad = _crafted_checkpoint(out, tmp_path / "c", lambda c: c.pop("recipe"))
    assert "recipe" in _resume_here(args, bad, capsys)


def test_checkpoint_whose_state_does_not_fit_is_refused(finished_run, tmp_path, capsys):
    out, args = finished_run

    def shrink(c):
        key = next(k for k in c["model"] if k.endswith("classifier.weight"))
        c["model"][key] = torch.zeros(2, 2, 1, 1)
    line = _resume_here(args, _crafted_checkpoint(out, tmp_path / "c", shrink), capsys)
    assert "checkpoint.pth" in line and "does not fit" in line


# --- 6. export: both files or neither -----------------------------------------------------------

def test_export_writes_both_or_neither(tiny_pth, tmp_path, monkeypatch):
    from pspnet_caffe.converter import export as ex
    out = tmp_path / "new" / "deep"

    def full_disk(net, path, **kw):
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device", str(path))
    monkeypatch.setattr(ex, "save_caffemodel", full_disk)
    with pytest.raises(OSError):
        ex.export(tiny_pth, out, log=lambda *a: None)
    assert not (tmp_path / "new").exists(), hostile.files_under(tmp_path)
    monkeypatch.undo()
    proto, model = ex.export(tiny_pth, out, log=lambda *a: None)    # no "exists" refusal
    assert proto.is_file() and model.is_file()


def test_export_failing_second_rename_through_the_cli(tiny_pth, tmp_path, capsys):
    from pspnet_caffe.converter import export as ex
    out = tmp_path / "out"
    (out / "tiny.caffemodel").mkdir(parents=True)           # the second target cannot be replaced
    assert ex.main([str(tiny_pth), "-o", str(out), "--force"]) == 1
    assert "tiny.caffemodel" in capsys.readouterr().err
    assert hostile.files_under(out) == set(), "the prototxt was left without its caffemodel"


# --- 7. torch.load's advice to unpickle is never passed on --------------------------------------

def _broken_pickle(good: Path, bad: Path) -> Path:
    import zipfile
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as zout:
        for name in zin.namelist():
            data = zin.read(name)
            zout.writestr(name, b"\x80\x02garbage" if name.endswith("data.pkl") else data)
    return bad


def test_unreadable_checkpoint_never_recommends_unpickling(finished_run, tmp_path):
    from pspnet_caffe.train import checkpoint as ck
    out, _ = finished_run
    bad = _broken_pickle(out / "checkpoint.pth", tmp_path / "checkpoint.pth")
    with pytest.raises(ck.ResumeError) as e:
        ck.load(bad)
    assert "weights_only" not in str(e.value) and "\n" not in str(e.value)


def test_unreadable_model_file_never_recommends_unpickling(tiny_pth, tmp_path):
    bad = _broken_pickle(tiny_pth, tmp_path / "broken.pth")
    with pytest.raises(ModelFileError, match="broken.pth") as e:
        read(bad)
    assert "weights_only" not in str(e.value) and "\n" not in str(e.value)


# --- 8. names from a file reach the terminal escaped ---------------------------------------------

def test_names_from_a_model_file_are_printed_escaped(tmp_path, capsys):
    from pspnet_caffe.eval import run as eval_run
    import cv2
    p = payload(num_classes=3)
    p["meta"].update(name="\x1b[2Jevil", class_names=["\x1b[31mred", "ok", "b\nc"])
    bad = write_pth(tmp_path / "names.pth", p)
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    cv2.imwrite(str(root / "img" / "a.png"), np.full((40, 40, 3), 128, np.uint8))
    cv2.imwrite(str(root / "img" / "a_l.png"), np.tile(np.arange(40) % 3, (40, 1)).astype(np.uint8))
    (root / "list.txt").write_text("img/a.png img/a_l.png\n")
    status = eval_run.main([str(a) for a in [
        "--weights", bad, "--data-root", root, "--list", root / "list.txt", "--num-classes", "3",
        "--out", tmp_path / "o", "--workers", "0", "--no-flip", "--device", "cpu"]])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "\\x1b[31mred" in out and "b\\nc" in out
    assert "\x1b" not in out + err


def test_export_with_onnx_is_all_or_nothing(tiny_pth, tmp_path, monkeypatch, capsys):
    from pspnet_caffe.converter import export as ex

    def failing(model, out, **kw):
        raise ValueError(f"{out}: not written: the exporter failed")
    monkeypatch.setattr(ex, "export_onnx", failing)
    out = tmp_path / "caffe"
    assert ex.main([str(tiny_pth), "-o", str(out), "--onnx", str(tmp_path / "m.onnx")]) == 1
    assert "m.onnx" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "m.onnx").exists()
