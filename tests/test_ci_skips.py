"""Under CI (CI=true, as .ci/run sets it) nothing is skipped silently: a missing tool, file
or package fails the test and names what is missing; on a developer's machine it skips."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")

TESTS = """
import pytest

from conftest import needs_file, needs_module, needs_tool


def test_tool():
    needs_tool("no-such-tool-mlm")


def test_file(tmp_path):
    needs_file(tmp_path / "run1.csv")


def test_module():
    needs_module("no_such_module_mlm")


@pytest.mark.skipif(True, reason="a marker's own reason")
def test_marker():
    pass


def test_importorskip():
    pytest.importorskip("no_such_module_mlm")


@pytest.mark.xfail(reason="expected to fail", strict=True)
def test_expected_failure():
    assert False


def test_present(tmp_path):
    assert needs_tool("sh").endswith("sh")
    (tmp_path / "f").write_text("x")
    assert needs_file(tmp_path / "f").read_text() == "x"
    assert needs_module("json").dumps(1) == "1"
"""


def run(pytester: pytest.Pytester, monkeypatch, ci: str | None) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_needs=TESTS)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    return pytester.runpytest_subprocess("-rA", "-p", "no:cacheprovider")


def test_under_ci_every_missing_prerequisite_fails_and_names_itself(pytester, monkeypatch):
    result = run(pytester, monkeypatch, "true")
    # A skipif marker acts at set-up, so it shows as an error: a failure all the same.
    result.assert_outcomes(failed=4, errors=1, passed=1, xfailed=1)
    out = result.stdout.str()
    for what in (
        "missing in CI: the program 'no-such-tool-mlm' is not on PATH",
        "missing in CI: the file ",
        "missing in CI: the Python package 'no_such_module_mlm'",
        "skipped under CI, which must run every test: a marker's own reason",
        "skipped under CI, which must run every test: could not import 'no_such_module_mlm'",
    ):
        assert what in out, what


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_outside_ci_the_same_tests_skip_and_say_why(pytester, monkeypatch, ci):
    result = run(pytester, monkeypatch, ci)
    result.assert_outcomes(skipped=5, passed=1, xfailed=1)
    assert "missing: the program 'no-such-tool-mlm' is not on PATH" in result.stdout.str()


GOLDEN_TEST = """
import os
from pathlib import Path


def test_matches_its_golden_file(tmp_path):
    golden = Path("golden.txt")
    if os.environ.get("MLM_UPDATE_GOLDEN"):
        golden.write_text("whatever this run made")
    assert golden.read_text() == "whatever this run made"


def test_unrelated():
    pass
"""


def test_a_golden_test_cannot_pass_by_writing_its_own_expectation(pytester, monkeypatch):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_golden=GOLDEN_TEST)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("MLM_UPDATE_GOLDEN", "1")
    updating = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    updating.assert_outcomes(failed=1, passed=1)
    assert "this test rewrote its golden file from its own output" in updating.stdout.str()
    # The file is written; the next run, without the variable, is the real comparison.
    monkeypatch.delenv("MLM_UPDATE_GOLDEN")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
