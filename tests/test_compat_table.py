"""The versions the project declares are the ones tools/compat.py measured: README's "Tested
with" table is tools/compat.json rendered, and every floor pyproject.toml declares (torch,
requires-python) and every Python classifier has a row there that passed."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("tools_compat", ROOT / "tools" / "compat.py")
tools_compat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tools_compat)

try:
    import tomllib
except ModuleNotFoundError:      # Python 3.10: pytest's own TOML reader, the same API
    import tomli as tomllib

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PASSED = [r for r in tools_compat.load() if r["outcome"] == "passed"]


def _release(text: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:3])


def test_readme_table_is_the_record_rendered():
    text = (ROOT / "README.md").read_text()
    block = text.split(tools_compat.BEGIN, 1)[1].split(tools_compat.END, 1)[0]
    assert block.strip() == tools_compat.render().strip(), \
        "README 'Tested with' is stale: python tools/compat.py table --write"


def test_the_torch_floor_has_a_passing_row():
    (spec,) = [d for d in PROJECT["dependencies"] if re.match(r"torch\b", d)]
    floor = _release(re.fullmatch(r"torch>=([\d.]+)", spec.replace(" ", "")).group(1))
    rows = [r for r in PASSED if _release(r["installed"]["torch"]) == floor]
    assert rows, f"no passing row for the declared floor {spec}"
    # nothing older passed: the floor is the oldest that did
    assert all(_release(r["installed"]["torch"]) >= floor for r in PASSED)


def test_every_declared_python_has_a_passing_row():
    floor = _release(PROJECT["requires-python"].removeprefix(">="))
    tested = {_release(r["installed"]["python"])[:2] for r in PASSED}
    assert floor[:2] in tested, f"requires-python {PROJECT['requires-python']}: no passing row"
    classified = {_release(c.rsplit("::", 1)[1]) for c in PROJECT["classifiers"]
                  if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert classified == tested, (classified, tested)


def test_junit_outcome_counts_and_names_failures(tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="tests.test_a" name="test_ok"/>'
        '<testcase classname="tests.test_a" name="test_bad"><failure message="x"/></testcase>'
        '<testcase classname="tests.test_b" name="test_err"><error message="y"/></testcase>'
        '<testcase classname="tests.test_b" name="test_skip"><skipped message="z"/></testcase>'
        '</testsuite></testsuites>')
    out = tools_compat.junit_outcome(xml)
    assert out == {"passed": 1, "failed": 1, "errors": 1, "skipped": 1,
                   "failing": ["tests.test_a::test_bad", "tests.test_b::test_err"]}


def test_readme_test_command_is_found():
    assert tools_compat.readme_test_command("x\n```bash\npython -m pytest -q tests\n```\n") == \
        ["python", "-m", "pytest", "-q", "tests"]
