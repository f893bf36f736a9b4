"""Issue 14, item 1: peak memory and trace size of `mlm run` at a million rows.

    python benchmarks/memory.py [--rows N] [--groups G] [--kinds template,formula]
                                [--fit "draws=200, tune=200"] [--before] [--example]

For each kind of project -- one made by `mlm new` (the template) and one made by
`mlm new --formula "score ~ hours + (1 | school)" --data` (codegen) -- it writes N rows
in G schools with the template's data.simulate(), adds a second variant with
`mlm generate model wide` (a narrower slope prior), and runs `mlm run` once: both fits,
every figure and the LOO comparison, with the generated fit.py as it is (`--fit`
replaces pm.sample's draws/tune for a quick look). Measured: wall time; peak RSS of the
`mlm` process (its rusage) and of its process tree (psutil, polled every 0.2 s); the
size of each trace.nc and of the pointwise LOO kept for compare.

--stage fit runs `mlm run fit --model model` instead (one fit, no figures, no compare).
--parallel runs the kinds side by side (each one's peak is still its own process tree's).
--before runs the same with fit.py as it was before (pm.compute_log_likelihood and a
posterior predictive draw for every draw). --example checks LOO on example_project:
its compare with fit.py storing the log-likelihood (before) and without (now), on the
same draws (same seed), must give the same elpd.

Every run is wrapped in `flock /tmp/mlm-heavy.lock` by whoever starts it (shared
machine). mlm runs from this checkout (PYTHONPATH=framework/). Writes
benchmarks/results/memory.json (merged with what is there, one entry per label).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from harness import EXAMPLE, PYTHON, REPO, RESULTS, machine

ENV = {**os.environ, "PYTHONPATH": str(REPO / "framework"), "MPLBACKEND": "Agg"}
FORMULA = "score ~ hours + (1 | school)"
RESULT = RESULTS / "memory.json"

# fit.py's body before issue 14: every draw's log-likelihood and posterior predictive.
BEFORE = """        pm.compute_log_likelihood(idata)
        pm.sample_posterior_predictive(idata, extend_inferencedata=True, random_seed=project.seed)
    return idata
"""

SIMULATE = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("d", sys.argv[1])
d = importlib.util.module_from_spec(spec); spec.loader.exec_module(d)
groups, rows = int(sys.argv[3]), int(sys.argv[4])
frame = d.simulate(np.random.default_rng(1), n_schools=groups, pupils_per_school=rows // groups)
frame.to_csv(sys.argv[2], index=False)
"""


def mlm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [PYTHON, "-m", "mlm", *args], cwd=cwd, env=ENV, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"mlm {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return done


