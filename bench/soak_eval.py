"""Evaluation under load: kill, --resume, and the same numbers; memory across images.

    python bench/soak_eval.py                 # 500 synthetic images, 3 kills
    python bench/soak_eval.py --images 20 --kills 1

A synthetic ADE20K-layout dataset (N small JPEG images with random labels, made
once in a temporary folder) is evaluated on CPU with the stand-in model
(`tests/standin.py`'s ``ade20k``, a fixed random stride-8 convolution) through the real
command ``eval/run.py``:

1. once uninterrupted (the reference), sampling the child's peak RSS (VmHWM)
   when its 10th image is written and at the end of the run (wait4);
2. once killed (SIGKILL, no chance to clean up) at a random image, resumed with
   ``--resume`` and killed again, `kills` times, then resumed to the end.

The child stops right after writing the chosen image and waits (tests/faulty.py pause)
until it is sampled or killed, so the kill points and the sample are exact, on
any machine: nothing races the child.

The final results.json of (2) must equal (1) number for number. Exit status 0
when they do, 1 otherwise.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAUSE_AT = "pspnet_caffe.eval.outputs:Writer.write"  # one call per image written

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402

RUN = ROOT / "eval" / "run.py"
SIZE = (48, 64)                 # rows, cols of the synthetic images
CROP, BASE = 33, 64             # a crop of side 8k+1 for the stand-in's zoom of 8


def make_dataset(root: Path, n: int, seed: int = 0, size=SIZE) -> Path:
    """ADEChallengeData2016 layout: images/validation/*.jpg, annotations/validation/*.png."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    img_dir = root / "images" / "validation"
    lab_dir = root / "annotations" / "validation"
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    h, w = size
    for i in range(n):
        name = f"SYN_val_{i:08d}"
        # smooth random colour fields, so the stand-in predicts several classes
        small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(str(img_dir / f"{name}.jpg"), img)
        lab = rng.integers(0, 151, (h, w), dtype=np.uint8)
        cv2.imwrite(str(lab_dir / f"{name}.png"), lab)
    return root


def command(data: Path, out: Path, resume: bool = False, extra=()) -> list:
    cmd = [sys.executable, str(RUN), "--model", "standin:ade20k", "--dataset", "ade20k",
           "--data-root", str(data), "--split", "val", "--out", str(out), "--workers", "0",
           "--crop-size", str(CROP), "--base-size", str(BASE), *extra]
    return cmd + (["--resume"] if resume else [])


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"),   # tests: standin
                                       e.get("PYTHONPATH", "")])
    e.setdefault("OMP_NUM_THREADS", "1")
    return e


def finished(out: Path) -> int:
    """Images whose label PNG is written (temp files start with '.')."""
    try:
        return sum(1 for e in os.scandir(out / "labels") if not e.name.startswith("."))
    except FileNotFoundError:
        return 0


def vm_hwm_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Run:
    """One eval/run.py child, stopped after writing its `pause_after`-th image (if given)."""

    def __init__(self, cmd, out: Path, log_path: Path, pause_after: int | None = None):
        self.out = out
        self.log = open(log_path, "ab")
        if pause_after is not None:
            cmd = [cmd[0], str(ROOT / "tests" / "faulty.py"), PAUSE_AT, str(pause_after),
                   "pause", "always", *cmd[1:]]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, env=env())

    def wait_paused(self) -> bool:
        """Until the child says it is paused (True) or its output ends (False)."""
        for line in self.proc.stdout:
            self.log.write(line)
            if line.startswith(b"PAUSED "):
                return True
        return False

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.finish()

    def finish(self) -> tuple[int, float]:
        """Let the child go on to its end: (exit status, peak RSS MiB of the child)."""
        try:
            self.proc.stdin.close()          # EOF: a paused child goes on
        except OSError:
            pass
        for line in self.proc.stdout:
            self.log.write(line)
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.log.close()
        return self.proc.returncode, usage.ru_maxrss / 1024


def numbers(out: Path) -> dict:
    """The figures of results.json (everything but timings and paths)."""
    res = json.loads((out / "results.json").read_text())
    drop = {"elapsed", "seconds", "time", "date", "out", "outputs"}
    return {k: v for k, v in res.items() if k not in drop}


def soak(n: int = 500, kills: int = 3, seed: int = 0, work: Path | None = None,
         log=print) -> dict:
    """Run the whole soak; returns figures (see module doc) and "identical"."""
    rng = random.Random(seed)
    own = work is None
    tmp = tempfile.TemporaryDirectory(prefix="psp_soak_") if own else None
    work = Path(tmp.name) if own else Path(work)
    try:
        data = make_dataset(work / "data", n, seed)
        ref_out, out = work / "reference", work / "resumed"
        logs = work / "logs.txt"

        t0 = time.perf_counter()
        at = min(10, n)
        ref = Run(command(data, ref_out), ref_out, logs, pause_after=at)
        rss_at_10 = vm_hwm_mib(ref.proc.pid) if ref.wait_paused() else None
        rc, rss_end = ref.finish()
        ref_wall = time.perf_counter() - t0
        if rc != 0:
            raise RuntimeError(f"reference run failed with status {rc}; see {logs}")
        log(f"reference: {n} images in {ref_wall:.1f} s (one pause included), peak RSS "
            f"{rss_at_10:.0f} MiB at image {at}, {rss_end:.0f} MiB at image {n}")

        killed_at = []
        # kill points spread over the run: a sorted random sample of distinct images
        targets = sorted(rng.sample(range(1, n), min(kills, n - 1)))
        targets += [n - 1] * (kills - len(targets))
        for k in range(kills):
            done = finished(out)
            target = max(targets[k], done + 1)
            run = Run(command(data, out, resume=k > 0), out, logs, pause_after=target - done)
            if run.wait_paused():
                run.kill()
                killed_at.append(finished(out))
                log(f"kill {k + 1}: SIGKILL after {killed_at[-1]} images")
            else:
                run.finish()
                killed_at.append(None)
                log(f"kill {k + 1}: the run ended before image {target}")
        run = Run(command(data, out, resume=True), out, logs)
        rc, _ = run.finish()
        if rc != 0:
            raise RuntimeError(f"final --resume run failed with status {rc}; see {logs}")
        leftovers = [p.name for p in (out / "labels").iterdir() if p.name.startswith(".")]
        a, b = numbers(ref_out), numbers(out)
        identical = a == b
        log(f"resumed after {kills} kill(s) at {killed_at}: results "
            f"{'identical to' if identical else 'DIFFERENT from'} the uninterrupted run; "
            f"temp files left: {len(leftovers)}")
        return {"images": n, "kills": killed_at, "identical": identical,
                "leftover_temp_files": leftovers, "rss_at_10_mib": rss_at_10,
                "rss_at_end_mib": rss_end, "reference_wall_s": ref_wall,
                "reference": a, "resumed": b}
    finally:
        if tmp is not None:
            tmp.cleanup()


def main(argv=None) -> int:
    from caffe_proto import cli
    ap = cli.parser(None, __doc__)
    ap.add_argument("--images", type=cli.positive_int, default=500)
    ap.add_argument("--kills", type=cli.nonnegative_int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="keep the dataset and outputs in this folder")
    args = ap.parse_args(argv)
    res = soak(args.images, args.kills, args.seed, Path(args.work) if args.work else None)
    ok = res["identical"] and not res["leftover_temp_files"]
    print(f"soak: {res['images']} images, kills at {res['kills']}, "
          f"{'PASS' if ok else 'FAIL'}: identical={res['identical']}, "
          f"peak RSS {res['rss_at_10_mib']:.0f} MiB at image 10 -> "
          f"{res['rss_at_end_mib']:.0f} MiB at image {res['images']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
