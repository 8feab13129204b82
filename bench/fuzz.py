"""Mutation fuzzing of the caffemodel reader and the prototxt reader.

    python bench/fuzz.py --inputs 1000000 [--seed 1] [--max-seconds 3600] [--out DIR]

Seeds are the oracle fixtures (tests/data/oracle/*/*/weights.caffemodel and
deploy.prototxt, tests/data/prototxt/*.prototxt). Each input is a seed
mutated 1 to 4 times (bit flips, byte sets, boundary values, truncations,
inserted/deleted/duplicated ranges, varint corruptions, splices of two
seeds; for text also token insertions) and fed to
`caffe_proto.parse_caffemodel` or `caffe_proto.parse_prototxt`. The only
acceptable outcomes are a `Net` or `CaffeFormatError`.

Reported: inputs tried, distinct failures (any other exception, grouped by
type and raising line; reproducers written to --out), timeouts (an input
taking over 1 s of wall time, again when re-run twice: a single slow run on
a shared machine is counted as a stall instead), hangs (no result after 10 s),
the largest traced allocation peak relative to the input's size (tracemalloc
on every --trace-every'th input) and the process's peak RSS. Exit status 1
when anything failed.

Two engines: the default is this file's own loop (deterministic for a seed,
no extra package, structure-aware mutations: most of them hit varints and
lengths); ``--engine atheris --target caffemodel|prototxt`` hands the same
target to atheris (libFuzzer, coverage-guided, the seeds as its starting
corpus, ``-timeout=1``), which stops at the first failure and prints its
own statistics.
"""
from __future__ import annotations

import json
import os
import random
import resource
import signal
import sys
import time
import traceback
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from caffe_proto import CaffeFormatError, parse_caffemodel, parse_prototxt  # noqa: E402

DATA = ROOT / "tests" / "data"
SLOW_SECONDS = 1.0
HANG_SECONDS = 10
ALLOC_SLACK = 1 << 20          # fixed allowance over the input size (Python objects, tables)

_INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x08, 0x0A, 0x12, 0x3A, 0x2A, 0x2D, 0xA2, 0x06]
_TOKENS = [b"{", b"}", b":", b'"', b"\n", b"#", b"layer {", b"layers {", b"input_dim: ",
           b"99999999999999999999", b"-1", b"nan", b"inf", b"1e999", b"0x", b"\\", b"'",
           b"interp_param {", b"input_param {", b"type: \"Input\"", b"type: \"BN\"",
           b"shape { dim: 1 }", b"dim: -5", b"\xff", b"\xc3", b"type: CONVOLUTION",
           b"convolution_param { pad: 1 }", b"kernel_size: 4294967296", b"<", b">", b"[", b"]"]


def seeds() -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(small caffemodels, large caffemodels, prototxts) from the test fixtures."""
    small, large, texts = [], [], []
    for path in sorted(DATA.glob("oracle/*/*/weights.caffemodel")):
        (large if path.stat().st_size > 100_000 else small).append(path.read_bytes())
    for path in sorted(DATA.glob("oracle/*/*/deploy.prototxt")) + sorted(DATA.glob("prototxt/*.prototxt")):
        texts.append(path.read_bytes())
    return small, large, texts


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mutate(data: bytes, rng: random.Random, pool: list[bytes], text: bool) -> bytes:
    """One input: `data` mutated 1 to 4 times."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        n = len(buf)
        at = rng.randrange(n) if n else 0
        op = rng.randrange(10 if text else 9)
        if op == 0 and n:                                     # bit flip
            buf[at] ^= 1 << rng.randrange(8)
        elif op == 1 and n:                                   # boundary byte
            buf[at] = rng.choice(_INTERESTING)
        elif op == 2:                                         # truncate
            del buf[at:]
        elif op == 3:                                         # insert random bytes
            buf[at:at] = rng.randbytes(rng.choice((1, 2, 4, 8, 16)))
        elif op == 4 and n:                                   # delete a range
            del buf[at:at + rng.choice((1, 2, 3, 4, 8, 64, 1024))]
        elif op == 5:                                         # varint corruption
            choice = rng.randrange(4)
            if choice == 0:
                buf[at:at] = b"\xff" * rng.randrange(1, 12) + bytes([rng.randrange(128)])
            elif choice == 1 and n:
                buf[at] |= 0x80
            elif choice == 2:
                buf[at:at] = _varint(rng.choice((0, 1, 127, 128, 2 ** 31, 2 ** 32, 2 ** 63, 2 ** 64 - 1)))
            elif n:
                buf[at] &= 0x7F
        elif op == 6 and n:                                   # duplicate a range
            span = bytes(buf[at:at + rng.choice((2, 8, 64, 512))])
            buf[rng.randrange(n + 1):0] = span
        elif op == 7:                                         # splice with another seed
            other = rng.choice(pool)
            cut = rng.randrange(len(other) + 1)
            buf = buf[:at] + other[cut:cut + rng.choice((16, 256, 4096, len(other)))]
        elif op == 8 and n:                                   # overwrite with a length-like value
            value = _varint(rng.choice((0, 1, 2, 4, 8, n, n + 1, 2 ** 28, 2 ** 31 - 1)))
            buf[at:at + len(value)] = value
        elif op == 9:                                         # text token
            buf[at:at] = rng.choice(_TOKENS)
    return bytes(buf)