def measured(cmd: list[str], cwd: Path) -> dict:
    """Wall time, the process's own peak RSS (rusage) and its tree's (psutil, polled)."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tree_peak = [0]

    def poll() -> None:
        try:
            root = psutil.Process(proc.pid)
            while proc.poll() is None:
                total = 0
                for p in [root, *root.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                tree_peak[0] = max(tree_peak[0], total)
                time.sleep(0.2)
        except psutil.Error:
            pass

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    poller.join(timeout=5)
    wall = time.perf_counter() - start
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{text[-4000:]}")
    return {
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "tree_peak_rss_mb": round(tree_peak[0] / 2**20),
        "output": text,
    }


def make_project(kind: str, parent: Path, rows: int, groups: int) -> Path:
    """A project of `kind` holding `rows` simulated rows in `groups` schools, two variants."""
    template_data = REPO / "project_template" / "{{cookiecutter.project_slug}}" / "data.py"
    csv = parent / "scores.csv"
    subprocess.run(
        [PYTHON, "-c", SIMULATE, str(template_data), str(csv), str(groups), str(rows)],
        check=True,
        env=ENV,
    )
    if kind == "template":
        mlm("new", "mem_template", "--no-git", cwd=parent)
        root = parent / "mem_template"
        shutil.copy(csv, root / "data" / "scores.csv")
    else:
        mlm("new", "mem_formula", "--no-git", "--formula", FORMULA, "--data", str(csv), cwd=parent)
        root = parent / "mem_formula"
    mlm("generate", "model", "wide", cwd=root)
    wide = root / "models" / "wide.py"
    source = wide.read_text()
    narrower = re.sub(
        r'(pm\.Normal\("(slope|b_hours)", mu=0, sigma=)([^)]*)\)',
        r"\g<1>0.5 * (\g<3>))",
        source,
        count=1,
    )
    assert narrower != source, "no slope prior found in models/wide.py"
    wide.write_text(narrower)
    return root


def set_fit(root: Path, fit: str | None, before: bool) -> None:
    """fit.py with pm.sample's draws and tune replaced (`fit`) and/or its old body."""
    path = root / "fit.py"
    source = path.read_text()
    if fit:
        for name, value in re.findall(r"(draws|tune)=(\d+)", fit):
            source = re.sub(rf"{name}=\d+", f"{name}={value}", source, count=1)
        # Keep the posterior predictive at the defaults' 100 draws (4 chains), so the
        # predictive -- most of the trace and of the memory after sampling -- is as large.
        draws = int(re.search(r"draws=(\d+)", source).group(1))
        step = max(1, draws // 25)
        source = re.sub(r"slice\(None, None, \d+\)", f"slice(None, None, {step})", source)
    if before:
        cut = source.index("        # Posterior predictive draws")
        source = source[:cut] + BEFORE
    path.write_text(source)


def sizes(root: Path) -> dict:
    cache = root / ".mlm"
    traces = {p.parent.parent.name: p.stat().st_size for p in cache.glob("fit/*/*/trace.nc")}
    loo = sum(p.stat().st_size for p in cache.glob("loo/*/*.nc"))
    return {
        "trace_mb": {k: round(v / 2**20, 1) for k, v in sorted(traces.items())},
        "pointwise_loo_mb": round(loo / 2**20, 1),
    }


def run_project(
    kind: str, rows: int, groups: int, fit: str | None, before: bool, stage: str | None = None
) -> dict:
    parent = Path(tempfile.mkdtemp(prefix=f"mlm-bench-memory-{kind}-"))
    try:
        root = make_project(kind, parent, rows, groups)
        set_fit(root, fit, before)
        command = ["run", "fit", "--model", "model"] if stage == "fit" else ["run"]
        print(f"{kind}: {rows:,} rows, {groups:,} groups, mlm {' '.join(command)} ...", flush=True)
        result = measured([PYTHON, "-m", "mlm", *command], root)
        output = result.pop("output")
        steps = [
            line
            for line in output.splitlines()
            if re.search(r"sampled in|chunks of|best expected|drew", line)
        ]
        compared = root / ".mlm" / "compare.json"
        compare = json.loads(compared.read_text()) if compared.is_file() else {"table": {}}
        entry = {
            "kind": kind,
            "rows": rows,
            "groups": groups,
            "fit": fit or "generated",
            "command": "mlm " + " ".join(command),
            "fit_py": "before" if before else "now",
            **result,
            **sizes(root),
            "elpd": {m: round(r["elpd"], 2) for m, r in compare["table"].items()},
            "compare_s": compare.get("wall_time_s"),
            "steps": steps,
        }
        print(json.dumps({k: v for k, v in entry.items() if k != "steps"}), flush=True)
        return entry
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def example_loo() -> dict:
    """example_project's compare, the log-likelihood stored (before) vs computed (now)."""
    out = {}
    for label in ("stored", "computed"):
        parent = Path(tempfile.mkdtemp(prefix="mlm-bench-memory-example-"))
        root = parent / "example"
        shutil.copytree(
            EXAMPLE,
            root,
            ignore=shutil.ignore_patterns(".mlm", "figures", "report.html", "__pycache__"),
        )
        if label == "stored":
            set_fit(root, None, before=True)
        mlm("run", "compare", cwd=root)
        table = json.loads((root / ".mlm" / "compare.json").read_text())["table"]
        out[label] = {m: {"elpd": r["elpd"], "se": r["se"], "p": r["p"]} for m, r in table.items()}
        shutil.rmtree(parent, ignore_errors=True)
    out["largest_elpd_difference"] = max(
        abs(out["stored"][m]["elpd"] - out["computed"][m]["elpd"]) for m in out["stored"]
    )
    print(json.dumps(out, indent=1), flush=True)
    return out


def save(updates: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    saved = json.loads(RESULT.read_text()) if RESULT.is_file() else {}
    saved.setdefault("runs", {}).update(updates.get("runs", {}))
    if "example_loo" in updates:
        saved["example_loo"] = updates["example_loo"]
    saved["machine"] = machine()
    RESULT.write_text(json.dumps(saved, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--kinds", default="template,formula")
    parser.add_argument("--fit", default=None, help='e.g. "draws=200, tune=200"')
    parser.add_argument("--before", action="store_true")
    parser.add_argument("--example", action="store_true")
    parser.add_argument("--stage", choices=["fit"], default=None)
    parser.add_argument("--parallel", action="store_true", help="the kinds side by side")
    args = parser.parse_args()
    if args.example:
        save({"example_loo": example_loo()})
    kinds = [k for k in args.kinds.split(",") if k]
    lock = threading.Lock()

    def one(kind: str) -> None:
        entry = run_project(kind, args.rows, args.groups, args.fit, args.before, args.stage)
        label = f"{kind} {args.rows} {entry['fit_py']} {args.fit or 'generated'} {entry['command']}"
        with lock:
            save({"runs": {label: entry}})

    if args.parallel:
        threads = [threading.Thread(target=one, args=(kind,)) for kind in kinds]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for kind in kinds:
            one(kind)


if __name__ == "__main__":
    main()
