"""Full-size conversion benchmark: convert.py on a ~270 MB PSPNet101 caffemodel.

The caffemodel is written by the exporter from a randomly initialised
``pspnet101_voc2012()`` (cached in --workdir). Three whole commands are timed
as child processes (wall time including interpreter start; peak RSS of the
child from wait4):

    cp          cp FILE COPY                                   (I/O floor)
    protobuf    python: NetParameter.ParseFromString + np.array(blob.data) per blob
    convert     python converter/convert.py FILE -o OUT --force

and printed side by side with the ratios convert/cp, convert/protobuf and
peak RSS / file size. Targets: convert <= 3 s wall, peak RSS <= 2x the file.

    python bench/bench_convert.py [--repeat 3] [--workdir /tmp/psp_bench_convert]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROTOBUF_BASELINE = r"""
import sys
import numpy as np
from caffe_proto import caffe_pb2
msg = caffe_pb2.PSPNetParameter()
with open(sys.argv[1], "rb") as f:
    msg.ParseFromString(f.read())
arrays = [np.array(b.data, dtype=np.float32) for layer in msg.layer for b in layer.blobs]
print(sum(a.size for a in arrays))
"""


def make_caffemodel(workdir: Path) -> Path:
    """pspnet101_VOC2012.caffemodel from a random full-size model, through the exporter."""
    path = workdir / "pspnet101_VOC2012_random.caffemodel"
    if path.exists():
        return path
    import torch
    import psp_torch
    from pspnet_caffe.converter.export import export
    from psp_torch.io import save_pspnet
    torch.manual_seed(0)
    model = psp_torch.pspnet101_voc2012()
    pth = save_pspnet(model, workdir / "pspnet101_VOC2012_random.pth")
    export(pth, workdir)
    pth.unlink()
    (workdir / "pspnet101_VOC2012_random.prototxt").unlink()
    return path


def run(cmd, env=None) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {err}")
    return wall, usage.ru_maxrss / 1024


def main(argv=None) -> int:
    from caffe_proto import cli
    ap = cli.parser(None, __doc__)
    ap.add_argument("--repeat", type=cli.positive_int, default=3, help="runs per command (best is kept)")
    ap.add_argument("--workdir", default="/tmp/psp_bench_convert")
    ap.add_argument("--make", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.make:
        make_caffemodel(workdir)
        return 0
    # Made in a child: Linux children inherit the parent's peak-RSS mark at fork, so
    # this process must stay small for the children's ru_maxrss to mean anything.
    subprocess.run([sys.executable, __file__, "--make", "--workdir", str(workdir)], check=True)
    model = workdir / "pspnet101_VOC2012_random.caffemodel"
    size_mib = model.stat().st_size / 2**20
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    commands = {
        "cp": ["cp", str(model), str(workdir / "copy.caffemodel")],
        "protobuf": [sys.executable, "-c", PROTOBUF_BASELINE, str(model)],
        "convert": [sys.executable, str(ROOT / "converter" / "convert.py"), str(model),
                    "-o", str(workdir / "out.pth"), "--force"],
    }
    results = {}
    for name, cmd in commands.items():
        runs = [run(cmd, env) for _ in range(args.repeat)]
        results[name] = (min(w for w, _ in runs), max(r for _, r in runs))
    print(f"file: {model.name}, {size_mib:.1f} MiB; best of {args.repeat} runs; "
          f"{os.cpu_count()} CPUs")
    print(f"{'command':<10} {'wall s':>8} {'peak RSS MiB':>13} {'RSS/file':>9}")
    for name, (wall, rss) in results.items():
        print(f"{name:<10} {wall:8.2f} {rss:13.0f} {rss / size_mib:9.2f}")
    conv_wall, conv_rss = results["convert"]
    print(f"convert / cp wall: {conv_wall / results['cp'][0]:.1f}x; "
          f"convert / protobuf wall: {conv_wall / results['protobuf'][0]:.2f}x; "
          f"convert / protobuf RSS: {conv_rss / results['protobuf'][1]:.2f}x")
    ok_wall, ok_rss = conv_wall <= 3.0, conv_rss <= 2 * size_mib
    print(f"targets: wall <= 3 s {'met' if ok_wall else 'MISSED'}; "
          f"peak RSS <= 2x file {'met' if ok_rss else 'MISSED'}")
    for f in ("copy.caffemodel", "out.pth"):
        (workdir / f).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
