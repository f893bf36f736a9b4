"""Generated source run through `ruff format`, so it reads as if written by hand."""

from __future__ import annotations

import subprocess
import sys

from mlm.errors import MlmError


def formatted(source: str) -> str:
    """`source` run through `ruff format` when ruff is installed, else as it is."""
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ruff",
                "format",
                "--isolated",
                "--line-length",
                "100",
                "--stdin-filename",
                "model.py",
                "-",
            ],
            input=source,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return source
    if done.returncode != 0:
        if "No module named ruff" in done.stderr:
            return source
        raise MlmError(f"mlm generated code ruff cannot format (please report it):\n{done.stderr}")
    return done.stdout
