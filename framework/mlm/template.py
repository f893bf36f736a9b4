"""`mlm new` and `mlm generate model --formula`: render project_template/ with cookiecutter
(the user's templates/new/ files laid over it) into a new project folder, and write the
files a formula gives."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from mlm.codegen.templates import template_dir, user_templates
from mlm.errors import MlmError

# Letters, digits, '-', '_' and '.', starting with a letter or digit: a name that is a
# valid folder on every system and safe to type in a shell.
VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


# In the user's templates folder, the files that replace (or add to) a new project's.
NEW_PROJECT_FOLDER = "new"


# The files `--formula` writes over the rendered template (data.py too with `--data`).
FORMULA_FILES = ("model.py", "graphics.py", "tests/test_model.py")


def project_overrides(formula: bool = False, data: bool = False) -> tuple[Path, list[str]]:
    """The user's folder of files for `mlm new` ($XDG_CONFIG_HOME/mlm/templates/new/), and
    the project paths of the files in it that the new project keeps (posix, relative):
    with `formula` (and `data`), not those the formula writes."""
    folder = user_templates() / NEW_PROJECT_FOLDER
    if not folder.is_dir():
        return folder, []
    replaced = FORMULA_FILES + ("data.py",) * data if formula else ()
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return folder, [f for f in files if f not in replaced]


def new_project(name: str, parent: Path) -> Path:
    """Render a new, runnable project named `name` inside `parent`; returns its path.

    Each file in the user's templates/new/ folder (project_overrides()) replaces the file
    of the same path in mlm's template, or is added, and is rendered as mlm's own are.
    """
    if not VALID_NAME.match(name) or name.endswith("."):
        raise MlmError(
            f"{name!r} is not a valid project name: use letters, digits, '-', '_' or '.', "
            "starting with a letter or digit (at most 100 characters)"
        )
    target = parent / name
    if target.exists() and not target.is_dir():
        raise MlmError(f"{target} exists and is a file; choose another name")
    if target.is_dir() and any(target.iterdir()):
        raise MlmError(f"{target} exists and is not empty; mlm new never overwrites files")
    if not parent.is_dir():
        raise MlmError(f"{parent} is not a folder")

    import tempfile

    from cookiecutter.main import cookiecutter

    from mlm.requirement import installed_source

    source = installed_source()
    existed = target.is_dir()
    overrides, files = project_overrides()
    with tempfile.TemporaryDirectory(prefix="mlm-new-") as scratch:
        template = _with_overrides(Path(scratch), overrides, files) if files else template_dir()
        try:
            created = cookiecutter(
                str(template),
                no_input=True,
                extra_context={
                    "project_name": name,
                    "project_slug": name,
                    "mlm_requirement": source.requirement or "",
                    "mlm_origin": source.origin,
                },
                output_dir=str(parent),
                overwrite_if_exists=existed,  # only an empty folder gets here
                accept_hooks=False,
            )
        except BaseException as exc:
            _take_back(target, existed)
            message = _template_error(exc, overrides, files)
            if message is None:
                raise
            raise MlmError(message) from None
    return Path(created)


def _with_overrides(scratch: Path, overrides: Path, files: list[str]) -> Path:
    """A copy of mlm's template in `scratch` with the user's files laid over it."""
    import shutil

    template = scratch / "project_template"
    project = "{{cookiecutter.project_slug}}"
    shutil.copytree(template_dir() / project, template / project)
    shutil.copyfile(template_dir() / "cookiecutter.json", template / "cookiecutter.json")
    for path in files:
        (template / project / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(overrides / path, template / project / path)
    return template


def _template_error(exc: BaseException, overrides: Path, files: list[str]) -> str | None:
    """The message for a Jinja error in rendering the new project (None: not one), naming
    the user's file of templates/new/ at fault."""
    import jinja2

    cause = exc.__cause__ if isinstance(exc.__cause__, jinja2.TemplateError) else exc
    if not isinstance(cause, jinja2.TemplateError):
        return None
    # Jinja names the file; cookiecutter's own error says "Unable to create file 'PATH'".
    named = str(getattr(cause, "filename", None) or getattr(exc, "message", ""))
    quoted = re.search(r"'(.*)'", named)
    named = (quoted[1] if quoted else named).replace("\\", "/")
    inside = named.split("{{cookiecutter.project_slug}}/")[-1]
    where = str(overrides / inside) if inside in files else "a file of mlm's project template"
    line = getattr(cause, "lineno", None)
    return (
        f"{where}{f', line {line}' if line else ''}: template error: {cause.message}; "
        "files in templates/new/ are rendered as mlm's own are (Jinja, with "
        "cookiecutter.project_name and cookiecutter.seed): put text such as GitHub's "
        "${{ ... }} between {% raw %} and {% endraw %}"
    )


