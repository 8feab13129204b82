import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent   # the project is imported as installed
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

DATA = TESTS / "data"

try:        # no test may race a clock: Hypothesis' per-example deadline and its "too slow"
    from hypothesis import HealthCheck, settings   # health check are both wall-clock limits

    settings.register_profile("no_clock", deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("no_clock")
except ImportError:
    pass


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA
