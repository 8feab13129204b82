"""eval/run.py --video: a round trip on generated MJPG frames (frame count and size kept, each
frame's labels equal to the Python API's on the decoded frame), and its failures as one line."""
import cv2
import numpy as np
import pytest

import hostile
from pspnet_caffe.eval import Segmenter
from pspnet_caffe.eval import run as eval_run
from psp_torch.datasets import read_png_values
from pspnet_caffe.eval.video import frames, open_video
from test_eval_run import _tiny_caffe_net

SIZE = (52, 40)             # (width, height) as OpenCV counts
FRAMES = 4
SMALL = ["--crop-size", "65", "--base-size", "80"]     # the tiny net takes 8k + 1; 2 windows


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _tiny_caffe_net(tmp_path_factory.mktemp("video"), 21)


def _clip(path, n=FRAMES):
    w, h = SIZE
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    assert out.isOpened()
    rng = np.random.default_rng(0)
    for i in range(n):
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        frame[:, : (i + 1) * w // (n + 1), 2] = 240          # a red band that grows
        out.write(frame)
    out.release()
    return path


def _decoded(path):
    cap = open_video(path)
    try:
        return list(frames(cap))
    finally:
        cap.release()


def test_video_round_trip(tiny, tmp_path, capsys):
    clip = _clip(tmp_path / "clip.avi")
    out = tmp_path / "out"
    argv = ["--weights", tiny, "--dataset", "voc", "--video", clip, "--video-out", "both",
            "--out", out, *SMALL]
    assert eval_run.main([str(a) for a in argv]) == 0
    assert f"{FRAMES} frames" in capsys.readouterr().out
    overlays = _decoded(out / "clip_overlay.avi")
    assert len(overlays) == FRAMES
    assert {f.shape for f in overlays} == {(SIZE[1], SIZE[0], 3)}
    cap = cv2.VideoCapture(str(out / "clip_overlay.avi"))
    assert cap.get(cv2.CAP_PROP_FPS) == 10.0
    cap.release()
    seg = Segmenter(tiny, dataset="voc", device="cpu", crop_size=65, base_size=80)
    varied = set()
    for i, frame in enumerate(_decoded(clip)):
        labels = read_png_values(out / "labels" / f"clip_{i:06d}.png")
        assert np.array_equal(labels, seg(frame).labels), i
        varied.add(labels.tobytes())
    assert len(varied) > 1                                     # the frames differ
    # no temporary video left behind (run.json: the output folder's record, eval/run.py)
    assert sorted(p.name for p in out.iterdir()) == ["clip_overlay.avi", "color", "labels",
                                                     "run.json"]


def test_labels_only_and_limit(tiny, tmp_path, capsys):
    clip = _clip(tmp_path / "clip.avi")
    argv = ["--weights", tiny, "--dataset", "voc", "--video", clip, "--video-out", "labels",
            "--limit", "2", "--out", tmp_path / "o", *SMALL]
    assert eval_run.main([str(a) for a in argv]) == 0
    assert sorted(p.name for p in (tmp_path / "o/labels").iterdir()) == \
        ["clip_000000.png", "clip_000001.png"]
    assert not list((tmp_path / "o").glob("*.avi"))


def test_missing_video_is_one_line(tiny, tmp_path, capsys):
    rc = eval_run.main([str(a) for a in ["--weights", tiny, "--dataset", "voc",
                                         "--video", tmp_path / "none.avi", "--out", tmp_path]])
    err = capsys.readouterr().err
    assert rc == 1 and err == f"error: {tmp_path / 'none.avi'}: no such video file\n"


def test_not_a_video_is_one_line_and_nothing_written(tiny, tmp_path):
    bad = tmp_path / "notes.avi"
    bad.write_bytes(b"not a video\n" * 100)
    out = tmp_path / "out"
    r = hostile.run(["eval/run.py", "--weights", tiny, "--dataset", "voc", "--video", bad,
                     "--out", out], cwd=tmp_path)
    hostile.assert_one_line(r, str(bad))
    assert not out.exists() or hostile.files_under(out) == set()


def test_video_and_image_are_exclusive(tiny, capsys):
    with pytest.raises(SystemExit) as e:
        eval_run.parse_args(["--weights", str(tiny), "--image", "a.jpg", "--video", "0"])
    assert e.value.code == 2
