"""A short bounded run of the fuzzing campaign (bench/fuzz.py): a few thousand mutated
caffemodels and prototxts, each either read or refused with CaffeFormatError, none slow,
none allocating more than its size (plus a fixed allowance)."""
import time

import pytest

from bench.fuzz import campaign, mutate, run_one, seeds


@pytest.mark.slow
def test_fuzz_smoke():
    start = time.perf_counter()
    report = campaign(3000, seed=7, max_seconds=20, trace_every=50)
    assert report["inputs"] >= 1000, report
    assert report["caffemodel_inputs"] > 0 and report["prototxt_inputs"] > 0
    assert report["distinct_failures"] == 0, report["failures"]
    assert report["timeouts_over_1s"] == 0 and report["hangs"] == 0, report["slow_inputs"]
    assert time.perf_counter() - start < 30


def test_the_fuzzer_can_see_a_failure():
    """The harness reports exceptions other than CaffeFormatError (else it could not fail)."""
    class Odd(bytes):
        def __len__(self):
            raise RuntimeError("boom")

    assert isinstance(run_one(Odd(b"\n\x00"), text=False), RuntimeError)
    assert run_one(b"\xff", text=False) is None                  # CaffeFormatError: accepted
    small, _, texts = seeds()
    import random
    rng = random.Random(0)
    assert any(mutate(small[0], rng, small, False) != small[0] for _ in range(5))
