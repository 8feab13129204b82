"""What clusters do to a long run (issue 18), on CPU with gloo: a worker killed under torchrun
--max-restarts, SIGTERM, a corrupt or truncated newest checkpoint, no readable checkpoint, a
diverging run, a full disk. Every run that goes on after a fault must end with exactly the
weights of an uninterrupted run of the same settings (every tensor of model.pth equal).

Small runs: the slim oracle PSPNet50 (widths / 16) at crop 97 on the two VOC sample images,
batch 2, 4 iterations, the paper's augmentation with dropout 0.1, checkpoints every 2. Faults
hit exact points (tests/faulty.py) and the tests wait for lines and files;
timeouts only guard against a hang.
"""
import errno
import json
import os
import shlex
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from conftest import slim_voc_training
from psp_torch.runtime import elastic_store
from pspnet_caffe.train import checkpoint as ck
from pspnet_caffe.train import faults as F
from pspnet_caffe.train import run as train_run

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "data" / "samples" / "VOC2012"
RUN = ROOT / "train" / "run.py"
HANG = 900      # seconds, only against a hang
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@contextmanager
def one_thread():
    """One intra-op thread, as the children (OMP_NUM_THREADS=1): bit-exactness holds at a fixed
    count, and every run here is compared with the others."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return slim_voc_training(tmp_path_factory.mktemp("faults"))


def _args(setup, out, *extra):
    d, slim = setup
    return [str(a) for a in ["--data-root", SAMPLES, "--list", d / "list.txt",
                             "--num-classes", "21", "--init", slim, "--out", out,
                             "--crop-size", "97", "--batch-size", "2", "--workers", "0",
                             "--no-progress", "--iters", "4", "--save-every", "2", *extra]]


def _train(setup, out, *extra) -> int:
    with one_thread():
        return train_run.main(_args(setup, out, *extra))


def _child(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=HANG,
                          env=ENV, **kw)


def _torchrun(*args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node=2", *args]


@pytest.fixture(scope="module")
def reference(setup, tmp_path_factory):
    """The uninterrupted run (one process): model.pth, checkpoint.pth at 4, .prev at 2."""
    out = tmp_path_factory.mktemp("ref") / "run"
    assert _train(setup, out) == 0
    return out


def _weights(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_model(a_dir, b_dir):
    a, b = _weights(Path(a_dir) / "model.pth"), _weights(Path(b_dir) / "model.pth")
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, f"{len(diff)} of {len(a)} tensors differ, e.g. {diff[:3]}"


def _iters(out) -> list:
    return [json.loads(ln)["iter"] for ln in (Path(out) / "log.jsonl").read_text().splitlines()]


def _errors(err: str) -> list:
    assert "Traceback" not in err, err[-3000:]
    return [ln for ln in err.splitlines() if ln.startswith("error:")]


# ------------------------------------------------------------------ checkpoint rotation (unit)

def _fake(rot, iteration):
    """A checkpoint with every field a resume reads (checkpoint.FIELDS), the model's one
    tensor telling the iterations apart."""
    return rot.save(iteration, model={"w": torch.full((64, 64), float(iteration))},
                    optimizer={"state": {}, "param_groups": []}, scaler=None,
                    rng={"torch": [torch.zeros(8, dtype=torch.uint8)], "cuda": None,
                         "world": 1},
                    recipe={"iters": 10}, init_hash="0" * 64, val=[], best_miou=None)


def test_rotation_keeps_the_previous_and_falls_back(tmp_path):
    rot = ck.Rotation(tmp_path)
    for i in (1, 2, 3):
        _fake(rot, i)
    assert ck.load(rot.newest)["iteration"] == 3 and ck.load(rot.prev)["iteration"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.prev.pth",
                                                          "checkpoint.pth"]
    # a flipped byte inside a tensor: torch.load alone would read it; the CRC-32 does not
    data = bytearray(rot.newest.read_bytes())
    at = data.index(torch.full((4,), 3.0).numpy().tobytes()) + 100     # in the tensor's bytes
    data[at] ^= 0x01
    rot.newest.write_bytes(bytes(data))
    warned = []
    again = ck.Rotation(tmp_path)
    path, c = again.load(warned.append)
    assert path == rot.prev and c["iteration"] == 2 and again.saved_at == 2
    assert len(warned) == 1 and warned[0].startswith(f"warning: {rot.newest}: not a readable")
    assert "CRC" in warned[0] and str(rot.prev) in warned[0]
    # the next save replaces the bad newest and keeps the good previous one
    _fake(again, 3)
    assert ck.load(rot.newest)["iteration"] == 3 and ck.load(rot.prev)["iteration"] == 2
    # missing newest (a crash between the two renames): the previous one, with a warning
    rot.newest.unlink()
    warned.clear()
    assert ck.Rotation(tmp_path).load(warned.append)[1]["iteration"] == 2
    assert len(warned) == 1 and "missing" in warned[0]


def test_no_readable_checkpoint_names_both_and_changes_nothing(tmp_path):
    rot = ck.Rotation(tmp_path)
    _fake(rot, 1)
    _fake(rot, 2)
    rot.newest.write_bytes(rot.newest.read_bytes()[:1000])          # truncated
    rot.prev.write_bytes(b"not a checkpoint at all")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ck.ResumeError) as e:
        ck.Rotation(tmp_path).load(lambda line: pytest.fail(line))
    msg = str(e.value)
    assert msg.startswith(f"{rot.newest}: not a readable checkpoint (truncated")
    assert f"{rot.prev}: not a readable checkpoint" in msg and "\n" not in msg
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with pytest.raises(FileNotFoundError):
        ck.Rotation(tmp_path / "empty").load(print)


class FullDisk:
    """A file whose writes fail with ENOSPC once `room` bytes are written (what a file on a
    full file system does); for `checkpoint.open`, ENOSPC injected at the write call."""

    def __init__(self, path, mode, room: int):
        self.f, self.room = open(path, mode), room

    def write(self, data) -> int:
        if len(data) > self.room:
            self.f.write(bytes(data)[:self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def fill_disk_at(monkeypatch, writes: int, room: int):
    """The `writes`-th checkpoint write (1 = the first) finds `room` bytes free."""
    count = []

    def opener(path, mode="r", *a, **kw):
        count.append(path)
        return FullDisk(path, mode, room if len(count) == writes else 1 << 40)

    monkeypatch.setattr(ck, "open", opener, raising=False)


@pytest.mark.parametrize("room", [0.0, 0.3, 0.97])
def test_failed_write_leaves_both_checkpoints(tmp_path, monkeypatch, room):
    """ENOSPC injected at the write call, at the first byte, in the zip's records or in its
    end: the error names the file, nothing else changes, no temporary file is left."""
    rot = ck.Rotation(tmp_path)
    _fake(rot, 1)
    _fake(rot, 2)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    fill_disk_at(monkeypatch, 1, int(room * len(before["checkpoint.pth"])))    # a fraction
    with pytest.raises(OSError) as e:
        _fake(rot, 3)
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(rot.newest)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert rot.saved_at == 2
    monkeypatch.undo()
    assert ck.Rotation(tmp_path).load(print)[1]["iteration"] == 2
    # a failed write of any file (the log) says which file and which checkpoint is kept
    with pytest.raises(OSError) as e:
        with F.write_failure(tmp_path / "log.jsonl", rot.last_good):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    line = train_run.cli.error_line(e.value)
    assert line.startswith(f"error: {tmp_path / 'log.jsonl'}: No space left on device")
    assert f"{rot.newest} (iteration 2)" in line


def test_cadence_by_iterations_and_minutes():
    c = F.Cadence(every=5, minutes=2, now=100.0)        # clock values given, none read
    assert [i for i in range(1, 12) if c.by_iteration(i)] == [5, 10]
    assert not c.by_clock(219.9) and c.by_clock(220.0)
    c.saved(220.0)
    assert not c.by_clock(300.0) and c.by_clock(340.0)
    assert not F.Cadence(every=5, minutes=0, now=0.0).by_clock(1e9)


def test_checkpoint_minutes_option():
    base = ["--data-root", "x", "--out", "o", "--list", "l", "--num-classes", "3",
            "--iters", "5", "--init", "a.pth"]
    assert train_run.parse_args(base).checkpoint_minutes == 0
    assert train_run.parse_args(base + ["--checkpoint-minutes", "30"]).checkpoint_minutes == 30
    with pytest.raises(SystemExit) as e:
        train_run.parse_args(base + ["--checkpoint-minutes", "-1"])
    assert e.value.code == 2


def test_checkpoint_minutes_in_the_loop(setup, tmp_path):
    """--checkpoint-minutes 1e-9 is due after every iteration (any iteration outlasts 60 ns):
    with --save-every far away, the clock alone wrote the checkpoint of 3 that the final one
    rotated to checkpoint.prev.pth (without it there is no previous file: see below)."""
    out, plain = tmp_path / "clock", tmp_path / "plain"
    assert _train(setup, out, "--save-every", "1000", "--checkpoint-minutes", "1e-9") == 0
    assert ck.load(out / "checkpoint.prev.pth")["iteration"] == 3
    assert _train(setup, plain, "--save-every", "1000", "--stop-after", "2") == 0
    assert not (plain / "checkpoint.prev.pth").exists()


def test_nonfinite_names_the_tensor():
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    F.check_finite(1.5, m, 3, "x")
    with pytest.raises(F.Diverged, match=r"loss is nan at iteration 3: .*; the last good"):
        F.check_finite(float("nan"), m, 3, "the last good checkpoint is c (iteration 2)")
    with torch.no_grad():
        m[1].running_var[1] = float("inf")
    with pytest.raises(F.Diverged, match=r"non-finite weights after iteration 7 \(1.running_var\)"):
        F.check_finite(0.5, m, 7, "no checkpoint was written yet")


def test_elastic_env(monkeypatch, tmp_path):
    rot = ck.Rotation(tmp_path)
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    assert F.restart_count() == 0 and elastic_store(0, 2) == {}
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert not F.resuming(False, rot)            # relaunched before the first checkpoint
    _fake(rot, 2)
    assert F.resuming(False, rot) and F.resuming(True, rot)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    assert not F.resuming(False, rot)


# ------------------------------------------------------------------ the command, fault by fault

def test_sigterm_checkpoints_exits_143_then_resume_is_bit_identical(setup, reference, tmp_path):
    """SIGTERM while iteration 3 runs (the child waits inside it: tests/faulty.py): it finishes
    the iteration, writes checkpoint.pth at 3, says so in one line, exits 143."""
    out = tmp_path / "term"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "faulty.py"),
                             "pspnet_caffe.train.trainer:train_step", "3", "pause", "always", str(RUN),
                             *_args(setup, out)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    try:
        line = proc.stdout.readline()            # an event: the child is inside iteration 3
        assert line.startswith("PAUSED"), (line, proc.stderr.read())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate("\n", timeout=HANG)
    finally:
        proc.kill()
    assert proc.returncode == F.EXIT_TERMINATED == 143, err
    assert f"terminated (SIGTERM): checkpoint written at iteration 3 of 4 ({out / 'checkpoint.pth'})" \
        in err
    assert ck.load(out / "checkpoint.pth")["iteration"] == 3
    assert ck.load(out / "checkpoint.prev.pth")["iteration"] == 2
    assert not (out / "model.pth").exists() and _iters(out) == [1, 2, 3]
    assert _train(setup, out, "--resume") == 0
    assert _iters(out) == [1, 2, 3, 4]
    assert_same_model(reference, out)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_bad_newest_checkpoint_resumes_from_previous(setup, reference, tmp_path, capsys, damage):
    out = tmp_path / damage
    assert _train(setup, out, "--save-every", "1", "--stop-after", "3") == 0
    newest = out / "checkpoint.pth"
    data = newest.read_bytes()
    if damage == "flip":       # same length, one byte of a tensor changed: a bad copy
        mid = len(data) // 2
        newest.write_bytes(data[:mid] + bytes([data[mid] ^ 0x01]) + data[mid + 1:])
    else:                      # a disk that filled during another tool's copy
        newest.write_bytes(data[:len(data) * 2 // 3])
    capsys.readouterr()
    assert _train(setup, out, "--save-every", "1", "--resume") == 0
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:") and "checkpoint" in ln]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: {newest}: not a readable")
    assert f"resuming {out / 'checkpoint.prev.pth'} at iteration 2 of 4" in err
    assert _iters(out) == [1, 2, 3, 4]
    assert_same_model(reference, out)


def test_no_readable_checkpoint_exits_1_and_leaves_the_files(setup, tmp_path, capsys):
    out = tmp_path / "bad"
    assert _train(setup, out, "--save-every", "1", "--stop-after", "2") == 0
    newest, prev = out / "checkpoint.pth", out / "checkpoint.prev.pth"
    newest.write_bytes(newest.read_bytes()[:5000])
    data = bytearray(prev.read_bytes())
    data[len(data) // 2] ^= 0x10
    prev.write_bytes(bytes(data))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert _train(setup, out, "--resume") == 1
    err = capsys.readouterr().err
    lines = _errors(err)
    assert len(lines) == 1 and lines[0].startswith(f"error: {newest}: not a readable checkpoint")
    assert f"{prev}: not a readable checkpoint (corrupt" in lines[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # nor does a fresh run (without --resume) overwrite them
    assert _train(setup, out) == 1
    assert "a run is already here" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_nan_loss_stops_with_the_iteration_and_the_last_good_checkpoint(setup, reference,
                                                                        tmp_path):
    """A NaN weight put in before iteration 3 (tests/faulty.py): the loss of 3 is NaN; the run
    stops naming 3 and the checkpoint of 2, which is the uninterrupted run's and untouched."""
    out = tmp_path / "nan"
    r = _child([sys.executable, ROOT / "tests" / "faulty.py",
                "pspnet_caffe.train.trainer:train_step", "3", "nan", "always", RUN,
                *_args(setup, out)])
    assert r.returncode == 1, r.stderr[-3000:]
    lines = _errors(r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: loss is nan at iteration 3")
    assert f"the last good checkpoint is {out / 'checkpoint.pth'} (iteration 2)" in lines[0]
    assert not (out / "model.pth").exists() and _iters(out) == [1, 2]
    c = ck.load(out / "checkpoint.pth")
    ref2 = ck.load(reference / "checkpoint.prev.pth")
    assert c["iteration"] == ref2["iteration"] == 2
    assert all(torch.equal(c["model"][k], ref2["model"][k]) for k in ref2["model"])


def test_nonfinite_weights_write_no_model(setup, tmp_path):
    """A NaN weight after the update of iteration 1 (an overflowed update: its loss, computed
    before, is finite). One iteration: without the weight check the run would write
    checkpoint.pth and model.pth from it."""
    out = tmp_path / "w"
    r = _child([sys.executable, ROOT / "tests" / "faulty.py",
                "pspnet_caffe.train.trainer:train_step", "1", "nan-after", "always", RUN,
                *_args(setup, out, "--iters", "1")])
    assert r.returncode == 1, r.stderr[-3000:]
    lines = _errors(r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: non-finite weights after iteration 1 (")
    assert "no checkpoint was written yet" in lines[0]
    assert not list(out.glob("*.pth")) and not list(out.glob(".*.tmp"))


def test_huge_lr_diverges_at_its_iteration(setup, tmp_path, capsys):
    """--lr 1e37: the update of iteration 1 leaves weights near float32's limit, the loss of
    iteration 2 is NaN: stop there, the checkpoint of 1 kept, no model file."""
    out = tmp_path / "huge"
    assert _train(setup, out, "--iters", "3", "--save-every", "1", "--lr", "1e37") == 1
    lines = _errors(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("error: loss is nan at iteration 2")
    assert f"{out / 'checkpoint.pth'} (iteration 1)" in lines[0]
    assert ck.load(out / "checkpoint.pth")["iteration"] == 1 and _iters(out) == [1]
    assert not (out / "model.pth").exists()


def _tmpfs_allowed(where: Path) -> bool:
    where.mkdir()
    try:
        r = subprocess.run(["unshare", "-rm", "sh", "-c",
                            f"mount -t tmpfs -o size=64k tmpfs {shlex.quote(str(where))}"],
                           capture_output=True, timeout=HANG)
    except FileNotFoundError:
        return False
    return r.returncode == 0


def test_full_disk_keeps_the_last_good_checkpoint(setup, reference, tmp_path):
    """A real full file system: a tmpfs (in a private mount namespace, `unshare -rm`: no root
    needed where user namespaces are allowed) of 1.5 checkpoints (2.6 MB here) holds the
    checkpoint of iteration 2 but not a second one beside it: the write at 4 fails with ENOSPC.
    One line names the file and the checkpoint of 2, which loads and resumes to the
    uninterrupted weights."""
    mnt = tmp_path / "mnt"
    if not _tmpfs_allowed(mnt):
        pytest.skip("no tmpfs mount here (user namespaces refused): "
                    "test_failed_write_leaves_both_checkpoints injects ENOSPC instead")
    kept = tmp_path / "kept"
    cmd = [sys.executable, str(RUN), *_args(setup, mnt / "run")]
    size_k = (reference / "checkpoint.pth").stat().st_size * 3 // 2 // 1024 + 100
    script = (f"mount -t tmpfs -o size={size_k}k tmpfs {shlex.quote(str(mnt))} || exit 97; "
              f"{shlex.join(cmd)}; rc=$?; cp -a {shlex.quote(str(mnt / 'run'))} "
              f"{shlex.quote(str(kept))}; exit $rc")
    r = _child(["unshare", "-rm", "sh", "-c", script])
    assert r.returncode == 1, r.stderr[-3000:]
    lines = _errors(r.stderr)
    newest = mnt / "run" / "checkpoint.pth"
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {newest}: No space left on device: not written; "
                               f"the last good checkpoint is {newest} (iteration 2)")
    assert sorted(p.name for p in kept.iterdir()) == ["checkpoint.pth", "curves.png",
                                                      "log.jsonl"]
    assert ck.load(kept / "checkpoint.pth")["iteration"] == 2
    assert _train(setup, kept, "--resume") == 0
    assert_same_model(reference, kept)


def test_disk_full_injected_then_resume(setup, reference, tmp_path, capsys, monkeypatch):
    """The same through the command in this process, ENOSPC injected at the write call of the
    second checkpoint (for machines where no tmpfs can be mounted)."""
    out = tmp_path / "full"
    fill_disk_at(monkeypatch, 2, 500_000)
    assert _train(setup, out) == 1
    monkeypatch.undo()
    lines = _errors(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"error: {out / 'checkpoint.pth'}: No space")
    assert "(iteration 2)" in lines[0] and not (out / "model.pth").exists()
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pth", "curves.png", "log.jsonl"]
    assert _train(setup, out, "--resume") == 0
    assert_same_model(reference, out)


def test_elastic_restart_after_a_worker_dies(setup, tmp_path):
    """torchrun --max-restarts=1, 2 processes x 1 image: worker 1 of the first launch kills
    itself (SIGKILL) after the update of iteration 3; torchrun relaunches both with the same
    command line, they go on from the checkpoint of 2 by themselves, and the model equals an
    uninterrupted 2-process run's."""
    ref, out = tmp_path / "ref2", tmp_path / "elastic"
    r = _child(_torchrun(RUN, *_args(setup, ref)))
    assert r.returncode == 0, r.stderr[-3000:]
    r = _child(_torchrun("--max-restarts=1", ROOT / "tests" / "faulty.py",
                         "pspnet_caffe.train.trainer:train_step", "3", "kill",
                         "RANK=1,TORCHELASTIC_RESTART_COUNT=0", RUN, *_args(setup, out)))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "exitcode: -9" in r.stderr or "Signals.SIGKILL" in r.stderr, r.stderr[-3000:]
    assert r.stderr.count("torchrun relaunch 1: going on from the last checkpoint") == 1
    assert r.stderr.count(f"resuming {out / 'checkpoint.pth'} at iteration 2 of 4") == 1
    assert _iters(out) == [1, 2, 3, 4]
    assert_same_model(ref, out)
