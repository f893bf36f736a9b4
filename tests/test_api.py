"""`mlm.Project`: the same pipeline and cache in a notebook, and project isolation."""

from __future__ import annotations

import sys

import pymc as pm
import xarray as xr

from mlm import Project

from conftest import render


def test_project_api_gives_data_model_idata_and_status(fitted_dir):
    project = Project(fitted_dir / "data")  # walks up to mlm.toml
    assert project.root == fitted_dir.resolve()
    assert len(project.data) == 120
    assert isinstance(project.model, pm.Model)
    idata = project.idata
    assert isinstance(idata, xr.DataTree)
    assert {"posterior", "posterior_predictive", "observed_data"} <= set(idata.children)
    assert "log_likelihood" not in idata.children  # compare computes it, in chunks of rows
    assert all(row.fresh for row in project.status())


def test_two_projects_in_one_process_stay_separate(tmp_path):
    first = render(tmp_path, "first")
    second = render(tmp_path, "second")
    for root, scale in ((first, 5), (second, 50)):
        (root / "priors.py").write_text(f"SLOPE_SD = {scale}\n")
        model = root / "model.py"
        model.write_text(
            model.read_text()
            .replace("import pymc as pm\n", "import pymc as pm\n\nimport priors\n")
            .replace("sigma=5)", "sigma=priors.SLOPE_SD)")
        )
    a, b = Project(first), Project(second)
    model_a, model_b = a.model, b.model
    # Each model's prior on the slope has the sd its own priors.py says.
    slope_sd = [
        float(pm.draw(m["slope"], draws=4000, random_seed=1).std()) for m in (model_a, model_b)
    ]
    assert 4 < slope_sd[0] < 6 and 40 < slope_sd[1] < 60
    # Loading one project never leaves its modules where the other (or the user) would see them.
    assert "priors" not in sys.modules
    assert not [name for name in sys.modules if name.startswith("mlm_project_")]
    # And again, in the other order, with the modules already loaded once.
    assert 40 < float(pm.draw(b.model["slope"], draws=4000, random_seed=2).std()) < 60
    assert 4 < float(pm.draw(a.model["slope"], draws=4000, random_seed=2).std()) < 6


def test_running_a_slot_never_imports_lazily_loaded_modules(fitted_dir, tmp_path):
    import importlib.util

    (tmp_path / "lazy_probe.py").write_text("raise RuntimeError('imported')\n")
    spec = importlib.util.spec_from_file_location("lazy_probe", tmp_path / "lazy_probe.py")
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # registers it, loads nothing yet
    sys.modules["lazy_probe"] = module
    try:
        assert len(Project(fitted_dir).data) == 120  # runs load() inside the slot machinery
        assert isinstance(sys.modules["lazy_probe"], importlib.util._LazyModule)
    finally:
        del sys.modules["lazy_probe"]
