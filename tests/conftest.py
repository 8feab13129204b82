import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent   # the project is imported as installed
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

DATA = TESTS / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA
