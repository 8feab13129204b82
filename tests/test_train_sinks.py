"""train/sinks.py: the training run's outputs as a list of sinks (log.jsonl, curves.png,
TensorBoard events); --tensorboard DIR on a short run of the slim PSPNet50 (crop 97, batch 2),
read back with TensorBoard's own EventAccumulator where the package is installed."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from conftest import slim_voc_training
from pspnet_caffe.train import run as train_run
from pspnet_caffe.train import sinks

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "data" / "samples" / "VOC2012"


def _has_tensorboard() -> bool:
    return sinks.tensorboard_problem() is None


needs_tensorboard = pytest.mark.skipif(not _has_tensorboard(), reason="the tensorboard "
                                       "package is not installed (optional extra "
                                       "'tensorboard')")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return slim_voc_training(tmp_path_factory.mktemp("sinks"))


def _train(setup, out, *extra) -> int:
    d, slim = setup
    argv = ["--data-root", SAMPLES, "--list", d / "list.txt", "--num-classes", "21",
            "--init", slim, "--out", out, "--crop-size", "97", "--batch-size", "2",
            "--workers", "0", "--no-progress", "--iters", "3", "--save-every", "2", *extra]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_run.main([str(a) for a in argv])
    finally:
        torch.set_num_threads(n)


def _scalars(folder: Path) -> dict:
    """{tag: [(step, value), ...]} as TensorBoard reads the folder (purged steps dropped)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def test_the_default_sinks_are_the_log_and_the_curves(tmp_path):
    made = sinks.make(tmp_path)
    assert [type(s) for s in made] == [sinks.JsonLog, sinks.CurvesPng]
    assert [type(s) for s in sinks.make(tmp_path, tmp_path / "tb")][-1] is sinks.TensorBoard


def test_a_sink_is_one_class(tmp_path):
    """The trainer hears every sink of its list: a new output needs no edit of the loop."""
    heard = []

    class Recorder(sinks.Sink):
        path = tmp_path / "recorder"

        def start(self, resumed_at, val_points):
            heard.append(("start", resumed_at))

        def iteration(self, row):
            heard.append(("iteration", row["iter"]))

        def flush(self):
            heard.append(("flush",))

    log = sinks.JsonLog(tmp_path)
    for s in (log, Recorder()):
        s.start(None, [])
        s.iteration({"iter": 1, "loss": 1.0})
        s.flush()
        s.close()
    assert heard == [("start", None), ("iteration", 1), ("flush",)]
    assert log.rows() == [{"iter": 1, "loss": 1.0}]


def test_resumed_log_drops_the_lines_after_the_checkpoint(tmp_path):
    log = sinks.JsonLog(tmp_path)
    log.path.write_text("".join(json.dumps({"iter": i}) + "\n" for i in (1, 2, 3, 4)))
    log.start(2, [])
    assert [r["iter"] for r in log.rows()] == [1, 2]
    log.start(None, [])                                  # a fresh run starts it empty
    assert log.rows() == []


@needs_tensorboard
def test_tensorboard_events_hold_the_scalars_and_survive_a_resume(setup, tmp_path, capsys):
    out, tb = tmp_path / "run", tmp_path / "tb"
    one = tmp_path / "val.txt"                           # validation on one image: quick
    one.write_text((setup[0] / "list.txt").read_text().splitlines()[0] + "\n")
    val = ["--val-list", one, "--val-every", "2"]
    assert _train(setup, out, "--tensorboard", tb, "--stop-after", "2", *val) == 0
    first = _scalars(tb)
    assert set(first) == set(sinks.SCALARS.values()) | {sinks.VAL_MIOU}
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    assert first[sinks.VAL_MIOU] == [(2, pytest.approx(ckpt["val"][0][1]))]
    rows = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    for key, tag in sinks.SCALARS.items():
        assert [s for s, _ in first[tag]] == [1, 2]
        assert [v for _, v in first[tag]] == pytest.approx([r[key] for r in rows], rel=1e-6)
    assert _train(setup, out, "--tensorboard", tb, "--resume", *val) == 0
    again = _scalars(tb)
    assert [s for s, _ in again["train/loss"]] == [1, 2, 3]
    assert [s for s, _ in again[sinks.VAL_MIOU]] == [2, 3]      # the end validates again
    assert "TensorBoard" in capsys.readouterr().err      # the done line names the folder


@needs_tensorboard
def test_a_fresh_run_purges_an_earlier_runs_events(setup, tmp_path):
    tb = tmp_path / "tb"
    assert _train(setup, tmp_path / "a", "--tensorboard", tb) == 0
    assert _train(setup, tmp_path / "b", "--tensorboard", tb, "--iters", "2") == 0
    assert [s for s, _ in _scalars(tb)["train/loss"]] == [1, 2]


def test_tensorboard_not_installed_is_one_line(setup, tmp_path, capsys, monkeypatch):
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith(
            ("tensorboard.", "torch.utils.tensorboard"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)          # import fails
    out = tmp_path / "run"
    rc = _train(setup, out, "--tensorboard", tmp_path / "tb")
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("error: --tensorboard: ")
    assert "pip install" in err and not out.exists()


@needs_tensorboard
def test_an_unwritable_tensorboard_folder_is_one_line(setup, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    tb = tmp_path / "afile" / "tb"                      # below a file: cannot be made
    assert _train(setup, tmp_path / "run", "--tensorboard", tb) == 1
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {tb}: Not a directory")
