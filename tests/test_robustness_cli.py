"""The catalogue of bad inputs across the command lines (robustness issue, item 2).

For every case: a non-zero exit status, one clear message naming the file and what
is wrong, no traceback, and nothing partial left behind. The command lines are
`python -m caffe_proto.inspect`, `python converter/convert.py` and `python
eval/run.py`. Most cases call the entry point's ``main(argv)`` in this process
(the same function the script runs; an exception escaping it fails the test just
as a traceback would); the cases that need a process of their own (signals, the
interpreter's own output, a full or read-only file system) run the script as a
subprocess.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import oracle

ROOT = Path(__file__).resolve().parent.parent
CONVERT = ROOT / "converter" / "convert.py"
EVAL = ROOT / "eval" / "run.py"
SLIM = oracle.ORACLE / "nets" / "pspnet50_ade20k_slim"
LAYER = oracle.ORACLE / "layers" / "conv_dilated"


# ---------------------------------------------------------------- helpers

def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"),   # tests: standin
                                         env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"   # progress lines arrive as printed (the Ctrl-C cases wait on them)
    return env


def run_cli(args, cwd, timeout=120) -> subprocess.CompletedProcess:
    """The command's result with stdout/stderr decoded as written: no universal-newline
    translation (text=True would turn a progress bar's "\r" redraws into "\n" lines)."""
    r = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=_env(),
                       capture_output=True, timeout=timeout)
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(errors="replace"),
                                       r.stderr.decode(errors="replace"))


