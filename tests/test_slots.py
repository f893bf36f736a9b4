"""Slot loading, exactly: module names, variant files, import errors and the messages for a
missing or misdeclared function (found unguarded by mutation testing; docs/testing.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlm.errors import MlmError, UserCodeError
from mlm.fingerprint import digest
from mlm.slots import SlotLoader


def project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return root


def test_each_project_file_is_its_own_module_named_after_the_root(tmp_path: Path):
    a, b = project(tmp_path / "a"), project(tmp_path / "b")
    (a / "data.py").write_text("def load():\n    return 1\n")
    (b / "data.py").write_text("def load():\n    return 2\n")
    first, second = SlotLoader(a), SlotLoader(b)
    module = first.module("data")
    assert module.__name__ == f"mlm_project_{digest(str(a))}_data"
    assert module.__name__ not in sys.modules  # registered only while it runs
    assert first.module("data") is module  # loaded once per loader
    assert second.module("data").__name__ != module.__name__
    assert (
        first.call("data", first.function("data"), {}),
        second.call("data", second.function("data"), {}),
    ) == (1, 2)


def test_a_variant_file_is_loaded_from_its_own_path(tmp_path: Path):
    root = project(tmp_path / "p")
    (root / "model.py").write_text("def build():\n    return 'model.py'\n")
    (root / "models").mkdir()
    (root / "models" / "wide.py").write_text("def build():\n    return 'wide'\n")
    loader = SlotLoader(root)
    wide = loader.function("model", filename="models/wide.py")
    assert loader.call("model", wide, {}) == "wide"
    assert loader.call("model", loader.function("model"), {}) == "model.py"
    name = loader.module("model", "models/wide.py").__name__
    assert name == f"mlm_project_{digest(str(root))}_models_wide"


def test_an_error_while_importing_a_slot_file_is_the_users_own(tmp_path: Path):
    root = project(tmp_path / "p")
    (root / "fit.py").write_text("import math\n\nSCALE = 1 / 0\n")
    with pytest.raises(UserCodeError) as caught:
        SlotLoader(root).function("fit")
    text = str(caught.value)
    assert text.startswith("fit.py (while importing it) raised ZeroDivisionError: division by zero")
    assert "fit.py" in text and "line 3" in text


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("def other(model):\n    pass\n", "has no function"),
        ("sample = 3\n", "defines a non-function"),
    ],
)
def test_a_missing_or_misdeclared_slot_function_is_named(tmp_path: Path, source, what):
    root = project(tmp_path / "p")
    (root / "fit.py").write_text(source)
    with pytest.raises(MlmError) as caught:
        SlotLoader(root).function("fit")
    assert str(caught.value).startswith(f"fit.py {what} sample(); mlm expects fit.py to define ")


def test_an_unknown_parameter_names_the_variant_file(tmp_path: Path):
    root = project(tmp_path / "p")
    (root / "models").mkdir()
    (root / "models" / "wide.py").write_text("def build(*extra, trace):\n    return None\n")
    with pytest.raises(MlmError, match=r"^models/wide\.py: build\(\) asks for parameter 'trace'"):
        SlotLoader(root).function("model", filename="models/wide.py")


def test_positional_only_parameters_are_refused(tmp_path: Path):
    root = project(tmp_path / "p")
    (root / "model.py").write_text("def build(data, /):\n    return None\n")
    with pytest.raises(
        MlmError, match=r"^build\(\): positional-only parameters cannot be injected by name$"
    ):
        SlotLoader(root).function("model")


def test_a_parameter_with_a_default_and_no_provider_keeps_its_default(tmp_path: Path):
    root = project(tmp_path / "p")
    (root / "data.py").write_text("def load(project, n=3, *args, **kw):\n    return (project, n)\n")
    loader = SlotLoader(root)
    fn = loader.function("data")
    assert loader.call("data", fn, {"project": lambda: "P", "args": lambda: 1}) == ("P", 3)


def test_a_slot_file_can_define_a_dataclass(tmp_path: Path):
    """dataclasses look their module up in sys.modules while the file runs."""
    root = project(tmp_path / "p")
    (root / "data.py").write_text(
        "from dataclasses import dataclass\n\n\n@dataclass\nclass Row:\n    y: float\n\n\n"
        "def load():\n    return Row(1.0)\n"
    )
    loader = SlotLoader(root)
    assert loader.call("data", loader.function("data"), {}).y == 1.0
