"""Target 5: compile cost. Cold, warm and data-only refits through mlm, where the time of
a fit goes, and what reusing a compiled model (nutpie's with_data) would save.

    python benchmarks/compile.py [--quick]

cold: `mlm run fit` with an empty PyTensor cache directory (PYTENSOR_FLAGS
base_compiledir, as after a fresh install; mlm's compiled models live there too); warm:
`--force` again with that cache; data-only: one value of the CSV changed, then `mlm run
fit`; and the last two again with `[fit] compile_cache = false`. Interleaved, medians.
Writes benchmarks/results/compile.json.
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from harness import HERE, MLM, PYTHON, measure, project_copy, save, table


def main(quick: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mlm-bench-compile-"))
    proj = project_copy(tmp / "trial")
    csv = proj / "data" / "partially_clustered.csv"
    original = csv.read_text()
    compiledir = tmp / "pytensor"
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={compiledir}"}
    mlm = [MLM, "-C", str(proj), "run", "fit", "--model", "model"]
    runs = {
        "cold (empty PyTensor cache)": [],
        "warm (--force)": [],
        "data-only change": [],
        "warm, compile_cache = false": [],
        "data-only change, compile_cache = false": [],
    }
    toml = proj / "mlm.toml"
    settings = toml.read_text()
    edits = 0
    for _ in range(1 if quick else 2):
        shutil.rmtree(compiledir, ignore_errors=True)
        r = measure([*mlm, "--force"], env=env)
        runs["cold (empty PyTensor cache)"].append(r)
        r = measure([*mlm, "--force"], env=env)
        runs["warm (--force)"].append(r)
        edits += 1
        lines = original.splitlines()
        head, first = lines[0], lines[1].rsplit(",", 1)
        lines[1] = f"{first[0]},{float(first[1]) + 0.001 * edits:.4f}"
        csv.write_text("\n".join([head, *lines[1:]]) + "\n")
        r = measure(mlm, env=env)
        assert "sampled" in r["output"], r["output"][-500:]
        runs["data-only change"].append(r)
        # The same two fits without mlm's compiled-model cache (nutpie recompiles its
        # callbacks in every process; PyTensor's own disk cache still works).
        toml.write_text(settings + "\n[fit]\ncompile_cache = false\n")
        runs["warm, compile_cache = false"].append(measure([*mlm, "--force"], env=env))
        edits += 1
        lines[1] = f"{first[0]},{float(first[1]) + 0.001 * edits:.4f}"
        csv.write_text("\n".join([head, *lines[1:]]) + "\n")
        r = measure(mlm, env=env)
        assert "sampled" in r["output"], r["output"][-500:]
        runs["data-only change, compile_cache = false"].append(r)
        toml.write_text(settings)
        for name, rs in runs.items():
            print(f"  {name}: {rs[-1]['wall_s']:.1f} s", flush=True)
    csv.write_text(original)
    for rs in runs.values():
        for r in rs:
            r.pop("output")

    def run(*args):
        out = tmp / "out.json"
        measure([PYTHON, str(HERE / "compile_run.py"), *args, str(out)])
        return json.loads(out.read_text())

    phases = run("phases")
    reuse = run("reuse")
    cache = {"compile_pymc_model()": [], "compile_pymc_model(cache=True)": []}
    for _ in range(1 if quick else 2):
        cache["compile_pymc_model()"].append(run("compile")["compile_s"])
        cache["compile_pymc_model(cache=True)"].append(run("compile", "--cache")["compile_s"])

    cold = statistics.median(r["wall_s"] for r in runs["cold (empty PyTensor cache)"])
    print("\n## 5. Compile cost through mlm\n" + table(
        ["fit", "wall s (median)", "x cold"],
        [[n, f"{statistics.median(r['wall_s'] for r in rs):.1f}",
          f"{statistics.median(r['wall_s'] for r in rs) / cold:.2f}"] for n, rs in runs.items()]))
    print("\nphases of the example's fit (one process, warm PyTensor cache)\n" + table(
        ["phase", "s"], [[k, v] for k, v in phases.items()]))
    print("\nreuse in one process\n" + table(["fit", "s"], [[k, v] for k, v in reuse.items()]))
    print("\nnumba cache=True\n" + table(["call", "s (median)"],
          [[k, f"{statistics.median(v):.2f}"] for k, v in cache.items()]))
    save("compile", {"quick": quick, "mlm": runs, "phases": phases, "reuse": reuse,
                     "cache": cache})


if __name__ == "__main__":
    main("--quick" in sys.argv)