def _take_back(root: Path, existed: bool) -> None:
    """Remove what a failed `mlm new` wrote: the folder, or its contents when it existed."""
    import shutil

    if not root.is_dir():
        return
    if existed:
        for child in root.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    else:
        shutil.rmtree(root)


def new_formula_project(
    name: str,
    parent: Path,
    formula: str,
    sigma: str | None = None,
    family: str | None = None,
    data_file: Path | None = None,
    priors: list[str] | tuple[str, ...] = (),
    drop_missing: bool = False,
) -> Path:
    """A new project whose model.py (and graphics, tests) is written from `formula`.

    With `data_file`, the CSV is copied to data/ and read by a generated data.py (which,
    with `drop_missing`, leaves out the rows with a missing value in a column the model
    uses, as lme4 and Stata do, and says so in a comment and a note); otherwise the
    template's simulated data stay and the formula must use their columns.
    `priors` are "NAME=Dist(args)" texts that replace generated default priors. A formula
    that does not fit the data, or a prior that does not fit the model, leaves nothing behind.
    """
    import shutil

    from mlm import codegen
    from mlm.formula import parse

    spec = parse(formula, sigma=sigma, family=family, priors=priors)
    _tell(spec)
    if data_file is not None:
        data_file = Path(data_file)
        if not data_file.is_file():
            raise MlmError(f"--data {data_file}: no such file")
        if data_file.suffix.lower() != ".csv":
            raise MlmError(f"--data {data_file}: mlm reads .csv files; convert it first")
    existed = (parent / name).is_dir()
    root = new_project(name, parent)
    try:
        if data_file is not None:
            (root / "data" / "scores.csv").unlink()
            shutil.copyfile(data_file, root / "data" / data_file.name)
            (root / "data.py").write_text(codegen.data_source(data_file.name))
            _missing_rows(root, data_file.name, spec, drop_missing)
        _write_project_files(root, spec)
    except BaseException:
        _take_back(root, existed)
        raise
    return root


def _missing_rows(root: Path, filename: str, spec, drop: bool) -> None:
    """Rows of the CSV with a missing value in a column the model uses: refused, or with
    `drop`, left out by a data.py written anew, which says so, as a note does."""
    import sys

    from mlm import codegen
    from mlm.codegen.columns import missing_in

    data = _project_data(root)
    columns = [c for c in spec.variables if c in data.columns]
    if not drop:
        for column in columns:
            if said := missing_in(data, column):
                raise MlmError(
                    f"{filename}: {said}; fill them in, or add --drop-missing to leave those "
                    "rows out, as lme4 and Stata do (data.py then says so)"
                )
        return
    missing = data[columns].isna()
    rows = int(missing.any(axis=1).sum())
    if not rows:
        return
    counts = "missing " + ", ".join(f"{c}: {int(n)}" for c, n in missing.sum().items() if n)
    drop_ = {"columns": columns, "rows": rows, "of": len(data), "where": counts}
    (root / "data.py").write_text(codegen.data_source(filename, drop_))
    print(
        f"note: data.py leaves out {rows} of {len(data)} rows of {filename} with a missing "
        f"value ({counts}), as lme4 and Stata do (--drop-missing)",
        file=sys.stderr,
    )


