"""Shared measuring code of the benchmark scripts: run a child, time it, read its peak RSS.

Every comparison runs its commands interleaved (A B A B ...) and reports medians, since
the machine is shared and its load moves during a run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = REPO / "example_project"
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent
PYTHON = sys.executable
MLM = str(BIN / "mlm")


def measure(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> dict:
    """Wall time (s) and peak resident memory (MB) of one child process run to its end.

    os.wait4 returns the rusage of that child alone (with the children it waited for),
    so each measurement is separate from the others.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
            f"{out.decode(errors='replace')[-3000:]}"
        )
    return {
        "wall_s": wall,
        "peak_mb": usage.ru_maxrss / 1024,
        "output": out.decode(errors="replace"),
    }


def interleave(commands: dict[str, dict], repeats: int, before=None) -> dict[str, list[dict]]:
    """Run each named command `repeats` times, alternating their order round by round.

    `commands[name]` holds measure()'s keyword arguments; `before(name)` (optional) runs
    untimed before each measurement, e.g. to reset a file.
    """
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    names = list(commands)
    for round_ in range(repeats):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            if before:
                before(name)
            result = measure(**commands[name])
            result.pop("output")
            runs[name].append(result)
            print(f"  {name}: {result['wall_s']:.2f} s, {result['peak_mb']:.0f} MB", flush=True)
    return runs


def median(runs: list[dict], field: str) -> float:
    return statistics.median(r[field] for r in runs)


def project_copy(dest: Path) -> Path:
    """A copy of example_project without its cache or figures."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(
        EXAMPLE,
        dest,
        ignore=shutil.ignore_patterns(".mlm", "figures", "report.html", "__pycache__"),
    )
    return dest


def machine() -> dict:
    """Where and when the numbers were taken."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024**2:.0f} GB"
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for name in (
        "pymc",
        "pytensor",
        "nutpie",
        "numba",
        "arviz",
        "xarray",
        "numpy",
        "jax",
        "numpyro",
        "bambi",
    ):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "load_average": os.getloadavg(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def save(name: str, payload: dict) -> Path:
    """Write results/NAME.json (results/NAME.quick.json for a --quick run)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}{'.quick' if payload.get('quick') else ''}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO)}")
    return path


def table(header: list[str], rows: list[list]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
