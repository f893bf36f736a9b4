"""`mlm new`: render project_template/ with cookiecutter into a new project folder."""

from __future__ import annotations

import re
from pathlib import Path

from mlm.errors import MlmError

# Letters, digits, '-', '_' and '.', starting with a letter or digit: a name that is a
# valid folder on every system and safe to type in a shell.
VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def template_dir() -> Path:
    """The template shipped in the wheel, or the repository's copy in a source checkout."""
    packaged = Path(__file__).parent / "project_template"
    if (packaged / "cookiecutter.json").is_file():
        return packaged
    source = Path(__file__).resolve().parents[2] / "project_template"
    if (source / "cookiecutter.json").is_file():
        return source
    raise MlmError(f"mlm's project template is missing (looked in {packaged} and {source})")


def new_project(name: str, parent: Path) -> Path:
    """Render a new, runnable project named `name` inside `parent`; returns its path."""
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

    from cookiecutter.main import cookiecutter

    created = cookiecutter(
        str(template_dir()),
        no_input=True,
        extra_context={"project_name": name, "project_slug": name},
        output_dir=str(parent),
        overwrite_if_exists=target.is_dir(),  # only an empty folder gets here
        accept_hooks=False,
    )
    return Path(created)
