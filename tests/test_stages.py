"""Unit tests of the slots and the stages' interface, on small hand-written projects.

Nothing here samples: the stages are asked for inputs, keys, status and plans, and the
data and model stages run (load() and build() are cheap).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlm.errors import MlmError, UserCodeError
from mlm.layout import Layout
from mlm.slots import SLOTS, SlotLoader
from mlm.stages import Session, pipeline
from mlm.stages.base import explain, parse_stage

DATA = """import pandas as pd


def load(project):
    return pd.read_csv(project.path("data", "y.csv"))
"""
MODEL = """import pymc as pm


def build(data):
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 1)
        pm.Normal("y", mu, 1, observed=data["y"].to_numpy())
    return model
"""
FIT = """def sample(model, project):
    raise RuntimeError("these tests never sample")
"""
GRAPHICS = """import matplotlib.pyplot as plt


def histogram(data):
    fig, ax = plt.subplots()
    ax.hist(data["y"])
    return fig


def posterior(idata):
    return plt.figure()
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A project written by hand: five observations, a one-parameter model."""
    root = tmp_path / "tiny"
    (root / "data").mkdir(parents=True)
    (root / "mlm.toml").write_text('[project]\nname = "tiny"\nseed = 3\n')
    (root / "data" / "y.csv").write_text("y\n0.1\n-0.3\n1.2\n0.4\n0.0\n")
    for name, text in [("data", DATA), ("model", MODEL), ("fit", FIT), ("graphics", GRAPHICS)]:
        (root / f"{name}.py").write_text(text)
    return root


# slots ------------------------------------------------------------------------------------
def test_the_slot_table_names_each_file_its_function_and_what_it_may_ask_for():
    assert [s.file for s in SLOTS.values()] == ["data.py", "model.py", "fit.py", "graphics.py"]
    assert [s.function for s in SLOTS.values()] == ["load", "build", "sample", None]
    assert SLOTS["model"].params == ("data", "project")


def test_a_slot_function_gets_each_parameter_it_names_and_nothing_else(tiny: Path):
    loader = SlotLoader(tiny)
    asked = []
    providers = {"data": lambda: asked.append("data") or "D", "project": lambda: asked.append("p")}
    fn = loader.function("model")
    with pytest.raises(UserCodeError, match=r"model\.py, in build"):
        loader.call("model", fn, providers)  # "D" is no DataFrame: the user's own error
    assert asked == ["data"]  # build(data) never asked for the project


def test_an_unknown_parameter_is_refused_before_anything_runs(tiny: Path):
    (tiny / "model.py").write_text("def build(data, trace):\n    return None\n")
    with pytest.raises(
        MlmError, match=r"(?s)build\(\) asks for parameter 'trace'.*available here: data, project"
    ):
        SlotLoader(tiny).function("model")


def test_a_missing_slot_file_says_what_it_should_define(tiny: Path):
    (tiny / "fit.py").unlink()
    with pytest.raises(MlmError, match=r"fit.py not found .* sample\(model\)"):
        SlotLoader(tiny).path("fit")


def test_two_projects_with_a_helper_of_the_same_name_never_see_each_other(tmp_path: Path):
    values = {}
    for name, value in [("a", 1), ("b", 2)]:
        root = tmp_path / name
        root.mkdir()
        (root / "helpers.py").write_text(f"VALUE = {value}\n")
        (root / "data.py").write_text("import helpers\n\n\ndef load():\n    return helpers.VALUE\n")
        loader = SlotLoader(root)
        values[name] = loader.call("data", loader.function("data"), {})
    assert values == {"a": 1, "b": 2}


# stages -----------------------------------------------------------------------------------
def test_parse_stage_knows_every_stage_and_one_figure():
    assert parse_stage("compare") == ("compare", None)
    assert parse_stage("graphics:forest") == ("graphics", "forest")
    with pytest.raises(MlmError, match=r"unknown stage 'fitt'.*compare"):
        parse_stage("fitt")
    with pytest.raises(MlmError):
        parse_stage("fit:forest")


def test_explain_names_each_changed_input():
    assert explain({"a": 1, "b": 2}, None) == "never run"
    assert explain({"a": 1}, {"a": 1}) == "up to date"
    assert explain({"a": 1, "b": 2}, {"a": 0}) == "a changed, b changed"


def test_a_new_project_is_missing_everywhere_and_the_plan_lists_it_all(tiny: Path):
    session = Session(Layout(tiny))
    rows = pipeline.status(session)
    assert [(r.stage, r.state) for r in rows] == [
        ("data", "missing"),
        ("model", "missing"),
        ("fit", "missing"),
        ("graphics:histogram", "missing"),
        ("graphics:posterior", "missing"),
    ]
    planned = [r.stage for r in pipeline.plan(Session(Layout(tiny)), "graphics:histogram")]
    assert planned == ["data", "graphics:histogram"]  # a figure of the data needs no fit


def test_the_data_key_is_read_from_the_record_without_loading_again(tiny: Path):
    Session(Layout(tiny)).data().run()
    (tiny / "data.py").write_text(DATA.replace("return", "raise ValueError\n    return"))
    # data.py changed: its key must come from a new load (which now fails) ...
    with pytest.raises(UserCodeError):
        Session(Layout(tiny)).data().key()
    (tiny / "data.py").write_text(DATA)
    # ... and with data.py and data/ as recorded, the record answers without calling load().
    session = Session(Layout(tiny))
    key = session.data().key()
    assert session.data().loaded() is None and len(key) == 16


def test_the_model_stage_records_what_it_built(tiny: Path):
    session = Session(Layout(tiny))
    status = session.model("model").run()
    assert status.ran and status.fresh
    store = session.layout.store
    record = store.read(store.paths.model_record("model"))
    assert record.key == status.key
    assert record.get("free_variables") == ["mu"] and record.get("observed_variables") == ["y"]
    assert record.inputs["data"] == session.data().key()
    assert Session(Layout(tiny)).model("model").status().fresh


def test_stage_objects_are_made_once_per_session_and_anew_for_the_next(tiny: Path):
    session = Session(Layout(tiny))
    assert session.fit("model") is session.fit("model")
    assert session.fit("model") is not Session(Layout(tiny)).fit("model")


def test_slot_functions_receive_the_layout_as_project(tiny: Path):
    session = Session(Layout(tiny))
    project = session.providers("data", None)["project"]()
    assert isinstance(project, Layout) and project.seed == 3


# keys: what moves them and what does not -----------------------------------------------------
def test_fit_py_is_keyed_by_its_syntax_and_the_project_modules_it_imports(tiny: Path):
    (tiny / "helpers.py").write_text("DRAWS = 100\n")
    (tiny / "fit.py").write_text("import helpers\n\n\n" + FIT)

    def fit_key() -> tuple[str, dict]:
        fit = Session(Layout(tiny)).fit("model")
        return fit.key(), fit.inputs()

    key, inputs = fit_key()
    assert {"fit.py", "helpers.py"} <= set(inputs)
    # A comment, a docstring and a reformat of fit.py are not changes: no resampling.
    (tiny / "fit.py").write_text(
        '"""How this project samples."""\n\nimport helpers  # the draws\n\n\n'
        "# sample() never runs in these tests\n"
        + FIT.replace("(model, project)", "( model,project )")
    )
    assert fit_key()[0] == key
    # An edit of a module fit.py imports is one.
    (tiny / "helpers.py").write_text("DRAWS = 200\n")
    changed, changed_inputs = fit_key()
    assert changed != key and changed_inputs["helpers.py"] != inputs["helpers.py"]
    # So is an edit of fit.py's own code.
    (tiny / "helpers.py").write_text("DRAWS = 100\n")
    assert fit_key()[0] == key
    (tiny / "fit.py").write_text("import helpers\n\n\n" + FIT.replace("never", "not"))
    assert fit_key()[0] != key


def test_renaming_a_data_column_changes_the_data_key_even_with_the_same_values(tiny: Path):
    session = Session(Layout(tiny))
    key = session.data().run().key
    # The values stay; only the column's name changes (z instead of y).
    (tiny / "data" / "y.csv").write_text(
        (tiny / "data" / "y.csv").read_text().replace("y\n", "z\n", 1)
    )
    assert Session(Layout(tiny)).data().key() != key
