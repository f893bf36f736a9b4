"""The example's figures drawn by a bare script from a stored trace, without mlm.

    python bare_graphics.py PROJECT_DIR TRACE.nc OUT_DIR

Loads the NetCDF and the CSV, calls the functions of PROJECT_DIR/graphics.py and saves
each figure as mlm does (png, dpi 150, tight bounding box).
"""

import importlib.util
import inspect
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import xarray as xr

project, trace, out = (Path(a) for a in sys.argv[1:4])
out.mkdir(parents=True, exist_ok=True)
idata = xr.load_datatree(trace)
data = pd.read_csv(project / "data" / "partially_clustered.csv")
data["condition"] = pd.Categorical(data["condition"], categories=["control", "treated"])

spec = importlib.util.spec_from_file_location("graphics", project / "graphics.py")
graphics = importlib.util.module_from_spec(spec)
spec.loader.exec_module(graphics)
given = {"idata": idata, "data": data}
for name, fn in inspect.getmembers(graphics, inspect.isfunction):
    if name.startswith("_") or fn.__module__ != "graphics":
        continue
    fig = fn(**{p: given[p] for p in inspect.signature(fn).parameters})
    fig.savefig(out / f"{name}.png", dpi=150, bbox_inches="tight")
    plt.close(fig)
