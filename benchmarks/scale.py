"""Target 7: fit time, peak memory and trace size on disk as the data grows.

    python benchmarks/scale.py [--quick]

For 200, 2,000, 20,000 and 200,000 rows (10 to 1,000 therapy groups; --quick stops at
20,000), data.py's simulate() writes the project's CSV and `mlm run fit` fits it with
the example's fit.py at study-sized settings (2 chains, 500 tune, 500 draws; it still
stores the pointwise log-likelihood and a posterior predictive draw per observation,
so the trace grows with rows x draws). Reported: wall time and peak RSS of the mlm
process, the NetCDF's size, and its size when written zlib-compressed (level 1).
Writes benchmarks/results/scale.json and benchmarks/scale.png (with --quick,
results/scale.quick.json and results/scale.quick.png).
"""

import json
import sys
import tempfile
from pathlib import Path

from harness import HERE, MLM, PYTHON, measure, project_copy, save, table

SIZES = [  # rows, n_groups, group_size, n_control
    (200, 10, 10, 100),
    (2_000, 100, 10, 1_000),
    (20_000, 1_000, 10, 10_000),
    (200_000, 1_000, 100, 100_000),
]
SETTINGS = "draws=500, tune=500, chains=2"

SIMULATE = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("d", sys.argv[1] + "/data.py")
d = importlib.util.module_from_spec(spec); spec.loader.exec_module(d)
frame = d.simulate(np.random.default_rng(1), n_groups=int(sys.argv[2]),
                   group_size=int(sys.argv[3]), n_control=int(sys.argv[4]))
frame.to_csv(sys.argv[1] + "/data/partially_clustered.csv", index=False)
"""

COMPRESS = """
import os, sys, xarray as xr
tree = xr.open_datatree(sys.argv[1])
encoding = {node.path: {v: {"zlib": True, "complevel": 1} for v in node.ds.data_vars}
            for node in tree.subtree if node.ds.data_vars}
tree.to_netcdf(sys.argv[2], encoding=encoding)
print(os.path.getsize(sys.argv[2]))
"""


def main(quick: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mlm-bench-scale-"))
    proj = project_copy(tmp / "trial")
    fit_py = proj / "fit.py"
    source = fit_py.read_text()
    assert "draws=2000, tune=1000, chains=4" in source
    fit_py.write_text(source.replace("draws=2000, tune=1000, chains=4", SETTINGS))
    print("warming up", flush=True)
    measure([MLM, "-C", str(proj), "run", "fit", "--model", "model"])
    rows = []
    for n, groups, size, control in SIZES[:3] if quick else SIZES:
        measure([PYTHON, "-c", SIMULATE, str(proj), str(groups), str(size), str(control)])
        r = measure([MLM, "-C", str(proj), "run", "fit", "--model", "model"])
        key = json.loads((proj / ".mlm" / "fit" / "model" / "latest.json").read_text())["key"]
        trace = proj / ".mlm" / "fit" / "model" / key / "trace.nc"
        manifest = json.loads((trace.parent / "manifest.json").read_text())
        packed = tmp / "packed.nc"
        compressed = int(measure([PYTHON, "-c", COMPRESS, str(trace), str(packed)])["output"]
                         .strip().splitlines()[-1])
        packed.unlink()
        row = {"rows": n, "groups": groups, "wall_s": r["wall_s"],
               "sampling_s": manifest["wall_time_s"], "peak_mb": r["peak_mb"],
               "trace_mb": trace.stat().st_size / 1e6, "compressed_mb": compressed / 1e6}
        rows.append(row)
        trace.parent.rename(tmp / f"done-{n}")  # keep the store to one trace at a time
        (tmp / f"done-{n}" / "trace.nc").unlink()
        print(f"  {row}", flush=True)
    print(f"\n## 7. Scale ({SETTINGS})\n" + table(
        ["rows", "groups", "mlm run fit s", "of which fit.py s", "peak RSS MB", "trace MB",
         "zlib-1 MB", "peak / trace"],
        [[f"{r['rows']:,}", r["groups"], f"{r['wall_s']:.1f}", f"{r['sampling_s']:.1f}",
          f"{r['peak_mb']:.0f}", f"{r['trace_mb']:.1f}", f"{r['compressed_mb']:.1f}",
          f"{r['peak_mb'] / r['trace_mb']:.1f}"] for r in rows]))
    figure(rows, HERE / "results" / "scale.quick.png" if quick else HERE / "scale.png")
    save("scale", {"quick": quick, "settings": SETTINGS, "rows": rows})


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["rows"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    axes[0].plot(n, [r["wall_s"] for r in rows], "o-", label="mlm run fit (process)")
    axes[0].plot(n, [r["sampling_s"] for r in rows], "s--", label="fit.py sample()")
    axes[0].set_ylabel("seconds")
    axes[1].plot(n, [r["peak_mb"] for r in rows], "o-", label="peak RSS")
    axes[1].plot(n, [r["trace_mb"] for r in rows], "s--", label="trace.nc")
    axes[1].plot(n, [r["compressed_mb"] for r in rows], "^:", label="trace.nc, zlib 1")
    axes[1].set_ylabel("MB")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.legend(frameon=False, fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"example model, {SETTINGS}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main("--quick" in sys.argv)
