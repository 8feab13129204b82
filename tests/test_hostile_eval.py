"""Issue 21 for evaluation and training data: images, lists and output folders from strangers.

Each crafted input is made by a small function here: a PNG whose header declares 20000x20000
pixels (a complete, valid file of ~400 KB: decoding it would take 400 MB grey, 1.2 GB as
colour), list files that leave the data root or exceed their budgets, folders with symbolic
link loops, an output folder that is someone's dataset. Most cases call `eval/run.py`'s
`main` in this process (a tiny stand-in model, images of 48x64); the PNG bombs run the real
script under `tests/hostile.py`'s address-space limit.
"""
from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hostile
from pspnet_caffe.eval import inputs, outputs, record
from pspnet_caffe.eval import run as eval_run
from psp_torch.datasets import files

SAMPLES = Path(__file__).resolve().parent / "data" / "samples"
SIZE = (48, 64)                          # rows, cols of every genuine image here
BOMB = 20000                             # the bomb's side


# ---------------------------------------------------------------- crafted inputs

def png_bomb(path: Path, side: int = BOMB) -> Path:
    """A valid grey PNG of side x side zeros, compressed to ~side^2 / 1000 bytes (written
    row by row: the test never holds the pixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    z = zlib.compressobj(9)
    row = bytes(side + 1)                # filter byte 0 + the row
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side,
                                                                          8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def photo(path: Path, seed: int = 0, size=SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def label(path: Path, seed: int = 0, size=SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 151, size, dtype=np.uint8)).save(path)
    return path


def own_dataset(root: Path, entries) -> Path:
    """A data root with an image and a label per entry ('a/x' -> images/a/x.jpg,
    labels/a/x.png) and list.txt naming them; the folder labels/ is the user's ground truth."""
    lines = []
    for k, e in enumerate(entries):
        photo(root / "images" / f"{e}.jpg", k)
        label(root / "labels" / f"{e}.png", k)
        lines.append(f"images/{e}.jpg labels/{e}.png")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root / "list.txt"


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


STANDIN = ["--model", "standin:ade20k", "--dataset", "ade20k", "--workers",
           "0", "--crop-size", "33", "--base-size", "64"]


def list_args(root: Path, lst: Path, out: Path, *extra) -> list:
    return [*STANDIN, "--data-root", root, "--list", lst, "--out", out, *extra]


def call(argv, capsys):
    rc = eval_run.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def one_line(rc, err, *mentions):
    """Status 1, no traceback, one `error:` line naming each of `mentions`."""
    return hostile.assert_one_line(hostile.subprocess.CompletedProcess([], rc, "", err),
                                   *mentions)


# ---------------------------------------------------------------- 1. data loss

def test_out_at_ones_own_dataset_is_refused_and_left_whole(tmp_path, capsys):
    """--out pointed at one's own data (labels/*.png, no run record of ours): refused in one
    line; not one file removed or changed (main deleted every PNG there, then failed)."""
    root = tmp_path / "mine"
    lst = own_dataset(root, ["a", "b"])
    before = snapshot(root)
    rc, _, err = call(list_args(root, lst, root), capsys)
    one_line(rc, err, str(root), "did not write", "run.json")
    assert snapshot(root) == before


def test_image_mode_never_replaces_a_file_it_did_not_write(tmp_path, capsys):
    """--image a.jpg --out DIR where DIR/labels/a.png is the user's: refused, kept (main
    replaced it silently)."""
    img = photo(tmp_path / "a.jpg")
    out = tmp_path / "out"
    theirs = label(out / "labels" / "a.png", 7)
    before = snapshot(out)
    rc, _, err = call([*STANDIN, "--image", img, "--out", out], capsys)
    one_line(rc, err, str(out))
    assert snapshot(out) == before
    # a folder of ours takes the same images again: its own files are replaced
    out2 = tmp_path / "ours"
    for _ in range(2):
        rc, _, err = call([*STANDIN, "--image", img, "--out", out2], capsys)
        assert rc == 0, err
    assert json.loads((out2 / "run.json").read_text())["outputs"] == ["a"]
    assert theirs.read_bytes() == before["labels/a.png"]