class _Hang(BaseException):
    pass


def _alarm(signum, frame):
    raise _Hang()


def run_one(data: bytes, text: bool):
    """Parse one input; returns None (accepted or CaffeFormatError) or the exception."""
    try:
        if text:
            parse_prototxt(data, "fuzz.prototxt")
        else:
            parse_caffemodel(data, "fuzz.caffemodel")
    except CaffeFormatError:
        return None
    except _Hang:
        raise
    except BaseException as exc:     # noqa: BLE001 - a failure to report
        return exc
    return None


def _timed(data: bytes, text: bool) -> float:
    t0 = time.perf_counter()
    run_one(data, text)
    return time.perf_counter() - t0


def signature(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    frame = tb[-1] if tb else None
    where = f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"
    return f"{type(exc).__name__} at {where}"


def campaign(inputs: int, seed: int = 1, max_seconds: float | None = None,
             trace_every: int = 100, out: Path | None = None, progress: bool = False,
             hang_seconds: float = HANG_SECONDS) -> dict:
    """Run `inputs` mutated inputs (or stop at max_seconds); returns the report dict.

    The inputs are a function of `seed` alone; `max_seconds` (a bench's budget) makes the
    count depend on the machine, so tests leave it None and count instead."""
    small, large, texts = seeds()
    pool = small + large + texts
    rng = random.Random(seed)
    failures: dict[str, dict] = {}
    slow, hangs, tried, traced, stalls = [], 0, 0, 0, 0
    worst = {"caffemodel": [0.0, 0], "prototxt": [0.0, 0]}     # peak/size, peak-size
    kinds = {"caffemodel": 0, "prototxt": 0}
    old = signal.signal(signal.SIGALRM, _alarm)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=inputs, unit="input", mininterval=5, smoothing=0.05)
    start = time.perf_counter()
    try:
        for i in range(inputs):
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                break
            r = rng.random()
            text = r < 0.25
            base = rng.choice(texts) if text else (rng.choice(large) if r > 0.995 and large
                                                   else rng.choice(small))
            data = mutate(base, rng, pool, text)
            kinds["prototxt" if text else "caffemodel"] += 1
            trace = trace_every and i % trace_every == 0
            if trace:
                tracemalloc.start()
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, hang_seconds)
            try:
                exc = run_one(data, text)
            except _Hang:
                exc = TimeoutError(f"no result after {hang_seconds} s")
                hangs += 1
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            elapsed = time.perf_counter() - t0
            if trace:
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                traced += 1
                w = worst["prototxt" if text else "caffemodel"]
                w[0] = max(w[0], peak / max(len(data), 1))
                w[1] = max(w[1], peak - len(data))
                if not text and peak > len(data) + ALLOC_SLACK and exc is None:
                    exc = MemoryError(f"traced peak {peak} bytes for a {len(data)}-byte input")
            if elapsed > SLOW_SECONDS:
                # wall time on a shared machine includes being descheduled: time it again
                again = min(_timed(data, text) for _ in range(2))
                if again > SLOW_SECONDS:
                    slow.append({"input": i, "seconds": round(again, 3), "bytes": len(data)})
                    if out:
                        _save(out, f"slow-{i}", data, text)
                else:
                    stalls += 1
            if exc is not None:
                sig = signature(exc)
                entry = failures.setdefault(sig, {"count": 0, "first_input": i,
                                                  "message": str(exc)[:300]})
                entry["count"] += 1
                if entry["count"] == 1 and out:
                    entry["reproducer"] = str(_save(out, f"fail-{len(failures)}", data, text))
            tried += 1
            if bar is not None:
                bar.update(1)
    finally:
        signal.signal(signal.SIGALRM, old)
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    return {
        "inputs": tried, "caffemodel_inputs": kinds["caffemodel"], "prototxt_inputs": kinds["prototxt"],
        "seed": seed, "seconds": round(seconds, 1), "inputs_per_second": round(tried / max(seconds, 1e-9)),
        "distinct_failures": len(failures), "failures": failures,
        "timeouts_over_1s": len(slow), "slow_inputs": slow[:20], "hangs": hangs,
        "stalls_fast_on_rerun": stalls,
        "traced_inputs": traced,
        "caffemodel_max_traced_peak_minus_input_bytes": worst["caffemodel"][1],
        "caffemodel_max_traced_peak_over_input_size": round(worst["caffemodel"][0], 2),
        "prototxt_max_traced_peak_minus_input_bytes": worst["prototxt"][1],
        "prototxt_max_traced_peak_over_input_size": round(worst["prototxt"][0], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _save(out: Path, stem: str, data: bytes, text: bool) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.{'prototxt' if text else 'caffemodel'}"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def atheris_main(target: str, runs: int, seed: int, max_seconds: float | None) -> int:
    """Coverage-guided fuzzing of one reader by atheris (libFuzzer); returns its exit status."""
    import tempfile

    import atheris

    small, large, texts = seeds()
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{target}-"))
    for i, data in enumerate(texts if target == "prototxt" else small + large):
        (corpus / f"seed{i}").write_bytes(data)
    text = target == "prototxt"
    global CaffeFormatError, parse_caffemodel, parse_prototxt
    for name in [m for m in sys.modules if (m == "caffe_proto" or m.startswith("caffe_proto."))
                 and m != "caffe_proto.caffe_pb2"]:        # its descriptors cannot load twice
        del sys.modules[name]
    with atheris.instrument_imports(include=["caffe_proto"]):
        import caffe_proto
    CaffeFormatError = caffe_proto.CaffeFormatError
    parse_caffemodel, parse_prototxt = caffe_proto.parse_caffemodel, caffe_proto.parse_prototxt

    def one_input(data: bytes) -> None:
        exc = run_one(data, text)
        if exc is not None:
            raise exc

    print(f"corpus (kept, grows as libFuzzer finds new inputs): {corpus}", file=sys.stderr)
    flags = [sys.argv[0], f"-runs={runs}", f"-seed={seed}", "-timeout=1", "-rss_limit_mb=2048",
             f"-max_len={1 << 20}", str(corpus)]
    if max_seconds:
        flags.insert(1, f"-max_total_time={int(max_seconds)}")
    atheris.Setup(flags, one_input)
    atheris.Fuzz()
    return 0


def main(argv=None) -> int:
    from caffe_proto import cli
    ap = cli.parser(None, __doc__)
    ap.add_argument("--inputs", type=cli.positive_int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-seconds", type=cli.positive_float, default=None, help="stop early after this long")
    ap.add_argument("--trace-every", type=cli.nonnegative_int, default=100,
                    help="measure allocations with tracemalloc on every Nth input (0: never)")
    ap.add_argument("--out", type=Path, default=None, help="folder for reproducers")
    ap.add_argument("--json", type=Path, default=None, help="also write the report here")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--engine", choices=("own", "atheris"), default="own")
    ap.add_argument("--target", choices=("caffemodel", "prototxt"), default="caffemodel",
                    help="atheris engine only (the own loop does both)")
    args = ap.parse_args(argv)
    if args.engine == "atheris":
        return atheris_main(args.target, args.inputs, args.seed, args.max_seconds)
    report = campaign(args.inputs, args.seed, args.max_seconds, args.trace_every, args.out,
                      progress=not args.no_progress)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 1 if report["distinct_failures"] or report["timeouts_over_1s"] else 0


if __name__ == "__main__":
    sys.exit(main())