def assert_clean_failure(rc, stderr: str, *mentions: str):
    """Non-zero status, no traceback, a short message that names each of `mentions`."""
    assert rc not in (0, None), f"expected a failure, got status {rc}; stderr:\n{stderr}"
    assert "Traceback" not in stderr, f"traceback instead of a message:\n{stderr}"
    # a progress bar redraws its line with "\r": count what a terminal ends up showing, so the
    # number of redraws (machine speed) never counts as lines
    lines = [ln.split("\r")[-1] for ln in stderr.strip().split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    assert lines, "failed without any message"
    assert len(lines) <= 6, f"message spew ({len(lines)} lines):\n{stderr}"
    for m in mentions:
        assert m in stderr, f"message does not name {m!r}:\n{stderr}"


def files_under(d: Path) -> set:
    return {str(p.relative_to(d)) for p in Path(d).rglob("*") if p.is_file()}


def temp_leftovers(d: Path) -> list:
    return [p for p in Path(d).rglob("*") if p.is_file() and (p.name.startswith(".")
                                                               or p.suffix == ".tmp")]


def call_main(main, argv, capsys) -> tuple[int, str, str]:
    """(status, stdout, stderr) of an entry point's main(argv), SystemExit included."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
            code = 1
        rc = code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def convert_main():
    from pspnet_caffe.converter.convert import main
    return main


@pytest.fixture(scope="module")
def inspect_main():
    from caffe_proto.inspect import main
    return main


@pytest.fixture(scope="module")
def eval_main():
    import pspnet_caffe.eval.run
    return pspnet_caffe.eval.run.main


@contextlib.contextmanager
def mounted_tmpfs(path: Path, size: str):
    """A tmpfs of `size` at `path` (skips the test when mounting is not permitted)."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}): "
                    f"the full-disk case needs one")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def read_only_dir(path: Path):
    """A folder writes to which fail: chmod 555 for a normal user; for root (whom chmod
    does not stop) a tmpfs remounted read-only; skip only when neither is possible."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    with mounted_tmpfs(path, "1m"):
        r = subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot remount a tmpfs read-only: {r.stderr.strip()}")
        yield path


# ---------------------------------------------------------------- files to break

def truncation_points(size: int, n: int = 50) -> list[int]:
    """n cut points spread over the file, first bytes and the last byte included."""
    pts = {1, 2, 5, 11, size - 1}
    pts.update(int(x) for x in np.linspace(16, size - 2, n - len(pts)))
    return sorted(pts)[:n]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("bad")
    good = SLIM.joinpath("weights.caffemodel").read_bytes()
    files = {}

    def put(name, data):
        p = d / name
        p.write_bytes(data)
        files[name] = p

    put("empty.caffemodel", b"")
    import cv2
    ok, jpg = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    put("photo.caffemodel", jpg.tobytes())
    import torch
    torch.save({"w": torch.zeros(3)}, d / "model.pth")
    files["checkpoint.caffemodel"] = d / "checkpoint.caffemodel"
    files["checkpoint.caffemodel"].write_bytes((d / "model.pth").read_bytes())
    h5 = LAYER.joinpath("weights.caffemodel.h5").read_bytes()
    put("half_h5.caffemodel", h5[: len(h5) // 2])
    put("truncated.caffemodel", good[: len(good) // 2])
    return files


# ---------------------------------------------------------------- caffe_proto.inspect

@pytest.mark.parametrize("name", ["empty.caffemodel", "photo.caffemodel",
                                  "checkpoint.caffemodel", "half_h5.caffemodel",
                                  "truncated.caffemodel"])
def test_inspect_bad_file(bad_files, name, tmp_path):
    r = run_cli(["-m", "caffe_proto.inspect", bad_files[name]], cwd=tmp_path)
    assert_clean_failure(r.returncode, r.stderr, name)


def test_inspect_hdf5_given_as_binary_is_read_by_content(tmp_path):
    p = tmp_path / "weights_named_binary.caffemodel"
    p.write_bytes(LAYER.joinpath("weights.caffemodel.h5").read_bytes())
    r = run_cli(["-m", "caffe_proto.inspect", p], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "hdf5" in r.stdout and "conv_d4_s2" in r.stdout


def test_binary_reader_refuses_hdf5_by_name(tmp_path):
    from caffe_proto import CaffeFormatError, load_caffemodel
    p = tmp_path / "w.caffemodel"
    p.write_bytes(LAYER.joinpath("weights.caffemodel.h5").read_bytes())
    with pytest.raises(CaffeFormatError, match=r"(?i)w\.caffemodel.*hdf5"):
        load_caffemodel(p)


def _valid_protobuf(data: bytes) -> bool:
    """Whether protobuf itself parses `data` as a NetParameter (a prefix ending exactly on
    a field boundary is a valid, shorter message: no reader can call it truncated)."""
    from caffe_proto import caffe_pb2
    try:
        caffe_pb2.NetParameter().ParseFromString(data)
        return True
    except Exception:
        return False


def test_truncated_at_50_points(tmp_path, capsys, inspect_main, convert_main):
    """Every prefix of a real caffemodel: convert fails (status 1, bad input) naming the file and
    writes nothing; the reader and inspect (status 1) fail naming the file unless the
    prefix is itself a valid message, in which case they show fewer layers."""
    from caffe_proto import CaffeFormatError, load_caffemodel
    good = SLIM.joinpath("weights.caffemodel").read_bytes()
    whole = len(load_caffemodel(SLIM / "weights.caffemodel").layers)
    points = truncation_points(len(good))
    assert len(points) == 50
    cut = tmp_path / "cut.caffemodel"
    out = tmp_path / "out"
    out.mkdir()
    valid_prefixes = 0
    for n in points:
        cut.write_bytes(good[:n])
        if _valid_protobuf(good[:n]):
            valid_prefixes += 1
            assert len(load_caffemodel(cut).layers) < whole, n
        else:
            with pytest.raises(CaffeFormatError) as e:
                load_caffemodel(cut)
            assert "cut.caffemodel" in str(e.value), (n, str(e.value))
            rc, _, err = call_main(inspect_main, [cut], capsys)
            assert_clean_failure(rc, err, "cut.caffemodel")
        rc, _, err = call_main(convert_main, [cut, "-o", out / "x.pth"], capsys)
        assert rc == 1, (n, err)                  # bad input: 1 (psp_torch/cli.py)
        assert_clean_failure(rc, err, "cut.caffemodel")
        assert files_under(out) == set(), n
    assert valid_prefixes < 5  # the test would prove little if most cuts were harmless


# ---------------------------------------------------------------- converter/convert.py

@pytest.mark.parametrize("name", ["empty.caffemodel", "photo.caffemodel",
                                  "checkpoint.caffemodel", "half_h5.caffemodel"])
def test_convert_wrong_magic(bad_files, name, tmp_path, capsys, convert_main):
    rc, _, err = call_main(convert_main, [bad_files[name], "-o", tmp_path / "o.pth"], capsys)
    assert_clean_failure(rc, err, name)
    assert files_under(tmp_path) == set()


def test_convert_subprocess_bad_file(bad_files, tmp_path):
    """The script itself, in its own interpreter: status 1 (bad input), one line, nothing
    written."""
    r = run_cli([CONVERT, bad_files["photo.caffemodel"], "-o", tmp_path / "o.pth"], cwd=tmp_path)
    assert r.returncode == 1
    assert_clean_failure(r.returncode, r.stderr, "photo.caffemodel", "JPEG")
    assert files_under(tmp_path) == set()


def test_convert_missing_file(tmp_path, capsys, convert_main):
    rc, _, err = call_main(convert_main, [tmp_path / "nowhere.caffemodel", "-o",
                                          tmp_path / "o.pth"], capsys)
    assert_clean_failure(rc, err, "nowhere.caffemodel")


def test_convert_mismatched_prototxt_and_weights(tmp_path, capsys, convert_main):
    # a PSPNet prototxt with the weights of a 3-layer net, and the reverse
    rc, _, err = call_main(convert_main, [LAYER / "weights.caffemodel", "--prototxt",
                                          SLIM / "deploy.prototxt", "-o", tmp_path / "a.pth"],
                           capsys)
    assert_clean_failure(rc, err, "weights.caffemodel", "conv1_1_3x3_s2")
    rc, _, err = call_main(convert_main, [SLIM / "weights.caffemodel", "--prototxt",
                                          LAYER / "deploy.prototxt", "-o", tmp_path / "b.pth"],
                           capsys)
    assert_clean_failure(rc, err, "weights.caffemodel", "conv_d2")
    assert files_under(tmp_path) == set()


def test_convert_wrong_blob_shape(tmp_path, capsys, convert_main):
    """Same layer names, another num_output: the blob shape is named."""
    text = LAYER.joinpath("deploy.prototxt").read_text().replace("num_output: 5", "num_output: 6", 1)
    proto = tmp_path / "deploy.prototxt"
    proto.write_text(text)
    rc, _, err = call_main(convert_main, [LAYER / "weights.caffemodel", "--prototxt", proto,
                                          "-o", tmp_path / "o.pth"], capsys)
    assert_clean_failure(rc, err, "conv_d2")
    assert files_under(tmp_path) == {"deploy.prototxt"}


def test_convert_unknown_layer_type(tmp_path, capsys, convert_main):
    text = LAYER.joinpath("deploy.prototxt").read_text() + (
        'layer {\n  name: "mystery"\n  type: "NoSuchLayerType"\n  bottom: "conv_d2"\n'
        '  top: "mystery"\n}\n')
    proto = tmp_path / "deploy.prototxt"
    proto.write_text(text)
    rc, _, err = call_main(convert_main, [LAYER / "weights.caffemodel", "--prototxt", proto,
                                          "-o", tmp_path / "o.pth"], capsys)
    assert_clean_failure(rc, err, "mystery", "NoSuchLayerType")
    assert files_under(tmp_path) == {"deploy.prototxt"}


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_convert_non_finite_weights_warn(tmp_path, capsys, convert_main, bad):
    """NaN/Inf in the weights: converted (they are the file's values) with a warning
    naming the layer and the count of non-finite values."""
    from caffe_proto import load_caffemodel, save_caffemodel
    net = load_caffemodel(LAYER / "weights.caffemodel")
    layer = next(l for l in net.layers if l.name == "conv_d4")
    w = layer.blobs[0].copy()
    w.reshape(-1)[[0, 7]] = bad
    layer.blobs[0] = w
    src = tmp_path / "nonfinite.caffemodel"
    save_caffemodel(net, src)
    rc, _, err = call_main(convert_main, [src, "--prototxt", LAYER / "deploy.prototxt",
                                          "-o", tmp_path / "o.pth"], capsys)
    assert rc == 0, err
    assert (tmp_path / "o.pth").is_file()
    assert "Traceback" not in err
    word = "NaN" if bad != bad else "Inf"
    assert re.search(r"(?i)warning", err), f"no warning on stderr:\n{err}"
    assert "conv_d4" in err and re.search(word, err, re.I), err


def test_convert_output_under_a_regular_file(tmp_path, capsys, convert_main):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    rc, _, err = call_main(convert_main, [SLIM / "weights.caffemodel", "-o",
                                          blocker / "o.pth"], capsys)
    assert_clean_failure(rc, err, "not_a_folder")
    assert files_under(tmp_path) == {"not_a_folder"}


def test_convert_read_only_output_folder(tmp_path):
    ro = tmp_path / "ro"
    with read_only_dir(ro):
        r = run_cli([CONVERT, SLIM / "weights.caffemodel", "-o", ro / "o.pth"], cwd=tmp_path)
        assert_clean_failure(r.returncode, r.stderr, str(ro))
        assert files_under(ro) == set()


def test_convert_full_disk(tmp_path):
    """A 256 KiB file system for a ~1 MB .pth: a clear error, no partial file."""
    disk = tmp_path / "disk"
    with mounted_tmpfs(disk, "256k"):
        r = run_cli([CONVERT, SLIM / "weights.caffemodel", "-o", disk / "o.pth"], cwd=tmp_path)
        assert_clean_failure(r.returncode, r.stderr, "o.pth")
        assert re.search(r"(?i)no space|disk|full", r.stderr), r.stderr
        assert files_under(disk) == set(), files_under(disk)


HANG_SECONDS = 600      # only against a hung child; no test waits on a clock otherwise


def interrupted_run(target: str, calls: int, script: Path, args, cwd) -> tuple:
    """Run `script` with `target` (MODULE:QUALNAME) paused after its `calls`-th call
    (tests/faulty.py pause); send SIGINT once the child says it is paused. Returns
    (paused: bool, status, stdout, stderr)."""
    import threading

    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "faulty.py"), target,
                             str(calls), "pause", "always", str(script), *map(str, args)],
                            cwd=cwd, env=_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)   # bytes: "\r" redraws stay "\r"
    guard = threading.Timer(HANG_SECONDS, proc.kill)
    guard.start()
    err = []
    drain = threading.Thread(target=lambda: err.append(proc.stderr.read().decode(errors="replace")))
    drain.start()                          # a full stderr pipe must not block the child
    lines, paused = [], False
    try:
        for raw in proc.stdout:            # the event: the child's own line
            line = raw.decode(errors="replace")
            lines.append(line)
            if line.startswith("PAUSED "):
                paused = True
                proc.send_signal(signal.SIGINT)
                break
        lines.append(proc.stdout.read().decode(errors="replace"))
        proc.wait()
        drain.join()
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.stdin.close()
    return paused, proc.returncode, "".join(lines), "".join(err)


def test_convert_ctrl_c(tmp_path):
    """SIGINT while converting (inside --verify's forward, after the weights are read):
    status 130, a one-line message, no .pth and no temp file."""
    out = tmp_path / "out"
    out.mkdir()
    paused, rc, stdout, err = interrupted_run(
        "psp_torch.pspnet:PSPNet.forward", 0, CONVERT,
        [SLIM / "weights.caffemodel", "-o", out / "o.pth", "--verify"], tmp_path)
    assert paused, "the conversion never reached the forward:\n" + stdout + err
    assert "verify: running" in stdout, stdout
    assert rc == 130, (rc, err)
    assert_clean_failure(rc, err, "interrupt")
    assert files_under(out) == set(), files_under(out)


# ---------------------------------------------------------------- eval/run.py

SIZE = (48, 64)


def make_ade(root: Path, n: int, seed: int = 0) -> Path:
    """A tiny ADEChallengeData2016 layout (as bench/soak_eval.py makes it)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from soak_eval import make_dataset
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return make_dataset(root, n, seed, SIZE)


def eval_args(data: Path, out: Path, *extra) -> list:
    return ["--model", "standin:ade20k", "--dataset", "ade20k", "--data-root", data,
            "--split", "val", "--out", out, "--workers", "0", "--crop-size", "33",
            "--base-size", "64", *extra]


@pytest.fixture
def ade(tmp_path) -> Path:
    return make_ade(tmp_path / "ade", 4)


def _img(data: Path, i: int) -> Path:
    return data / "images" / "validation" / f"SYN_val_{i:08d}.jpg"


def _lab(data: Path, i: int) -> Path:
    return data / "annotations" / "validation" / f"SYN_val_{i:08d}.png"


def test_eval_runs_on_the_synthetic_set(ade, tmp_path, capsys, eval_main):
    """The baseline of the failure cases below: the same command succeeds."""
    rc, out, err = call_main(eval_main, eval_args(ade, tmp_path / "out"), capsys)
    assert rc == 0, err
    assert (tmp_path / "out" / "results.json").is_file()
    assert len(files_under(tmp_path / "out" / "labels")) == 4


def test_eval_missing_label(ade, tmp_path, capsys, eval_main):
    _lab(ade, 2).unlink()
    rc, _, err = call_main(eval_main, eval_args(ade, tmp_path / "out"), capsys)
    assert_clean_failure(rc, err, "SYN_val_00000002.png", "missing")
    assert not (tmp_path / "out").exists() or files_under(tmp_path / "out") == set()


def test_eval_empty_image_file(ade, tmp_path, capsys, eval_main):
    _img(ade, 1).write_bytes(b"")
    rc, _, err = call_main(eval_main, eval_args(ade, tmp_path / "out"), capsys)
    assert_clean_failure(rc, err, "SYN_val_00000001.jpg")
    assert not (tmp_path / "out").exists() or files_under(tmp_path / "out") == set()


@pytest.mark.parametrize("workers", [0, 1])
def test_eval_corrupt_image(ade, tmp_path, capsys, eval_main, workers):
    """Bytes that are no image: found while running (in the main process or in a loader
    worker); the message names the file; the outputs written so far are whole files."""
    _img(ade, 1).write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg" * 10)
    args = eval_args(ade, tmp_path / "out")
    args[args.index("--workers") + 1] = str(workers)
    rc, _, err = call_main(eval_main, args, capsys)
    assert_clean_failure(rc, err, "SYN_val_00000001.jpg")
    assert not temp_leftovers(tmp_path)
    assert not (tmp_path / "out" / "results.json").exists()


def test_eval_unreadable_label(ade, tmp_path, capsys, eval_main):
    _lab(ade, 3).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rc, _, err = call_main(eval_main, eval_args(ade, tmp_path / "out"), capsys)
    assert_clean_failure(rc, err, "SYN_val_00000003.png")
    assert not temp_leftovers(tmp_path)
    assert not (tmp_path / "out" / "results.json").exists()


def test_eval_label_of_the_wrong_size(ade, tmp_path, capsys, eval_main):
    import cv2
    cv2.imwrite(str(_lab(ade, 2)), np.ones((10, 12), np.uint8))
    rc, _, err = call_main(eval_main, eval_args(ade, tmp_path / "out"), capsys)
    assert_clean_failure(rc, err, "SYN_val_00000002.png")
    assert re.search(r"10\s*x\s*12|\(10, 12\)|12\s*x\s*10", err), f"sizes not stated:\n{err}"
    assert not temp_leftovers(tmp_path)
    assert not (tmp_path / "out" / "results.json").exists()


def test_eval_missing_data_root(tmp_path, capsys, eval_main):
    rc, _, err = call_main(eval_main, eval_args(tmp_path / "nowhere", tmp_path / "out"), capsys)
    assert_clean_failure(rc, err, "nowhere")


def test_eval_missing_weights_file(tmp_path, capsys, eval_main):
    rc, _, err = call_main(eval_main, ["--weights", tmp_path / "nope.pth", "--data-root",
                                       tmp_path, "--dataset", "ade20k"], capsys)
    assert_clean_failure(rc, err, "nope.pth")


def test_eval_output_under_a_regular_file(ade, tmp_path, capsys, eval_main):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    rc, _, err = call_main(eval_main, eval_args(ade, blocker / "out"), capsys)
    assert_clean_failure(rc, err, "blocker")


def test_eval_read_only_output_folder(ade, tmp_path):
    ro = tmp_path / "ro"
    with read_only_dir(ro):
        r = run_cli([EVAL, *eval_args(ade, ro / "out")], cwd=tmp_path)
        assert_clean_failure(r.returncode, r.stderr, str(ro))
        assert files_under(ro) == set()


def test_eval_full_disk(tmp_path):
    """Outputs that do not fit: a clear error; every file present is whole (resumable)."""
    data = make_ade(tmp_path / "ade", 40)
    disk = tmp_path / "disk"
    with mounted_tmpfs(disk, "48k"):
        r = run_cli([EVAL, *eval_args(data, disk / "out")], cwd=tmp_path)
        assert_clean_failure(r.returncode, r.stderr, str(disk))
        assert re.search(r"(?i)no space|disk|full", r.stderr), r.stderr
        assert not temp_leftovers(disk)
        assert not (disk / "out" / "results.json").exists()


def test_eval_ctrl_c_then_resume_matches_uninterrupted(tmp_path):
    data = make_ade(tmp_path / "ade", 30)
    ref, out = tmp_path / "ref", tmp_path / "out"
    r = run_cli([EVAL, *eval_args(data, ref)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr

    paused, rc, _, err = interrupted_run("pspnet_caffe.eval.outputs:Writer.write", 5, EVAL,
                                         eval_args(data, out), tmp_path)
    assert paused, err
    labels = out / "labels"
    done = len([p for p in labels.iterdir() if not p.name.startswith(".")])
    assert done == 5, f"interrupted after the 5th image, {done} of 30 written"
    assert rc == 130, (rc, err)
    assert_clean_failure(rc, err, "interrupt")
    assert not temp_leftovers(out)
    assert not (out / "results.json").exists()

    r = run_cli([EVAL, *eval_args(data, out, "--resume")], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"({done} resumed)" in r.stdout, r.stdout
    assert (out / "results.json").read_text() == (ref / "results.json").read_text()
    for p in (ref / "labels").iterdir():
        assert (out / "labels" / p.name).read_bytes() == p.read_bytes(), p.name
