"""Evaluation under load, short version of bench/soak_eval.py (robustness issue, item 4):
20 synthetic images, killed (SIGKILL) once right after a random image (the child waits there,
so the kill point is exact), resumed with --resume;
the final numbers equal an uninterrupted run and no temp file is left."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import soak_eval  # noqa: E402


def test_kill_and_resume_gives_the_same_numbers(tmp_path):
    res = soak_eval.soak(n=20, kills=1, seed=3, work=tmp_path, log=lambda *a: None)
    import random
    assert res["kills"] == sorted(random.Random(3).sample(range(1, 20), 1)), res["kills"]
    assert res["identical"], (res["reference"], res["resumed"])
    assert res["reference"]["images_scored"] == 20
    assert not res["leftover_temp_files"]
    for p in (tmp_path / "reference" / "labels").iterdir():
        assert (tmp_path / "resumed" / "labels" / p.name).read_bytes() == p.read_bytes()
    assert res["rss_at_10_mib"] > 0 and res["rss_at_end_mib"] >= res["rss_at_10_mib"]
