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
    path.write_text(
        "def a(idata):\n    return 1\n\ndef b(data):\n    return 2\n\ndef _h():\n    pass\n"
    )
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


def test_the_data_fingerprint_sees_column_names_order_dtypes_and_the_index():
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]})
    key = data_fingerprint(frame)
    # The same values under other names: a renamed or a swapped pair of columns.
    assert data_fingerprint(frame.rename(columns={"a": "c"})) != key
    assert data_fingerprint(frame.rename(columns={"a": "b", "b": "a"})) != key
    # The same columns in another order.
    assert data_fingerprint(frame[["b", "a"]]) != key
    # The same numbers as another dtype (1 and 1.0 hash alike in pandas).
    assert data_fingerprint(frame.astype({"a": "float64"})) != key
    assert data_fingerprint(frame.astype({"a": "category"})) != key
    # The same rows under another index.
    assert data_fingerprint(frame.set_axis([10, 11, 12])) != key
    # ... and nothing else moves it.
    assert data_fingerprint(frame.copy()) == key


# The details mutation testing found unguarded (docs/testing.md) -------------------------------
def test_digest_is_sixteen_hex_digits_independent_of_key_order_and_stable():
    from mlm.fingerprint import digest

    key = digest({"b": 1, "a": [2, "x"]})
    # Pinned: a change here would make every cached result of every project stale.
    assert key == "49ce6d8656c96622"
    assert digest({"a": [2, "x"], "b": 1}) == key  # the order of a dict's keys is no input
    # Values JSON cannot hold (a Path) are hashed by their text, not refused.
    assert digest({"p": Path("data/x.csv")}) == digest({"p": "data/x.csv"})


def test_file_digest_is_the_sha256_of_the_bytes(tmp_path: Path):
    import hashlib

    from mlm.fingerprint import file_digest

    path = tmp_path / "big.bin"
    payload = bytes(range(256)) * 9000  # more than one read block
    path.write_bytes(payload)
    assert file_digest(path) == hashlib.sha256(payload).hexdigest()[:16]


def test_the_normalized_tree_has_no_field_names_positions_or_docstrings():
    import ast

    from mlm.fingerprint import normalized

    text = normalized(ast.parse('def f(x):\n    """doc"""\n    return x + 1\n'))
    assert text.startswith("Module([FunctionDef('f'")
    assert "lineno" not in text and "body=" not in text and "doc" not in text


def test_unreadable_and_invalid_files_are_named_with_the_line(tmp_path: Path):
    import pytest

    from mlm.errors import MlmError
    from mlm.fingerprint import parse

    bad = tmp_path / "model.py"
    bad.write_text("x = 1\ndef f(:\n")
    with pytest.raises(MlmError, match=r"model\.py, line 2: syntax error: "):
        parse(bad)
    with pytest.raises(MlmError, match=r"missing\.py: cannot be read: No such file"):
        parse(tmp_path / "missing.py")


def test_a_package_at_the_project_root_is_not_a_module_of_the_project(tmp_path: Path):
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "model.py").write_text("import priors\n")
    (tmp_path / "priors.py").write_text("X = 1\n")
    assert set(code_fingerprints(tmp_path / "model.py", tmp_path)) == {"model.py", "priors.py"}


def test_the_shared_context_of_graphics_py_has_its_own_fingerprint(tmp_path: Path):
    path = tmp_path / "graphics.py"
    path.write_text("SIZE = 3\n\n\ndef a(idata):\n    return SIZE\n")
    (figure,), context = figure_functions(path)
    assert (figure.name, figure.line, figure.params) == ("a", 4, ("idata",))
    path.write_text(path.read_text().replace("SIZE = 3", "SIZE = 4"))
    (same,), changed = figure_functions(path)
    assert changed != context and same.fingerprint == figure.fingerprint


def test_a_frame_that_cannot_be_hashed_is_refused_with_the_reason():
    import pytest

    from mlm.errors import MlmError

    with pytest.raises(MlmError, match="load\\(\\) returned a DataFrame that cannot be hashed"):
        data_fingerprint(pd.DataFrame({"y": [[1], [2]]}))
    assert len(data_fingerprint(pd.DataFrame({"y": [1]}))) == 16


# Properties (hypothesis): what may and may not move a fingerprint ---------------------------
import ast  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mlm.fingerprint import digest, normalized  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORPUS = [
    REPO / "example_project" / name for name in ("data.py", "model.py", "fit.py", "graphics.py")
] + [REPO / "project_template" / "{{cookiecutter.project_slug}}" / "model.py"]
SOURCES = [p.read_text() for p in CORPUS]


def key_of(source: str) -> str:
    return digest(normalized(ast.parse(source)))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SOURCES), st.data())
def test_comments_blank_lines_and_reformatting_keep_the_key(source, data):
    lines = source.splitlines()
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(lines)))
        indent = data.draw(st.sampled_from(["", "    ", "        "]))
        text = data.draw(st.text("abc xyz#!?", max_size=20))
        lines.insert(at, data.draw(st.sampled_from(["", f"{indent}# {text}"])))
    commented = "\n".join(lines)
    try:
        ast.parse(commented)
    except SyntaxError:  # a comment line inside a bracketed continuation is still valid;
        return  # anything else hypothesis made is not a program, so not our case
    assert key_of(commented) == key_of(source)
    assert key_of(ast.unparse(ast.parse(source))) == key_of(source)  # a full reformat


def mutations(tree: ast.AST):
    """Each kind of semantic edit, as (kind, node, how to apply it)."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            yield "literal", node, lambda n: setattr(n, "value", n.value + 1)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
            yield "literal", node, lambda n: setattr(n, "value", n.value + "x")
        elif isinstance(node, ast.Name):
            yield "name", node, lambda n: setattr(n, "id", n.id + "_")
        elif isinstance(node, ast.BinOp):
            yield (
                "operator",
                node,
                lambda n: setattr(
                    n, "op", ast.Sub() if not isinstance(n.op, ast.Sub) else ast.Add()
                ),
            )
        elif isinstance(node, ast.Import | ast.ImportFrom):
            yield "import", node, lambda n: setattr(n.names[0], "name", n.names[0].name + "_")


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(SOURCES), st.data())
def test_any_literal_name_operator_or_import_change_moves_the_key(source, data):
    tree = ast.parse(source)
    # Docstrings are not part of the fingerprint by design; leave them out of the mutations.
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    options = [m for m in mutations(tree) if id(m[1]) not in docstrings]
    kind, node, apply = data.draw(st.sampled_from(options))
    before = key_of(source)
    apply(node)
    assert key_of(ast.unparse(tree)) != before, kind


def test_every_kind_of_change_is_exercised():
    kinds = {m[0] for source in SOURCES for m in mutations(ast.parse(source))}
    assert kinds == {"literal", "name", "operator", "import"}