def _hint_codes(spec, data) -> None:
    """A note for each numeric predictor whose values look like category codes (1, 2, 3):
    the model fits it as one slope, as lme4 does, which is right only for a quantity
    (model.py says so beside the column too)."""
    import sys

    from mlm.codegen import classify_columns
    from mlm.codegen.columns import codes_note

    for column, codes in sorted(classify_columns(spec, data).codes.items()):
        print(f"note: {codes_note(column, codes)} (Stata: i.{column})", file=sys.stderr)


def _tell(spec) -> None:
    """Print what the user should know about how the formula was read (one line each)."""
    import sys

    for note in spec.notes:
        print(f"note: {note}", file=sys.stderr)


def _project_data(root: Path):
    """What the project's data.py load() returns, without touching the cache."""
    from mlm.slots import SlotLoader

    loader = SlotLoader(root)
    return loader.call("data", loader.function("data", "load"), {"project": lambda: None})


def _write_project_files(root: Path, spec) -> None:
    from mlm import codegen

    data = _project_data(root)
    (root / "model.py").write_text(codegen.model_source(spec, data))
    _hint_codes(spec, data)
    (root / "graphics.py").write_text(codegen.graphics_source(spec))
    (root / "tests" / "test_model.py").write_text(codegen.tests_source(spec))
    readme = root / "README.md"
    text = readme.read_text()
    start = text.find("The shipped `data/scores.csv`")
    if start >= 0:
        end = text.find("\n\n", start)
        options = [f"--formula {shlex.quote(spec.source)}"]
        if spec.sigma_source:
            options.append(f"--sigma {shlex.quote(spec.sigma_source)}")
        if spec.family != "gaussian":
            options.append(f"--family {spec.family}")
        options += [f"--prior {shlex.quote(p.source)}" for p in spec.priors]
        note = (
            "model.py was written by `mlm new` with\n\n"
            + "".join(f"    {option}\n" for option in options)
            + "\n"
            "It is plain PyMC: edit it freely. `mlm generate model NAME --formula ...` writes\n"
            "another variant to compare with it."
        )
        readme.write_text(text[:start] + note + text[end:])


def written_family(path: Path) -> str | None:
    """The family a model.py written by mlm from a formula says it has, unless gaussian
    (the default anyway): a formula for another variant keeps it, as lme4's update() does."""
    from mlm import codegen

    try:
        family = codegen.written_family(path.read_text())
    except OSError:
        return None
    # gaussian is the default anyway; binomial comes with its cbind() response.
    return None if family in ("gaussian", "binomial") else family


def formula_model(
    project,
    name: str | None,
    formula: str,
    sigma: str | None = None,
    family: str | None = None,
    priors: list[str] | tuple[str, ...] = (),
) -> tuple[Path, str]:
    """Where the model `formula` gives goes (model.py with no name, else models/NAME.py),
    and its source, validated on the project's data.

    `priors` are "NAME=Dist(args)" texts that replace generated default priors.
    """
    from mlm import codegen
    from mlm.formula import parse

    if family is None and "~" in formula:  # lme4 syntax names no family (Stata's does)
        family = written_family(project.root / "model.py")
        if family is not None:
            print(
                f"note: family {family}, as model.py's (written by mlm); --family chooses another",
                file=sys.stderr,
            )
    spec = parse(formula, sigma=sigma, family=family, priors=priors)
    _tell(spec)
    if name is None:
        target = project.root / "model.py"
    else:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name == "model":
            raise MlmError(
                f"{name!r} cannot name a model variant: use letters, digits and '_' (a Python "
                "module name), and not 'model'"
            )
        target = project.root / "models" / f"{name}.py"
    return target, codegen.model_source(spec, project.data)