def test_a_run_removes_and_replaces_only_files_it_listed(tmp_path, capsys):
    """In a folder of ours: a file someone put there is neither removed by a run with other
    settings nor replaced by a run that would write its path."""
    root = tmp_path / "data"
    lst = own_dataset(root, ["a", "b"])
    out = tmp_path / "out"
    rc, _, err = call(list_args(root, lst, out), capsys)
    assert rc == 0, err
    rec = json.loads((out / "run.json").read_text())
    assert rec["outputs"] == ["images/a", "images/b"]
    foreign = label(out / "labels" / "notes" / "theirs.png", 3)
    rc, _, err = call(list_args(root, lst, out, "--no-flip"), capsys)
    assert rc == 0 and "held outputs of another run" in err, err
    assert foreign.is_file() and (out / "labels/images/a.png").is_file()
    # a new image whose output path holds a file no record lists
    (root / "list.txt").write_text(lst.read_text() + "images/c.jpg labels/c.png\n")
    photo(root / "images/c.jpg", 5)
    label(root / "labels/c.png", 5)
    squatter = label(out / "color" / "images" / "c.png", 9)
    before = snapshot(out)
    rc, _, err = call(list_args(root, lst, out, "--no-flip"), capsys)
    one_line(rc, err, "color/images/c.png", "not written by this program")
    assert snapshot(out) == before and squatter.is_file()


@pytest.mark.parametrize("outputs_field", [["../victim"], ["/tmp/x"], "labels", [7]])
def test_a_crafted_record_cannot_point_outside(tmp_path, capsys, outputs_field):
    """run.json is a file like any other: output names that leave the folder are refused
    before anything is removed."""
    root = tmp_path / "data"
    lst = own_dataset(root, ["a"])
    out = tmp_path / "out"
    assert call(list_args(root, lst, out), capsys)[0] == 0
    victim = tmp_path / "out" / "victim.png"
    victim.write_bytes(b"precious")
    rec = json.loads((out / "run.json").read_text())
    rec["outputs"] = outputs_field
    (out / "run.json").write_text(json.dumps(rec))
    rc, _, err = call(list_args(root, lst, out, "--no-flip"), capsys)
    one_line(rc, err, "run.json")
    assert victim.read_bytes() == b"precious" and (out / "labels/images/a.png").is_file()


def test_a_linked_layout_folder_is_never_written_through(tmp_path, capsys):
    """A folder of ours whose labels/ was replaced by a link to someone's data: refused;
    the data behind the link is neither removed nor replaced."""
    root = tmp_path / "data"
    lst = own_dataset(root, ["a"])
    out = tmp_path / "out"
    assert call(list_args(root, lst, out), capsys)[0] == 0
    victim = tmp_path / "victim"
    label(victim / "images" / "a.png", 4)
    before = snapshot(victim)
    import shutil
    shutil.rmtree(out / "labels")
    (out / "labels").symlink_to(victim)
    rc, _, err = call(list_args(root, lst, out, "--no-flip"), capsys)
    one_line(rc, err, "labels/images", "outside")
    assert snapshot(victim) == before


