"""Run the mlm command line and record which heavy libraries it imported.

    python probe_modules.py OUT.json mlm-arguments...

At exit, OUT.json says which of pytensor, pymc, numba, nutpie, arviz, jax were in
sys.modules. A run without pytensor in sys.modules cannot have compiled a PyTensor
function.
"""

import atexit
import json
import sys

HEAVY = ("pytensor", "pymc", "numba", "nutpie", "arviz", "jax", "matplotlib", "pandas")
out_path = sys.argv[1]


def _report():
    with open(out_path, "w") as handle:
        json.dump({name: name in sys.modules for name in HEAVY}, handle)


atexit.register(_report)
sys.argv = ["mlm", *sys.argv[2:]]
from mlm.cli import main  # noqa: E402

main()
