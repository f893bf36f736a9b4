"""The template files mlm renders, kept in one folder shipped inside the wheel.

`project_template/` holds the cookiecutter project `mlm new` renders, and beside it, in
`project_template/templates/`, the Jinja templates of the files `--formula` writes
besides model.py: data.py (for `--data`), graphics.py and tests/test_model.py. A template
of the same name in the user's config folder (`user_templates()`) is used instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlm.codegen.formatting import formatted
from mlm.errors import MlmError
from mlm.formula import ModelSpec


def template_dir() -> Path:
    """The template shipped in the wheel, or the repository's copy in a source checkout."""
    packaged = Path(__file__).parents[1] / "project_template"
    if (packaged / "cookiecutter.json").is_file():
        return packaged
    source = Path(__file__).resolve().parents[3] / "project_template"
    if (source / "cookiecutter.json").is_file():
        return source
    raise MlmError(f"mlm's project template is missing (looked in {packaged} and {source})")


def user_templates() -> Path:
    """The user's own templates: $XDG_CONFIG_HOME/mlm/templates (~/.config/mlm/templates)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mlm" / "templates"


def render(name: str, **context) -> str:
    """NAME.jinja rendered with `context`, formatted by ruff: the user's template
    (user_templates()) when there is one, else project_template/templates/'s."""
    import jinja2

    folders = [user_templates(), template_dir() / "templates"]
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(folder) for folder in folders]),
        keep_trailing_newline=True,
        trim_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    try:
        template = environment.get_template(f"{name}.jinja")
        return formatted(template.render(**context))
    except jinja2.TemplateSyntaxError as exc:
        raise MlmError(
            f"{exc.filename}, line {exc.lineno}: template error: {exc.message}"
        ) from None
    except jinja2.UndefinedError as exc:
        known = ", ".join(sorted(context))
        raise MlmError(
            f"{template.filename}: {exc.message}; a {name} template may use: {known}"
        ) from None


def data_source(filename: str, drop: dict | None = None) -> str:
    """data.py that reads data/FILENAME as it is, or, with `drop` ({columns, rows, of,
    where}), leaves out the rows with a missing value in those columns."""
    return render("data.py", filename=filename, drop=drop)


def graphics_source(spec: ModelSpec) -> str:
    """graphics.py with figures that fit any generated model of `spec`."""
    return render("graphics.py", response=spec.response, groups=bool(spec.groups))


def tests_source(spec: ModelSpec) -> str:
    """tests/test_model.py for a generated project."""
    return render("test_model.py", columns=spec.variables)
