"""A short run of the fuzzing campaign (bench/fuzz.py): a fixed number of mutated
caffemodels and prototxts (the same ones for a seed, on any machine), each either read or
refused with CaffeFormatError, none allocating more than its size plus a fixed allowance.
Nothing here is timed: how fast inputs are read is bench/fuzz.py's report, and the only
clock is a per-input watchdog that catches hangs."""
import pytest

from bench.fuzz import campaign, mutate, run_one, seeds


@pytest.mark.slow
def test_fuzz_smoke():
    report = campaign(3000, seed=7, trace_every=50, hang_seconds=120)
    assert report["inputs"] == 3000, report
    assert report["caffemodel_inputs"] > 1500 and report["prototxt_inputs"] > 500, report
    assert report["traced_inputs"] == 60, report
    assert report["distinct_failures"] == 0, report["failures"]     # includes allocation peaks
    assert report["hangs"] == 0, report


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