def test_a_file_that_is_no_record_of_ours_is_refused(tmp_path, capsys):
    root = tmp_path / "data"
    lst = own_dataset(root, ["a"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text('{"format": "something else", "outputs": []}')
    rc, _, err = call(list_args(root, lst, out), capsys)
    one_line(rc, err, "run.json", "not a run record")


# ---------------------------------------------------------------- 2. names never collide

def test_same_stem_in_two_folders_keeps_two_outputs_and_resumes_each(tmp_path, capsys,
                                                                     monkeypatch):
    """a/x.jpg and b/x.jpg: labels/images/a/x.png and labels/images/b/x.png (main wrote one
    labels/x.png, and --resume scored both images against it)."""
    root = tmp_path / "data"
    lst = own_dataset(root, ["a/x", "b/x"])
    out = tmp_path / "out"
    rc, _, err = call(list_args(root, lst, out), capsys)
    assert rc == 0, err
    labels = sorted(p.relative_to(out / "labels").as_posix()
                    for p in (out / "labels").rglob("*.png"))
    assert labels == ["images/a/x.png", "images/b/x.png"]
    first = json.loads((out / "results.json").read_text())
    (out / "results.json").unlink()
    monkeypatch.setattr(eval_run, "segment_counted", None)       # nothing may run again
    rc, text, err = call(list_args(root, lst, out, "--resume"), capsys)
    assert rc == 0 and "(2 resumed)" in text, err
    again = json.loads((out / "results.json").read_text())
    assert again["correct"] == first["correct"] and again["labelled"] == first["labelled"]


@pytest.mark.parametrize("lines", [
    "images/a.jpg labels/a.png\nimages/a.jpg labels/a.png\n",             # the same twice
    "images/a.jpg labels/a.png\n\nimages/a.png labels/a.png\n",           # x.jpg and x.png
    "images/a.jpg labels/a.png\n\nimages/A.jpg labels/a.png\n",           # equal but for case
])
def test_two_lines_with_one_output_name_are_refused(tmp_path, capsys, lines):
    """Evaluation refuses them before any work (a training list may repeat an image)."""
    root = tmp_path / "data"
    own_dataset(root, ["a"])
    photo(root / "images" / "a.png")
    photo(root / "images" / "A.jpg")
    (root / "list.txt").write_text(lines)
    rc, _, err = call(list_args(root, root / "list.txt", tmp_path / "out"), capsys)
    one_line(rc, err, "labels/images/", "two images")
    assert not (tmp_path / "out").exists()


def test_colliding_image_names_are_an_error(tmp_path, capsys):
    """Names that would still be one file (on a file system ignoring case): an error, not
    one output overwriting the other."""
    a, b = photo(tmp_path / "in" / "X.jpg"), photo(tmp_path / "in" / "x.jpg", 1)
    with pytest.raises(inputs.InputError, match="X.jpg"):
        inputs.output_names([a, b])
    assert inputs.output_names([photo(tmp_path / "a" / "x.jpg"), photo(tmp_path / "b" / "x.jpg")]
                               ) == ["a/x", "b/x"]
    rc, _, err = call([*STANDIN, "--image", a, b, "--out", tmp_path / "out"], capsys)
    one_line(rc, err, "x.jpg")
    assert not (tmp_path / "out").exists()


def test_a_split_list_naming_one_id_twice_is_refused(tmp_path, capsys):
    import shutil
    shutil.copytree(SAMPLES / "VOC2012", tmp_path / "VOC2012")
    (tmp_path / "VOC2012/ImageSets/Segmentation/val.txt").write_text(
        "2007_000033\n2007_000129\n2007_000033\n")
    rc, _, err = call(["--model", "standin:voc", "--dataset", "voc",
                       "--split", "val", "--data-root", tmp_path, "--out", tmp_path / "out",
                       "--workers", "0", "--crop-size", "33", "--base-size", "64"], capsys)
    one_line(rc, err, "2007_000033", "two images")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- 3. all or nothing

def test_results_are_written_together_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "out"
    outputs.write_together(out, {"results.csv": b"old csv", "results.json": b"old json"})
    real = os.replace
    calls = []

    def failing(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst)
    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError):
        outputs.write_together(out, {"results.csv": b"new csv", "results.json": b"new json"})
    # the marker (results.json, last) still names the old set; no temporary is left
    assert (out / "results.json").read_bytes() == b"old json"
    assert sorted(p.name for p in out.iterdir()) == ["results.csv", "results.json"]
    monkeypatch.undo()
    with pytest.raises(TypeError):
        outputs.write_together(out, {"results.csv": b"new", "results.json": None})
    assert sorted(p.name for p in out.iterdir()) == ["results.csv", "results.json"]


def test_a_run_that_fails_leaves_no_earlier_results_beside_its_record(tmp_path, capsys):
    """results.json of an earlier run never sits beside the record of a later one, even one
    of the same settings over other images (main kept it until the new one was written)."""
    root = tmp_path / "data"
    lst = own_dataset(root, ["a", "b"])
    out = tmp_path / "out"
    assert call(list_args(root, lst, out, "--limit", "1"), capsys)[0] == 0
    assert json.loads((out / "results.json").read_text())["images"] == 1
    (root / "images/b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg" * 10)
    rc, _, err = call(list_args(root, lst, out), capsys)
    one_line(rc, err, "b.jpg")
    assert json.loads((out / "run.json").read_text())["outputs"] == ["images/a", "images/b"]
    assert not (out / "results.json").exists() and not (out / "results.csv").exists()


# ---------------------------------------------------------------- 4. pixel budget

@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return png_bomb(tmp_path_factory.mktemp("bomb") / "bomb.png")


def test_image_bomb_is_refused_from_its_header(bomb, tmp_path):
    """The 20000x20000 PNG as an --image: one line naming it and its size, under the 3 GiB
    limit (main decoded it, grew past any limit and ended in a traceback)."""
    assert bomb.stat().st_size < 2 * 2**20
    r = hostile.run(["eval/run.py", *STANDIN, "--image", bomb, "--out", tmp_path / "out"],
                    cwd=tmp_path)
    hostile.assert_one_line(r, "bomb.png", f"{BOMB}x{BOMB}", "--max-pixels")
    assert not (tmp_path / "out").exists()              # refused before anything is written


def test_label_bomb_is_refused_from_its_header(bomb, tmp_path, capsys):
    """The bomb as a label: eval/run.py (in a child) and train/run.py refuse it in one line
    (main: Pillow's DecompressionBombError as a traceback)."""
    from pspnet_caffe.train import run as train_run
    root = tmp_path / "data"
    lst = own_dataset(root, ["a"])
    (root / "labels" / "a.png").write_bytes(bomb.read_bytes())
    r = hostile.run(["eval/run.py", *list_args(root, lst, tmp_path / "out")], cwd=tmp_path)
    hostile.assert_one_line(r, "a.png", f"{BOMB}x{BOMB}")
    capsys.readouterr()
    rc = train_run.main([str(a) for a in [
        "--data-root", root, "--list", lst, "--num-classes", "3", "--iters", "1", "--arch",
        "pspnet50", "--out", tmp_path / "train", "--workers", "0", "--no-progress"]])
    one_line(rc, capsys.readouterr().err, "a.png", f"{BOMB}x{BOMB}")


def test_pillows_own_bomb_check_never_escapes(bomb, tmp_path):
    """Above Pillow's limit and with ours raised, Pillow's DecompressionBombError (main: a
    traceback) never comes out: a truncated bomb is one DatasetError naming the file."""
    cut = tmp_path / "cut.png"
    cut.write_bytes(bomb.read_bytes()[:4096])
    with pytest.raises(files.DatasetError, match="cut.png"):
        files.read_png_values(cut, max_pixels=None)
    with pytest.raises(files.DatasetError, match="cut.png: image of 20000x20000"):
        files.read_png_values(cut)
    assert files.image_size(bomb, None) == (BOMB, BOMB)


def test_max_pixels_is_the_limit_and_raises_it(tmp_path, capsys):
    img = photo(tmp_path / "a.jpg")
    pixels = SIZE[0] * SIZE[1]
    rc, _, err = call([*STANDIN, "--image", img, "--out", tmp_path / "o1", "--max-pixels",
                       pixels - 1], capsys)
    one_line(rc, err, "a.jpg", f"{SIZE[1]}x{SIZE[0]}", f"{pixels - 1:,}")
    rc, _, err = call([*STANDIN, "--image", img, "--out", tmp_path / "o2", "--max-pixels",
                       pixels], capsys)
    assert rc == 0, err
    assert files.MAX_PIXELS >= 12_000 * 12_000          # a large aerial tile passes by default


def test_training_reads_with_the_same_limit(tmp_path):
    from pspnet_caffe.train import augment as A
    from pspnet_caffe.train.data import TrainSet, scan_labels
    root = tmp_path / "data"
    own_dataset(root, ["a"])
    from psp_torch.datasets.files import Sample
    items = [Sample("a", root / "images/a.jpg", root / "labels/a.png")]
    aug = A.recipe("none", 33, rotate=False, blur=False)
    ts = TrainSet(items, "custom", 151, aug, seed=0, batch_size=1, start=0, stop=1,
                  max_pixels=SIZE[0] * SIZE[1] - 1)
    with pytest.raises(files.DatasetError, match=f"a.jpg: image of {SIZE[1]}x{SIZE[0]}"):
        ts[0]
    with pytest.raises(files.DatasetError, match=f"a.png: image of {SIZE[1]}x{SIZE[0]}"):
        scan_labels(items, "custom", 151, workers=1, progress=False, max_pixels=100)


def test_decoded_size_must_match_the_header(tmp_path, monkeypatch):
    """A file whose decoder disagrees with its header (a polyglot) is refused."""
    img = photo(tmp_path / "a.png")
    monkeypatch.setattr(files, "image_size", lambda path, max_pixels: (10, 10))
    with pytest.raises(files.DatasetError, match="header says 10x10"):
        files.read_image(img)


# ---------------------------------------------------------------- 5. list files

@pytest.mark.parametrize("line, what", [
    ("images/../../secret.jpg labels/a.png", "leaves the data root"),
    ("images/a.jpg ../labels/a.png", "leaves the data root"),
    ("/../etc/passwd", "leaves the data root"),
    ("a b c", "expected 'image [label]'"),
    ("images/" + "x" * 5000 + ".jpg", "longer than 4096 bytes"),
    ("images/a\x00.jpg", "NUL byte"),
])
def test_bad_list_lines_are_refused_naming_file_and_line(tmp_path, capsys, line, what):
    root = tmp_path / "data"
    own_dataset(root, ["a"])
    lst = root / "list.txt"
    lst.write_text("images/a.jpg labels/a.png\n" + line + "\n")
    rc, _, err = call(list_args(root, lst, tmp_path / "out"), capsys)
    one_line(rc, err, "list.txt:2", what)
    assert not (tmp_path / "out").exists()


def test_a_list_of_absurd_length_is_refused(tmp_path, capsys):
    root = tmp_path / "data"
    own_dataset(root, ["a"])
    lst = root / "list.txt"
    with open(lst, "w") as f:
        f.write("images/a.jpg labels/a.png\n" + "\n" * files.MAX_LIST_LINES)
    rc, _, err = call(list_args(root, lst, tmp_path / "out"), capsys)
    one_line(rc, err, "list.txt", f"more than {files.MAX_LIST_LINES:,} lines")


def test_class_names_file_is_read_within_budget(tmp_path):
    from psp_torch.datasets import listfile
    f = tmp_path / "names.txt"
    f.write_bytes(b"a\nb\n" + b"c" * 10_000 + b"\n")
    with pytest.raises(files.DatasetError, match="names.txt:3: line longer"):
        listfile.read_class_names(f, 2)
    f.write_text("a\nb\nc\n" * 1000)
    with pytest.raises(files.DatasetError, match="more than 2 class names"):
        listfile.read_class_names(f, 2)


# ---------------------------------------------------------------- 6. globbing

def looped(tmp_path: Path) -> Path:
    d = tmp_path / "d"
    photo(d / "a.jpg")
    photo(d / "sub" / "b.jpg", 1)
    (d / "up").symlink_to("..")
    (d / "self").symlink_to(".")
    (d / "sub" / "loop").symlink_to("..")
    return d


def test_glob_follows_no_symlink_loop(tmp_path, monkeypatch):
    """'d/**/*.jpg' with up -> .. and self -> . inside: the two images, after a count of
    folder reads that the loops cannot grow (main's glob read folders for minutes)."""
    d = looped(tmp_path)
    reads = []
    real = os.scandir

    def counted(path="."):
        reads.append(path)
        if len(reads) > 1000:
            raise AssertionError("more than 1000 folder reads: a symlink loop was followed")
        return real(path)
    monkeypatch.setattr(os, "scandir", counted)
    found = eval_run.image_paths([str(d / "**" / "*.jpg")])
    assert found == [d / "a.jpg", d / "sub" / "b.jpg"]
    assert len(reads) < 10
    assert eval_run.image_paths([str(d / "**")]) == [d / "a.jpg", d / "sub" / "b.jpg"]


def test_glob_stops_at_its_budget(tmp_path):
    d = tmp_path / "wide"
    for i in range(12):
        photo(d / f"{i}.png", i, (4, 4))
    with pytest.raises(inputs.InputError, match="more than 10 folder entries"):
        inputs.image_paths([str(d / "*.png")], max_entries=10)
    with pytest.raises(inputs.InputError, match="more than 10 folder entries"):
        inputs.image_paths([d], max_entries=10)
    assert len(inputs.image_paths([str(d / "*.png")], max_entries=12)) == 12


def test_glob_through_the_cli_finishes_on_a_looped_folder(tmp_path):
    d = looped(tmp_path)
    r = hostile.run(["eval/run.py", *STANDIN, "--image", str(d / "**" / "*.jpg"), "--out",
                     tmp_path / "out"], cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.relative_to(tmp_path / "out" / "labels").as_posix()
                  for p in (tmp_path / "out" / "labels").rglob("*.png")) == ["a.png", "b.png"]


# ---------------------------------------------------------------- 7. names on the terminal

def test_file_names_reach_the_terminal_escaped(tmp_path, capsys):
    evil = photo(tmp_path / "in" / "x\x1b[2Jy\nz.jpg")
    rc, text, err = call([*STANDIN, "--image", evil, "--out", tmp_path / "out"], capsys)
    assert rc == 0, err
    assert "\x1b" not in text and "x\\x1b[2Jy\\nz.jpg" in text
    assert len(text.strip().splitlines()) == 1
    root = tmp_path / "data"
    own_dataset(root, ["a"])
    (root / "list.txt").write_text("images/a.jpg labels/a.png\n../\x1b[2J.jpg\n")
    rc, _, err = call(list_args(root, root / "list.txt", tmp_path / "o2"), capsys)
    line = one_line(rc, err, "list.txt:2")
    assert "\x1b" not in line and "\\x1b" in line
    (root / "list.txt").write_text("images/a.jpg labels/a.png\nimages/\x1b[2J.jpg\n")
    rc, _, err = call(list_args(root, root / "list.txt", tmp_path / "o3"), capsys)
    assert rc == 1 and "\x1b" not in err and "images/\\x1b[2J.jpg (missing)" in err, err
