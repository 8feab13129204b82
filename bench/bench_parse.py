"""Caffemodel parsing benchmark: the project's reader vs protobuf, on a full-size file.

    python bench/bench_parse.py [--preset pspnet101_voc2012] [--repeat 3] [--workdir DIR]

Builds (once, cached in --workdir) a full-size caffemodel from the released
deploy prototxt with random weights (bench/make_caffemodel.py; ~263 MB for
PSPNet101 VOC, layer types as in the released files), then parses it in
fresh child processes, alternating:

    project    caffe_proto.load_caffemodel(FILE)
    protobuf   PSPNetParameter.ParseFromString(bytes) + np.array(blob.data) per blob
               (the method public ports use)
    floor      readinto of the whole file into one fresh numpy buffer: what any
               reader returning private arrays pays at least (page faults of
               fresh memory + the copy out of the page cache)

Each child times only the parse (after its imports; the file is in the page
cache) and reports its peak RSS growth over its own baseline (VmHWM - VmRSS
before parsing, from /proc/self/status, so nothing of this parent's memory
counts). Best of --repeat runs. Prints both and the ratios; the targets are a
speed-up of at least 10x and a peak RSS growth of at most 1.2x the file size.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
import numpy as np

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0

path, method = sys.argv[1], sys.argv[2]
if method == "project":
    from caffe_proto import load_caffemodel
else:
    from caffe_proto import caffe_pb2
base = status("VmRSS")
t0 = time.perf_counter()
if method == "project":
    net = load_caffemodel(path)
    arrays = [b for layer in net.layers for b in layer.blobs]
elif method == "floor":
    import os
    size = os.path.getsize(path)
    whole = np.empty(size, np.uint8)
    with open(path, "rb", buffering=0) as f:
        f.readinto(memoryview(whole))
    arrays = []
else:
    msg = caffe_pb2.PSPNetParameter()
    with open(path, "rb") as f:
        msg.ParseFromString(f.read())
    arrays = [np.array(b.data, dtype=np.float32) for layer in msg.layer for b in layer.blobs]
seconds = time.perf_counter() - t0
values = sum(a.size for a in arrays)
print(json.dumps({"seconds": seconds, "rss_growth": status("VmHWM") - base, "values": int(values)}))
"""


def child(path: Path, method: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), method], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    from caffe_proto import cli
    ap = cli.parser(None, __doc__)
    ap.add_argument("--preset", default="pspnet101_voc2012")
    ap.add_argument("--repeat", type=cli.positive_int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/psp_bench_parse"))
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"{args.preset}_random.caffemodel"
    if not path.exists():
        # in a child, so that this process stays small
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_caffemodel.py"), args.preset,
                        str(path), "--released-types"], check=True)
    size = path.stat().st_size
    with open(path, "rb") as f:                       # into the page cache for both
        while f.read(1 << 24):
            pass
    best = {}
    for _ in range(args.repeat):
        for method in ("project", "protobuf", "floor"):
            r = child(path, method)
            b = best.setdefault(method, r)
            b["seconds"] = min(b["seconds"], r["seconds"])
            b["rss_growth"] = min(b["rss_growth"], r["rss_growth"])
    if best["project"]["values"] != best["protobuf"]["values"]:
        raise SystemExit(f"value counts differ: {best}")
    print(f"file: {path} ({size / 2**20:.1f} MiB, {best['project']['values']:,} values), "
          f"best of {args.repeat}")
    print(f"{'method':10s} {'seconds':>8s} {'peak RSS growth':>16s} {'x file':>7s}")
    for method in ("project", "protobuf", "floor"):
        r = best[method]
        print(f"{method:10s} {r['seconds']:8.3f} {r['rss_growth'] / 2**20:12.1f} MiB "
              f"{r['rss_growth'] / size:7.2f}")
    speedup = best["protobuf"]["seconds"] / best["project"]["seconds"]
    growth = best["project"]["rss_growth"] / size
    print(f"speed-up project vs protobuf: {speedup:.1f}x (target >= 10x)")
    print(f"project peak RSS growth / file size: {growth:.2f} (target <= 1.2)")
    print(f"protobuf peak RSS growth / file size: {best['protobuf']['rss_growth'] / size:.2f}")
    print(f"project time / floor time: {best['project']['seconds'] / best['floor']['seconds']:.2f}; "
          f"protobuf time / floor time: {best['protobuf']['seconds'] / best['floor']['seconds']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
