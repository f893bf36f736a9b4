"""Code and data fingerprints: what counts as a change and what does not."""

from pathlib import Path

import pandas as pd

from mlm.fingerprint import code_fingerprints, data_fingerprint, figure_functions

MODEL = '''
import pymc as pm

def build(data):
    """Build it."""
    with pm.Model() as model:
        pm.Normal("x", 0, 1)
    return model
'''

REFORMATTED = '''
import pymc as pm


# A comment the user added.
def build(data):
    """A rewritten docstring."""
    with pm.Model() as model:
        pm.Normal(
            "x",
            0,
            1,
        )  # trailing comment
    return model
'''


def test_comments_docstrings_and_formatting_do_not_change_the_fingerprint(tmp_path: Path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    before = code_fingerprints(path, tmp_path)
    path.write_text(REFORMATTED)
    assert code_fingerprints(path, tmp_path) == before


def test_a_changed_value_changes_the_fingerprint(tmp_path: Path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    before = code_fingerprints(path, tmp_path)
    path.write_text(MODEL.replace("0, 1", "0, 2"))
    assert code_fingerprints(path, tmp_path) != before


def test_local_imports_are_followed_transitively(tmp_path: Path):
    (tmp_path / "model.py").write_text("import priors\n")
    (tmp_path / "priors.py").write_text("from lib.scales import SCALE\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "__init__.py").write_text("")
    (tmp_path / "lib" / "scales.py").write_text("SCALE = 1\n")
    found = code_fingerprints(tmp_path / "model.py", tmp_path)
    assert set(found) == {"model.py", "priors.py", "lib/__init__.py", "lib/scales.py"}


def test_each_figure_function_has_its_own_fingerprint(tmp_path: Path):
    path = tmp_path / "graphics.py"
    path.write_text("def a(idata):\n    return 1\n\ndef b(data):\n    return 2\n\ndef _h():\n    pass\n")
    first, context = figure_functions(path)
    path.write_text(path.read_text().replace("return 1", "return 10"))
    second, context_after = figure_functions(path)
    assert [f.name for f in first] == ["a", "b"]
    assert first[0].fingerprint != second[0].fingerprint
    assert first[1].fingerprint == second[1].fingerprint
    assert context == context_after
    assert second[0].params == ("idata",)


def test_data_fingerprint_is_content_based():
    frame = pd.DataFrame({"g": ["a", "b"], "y": [1.0, 2.0]})
    same = pd.DataFrame({"g": ["a", "b"], "y": [1.0, 2.0]})
    changed = pd.DataFrame({"g": ["a", "b"], "y": [1.0, 2.5]})
    assert data_fingerprint(frame) == data_fingerprint(same)
    assert data_fingerprint(frame) != data_fingerprint(changed)
    assert data_fingerprint(frame) != data_fingerprint(frame.astype({"y": "float32"}))
