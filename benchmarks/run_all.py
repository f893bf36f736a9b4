"""Run every benchmark in turn (see RESULTS.md for how long each takes).

    python benchmarks/run_all.py [--quick]

Each script prints its markdown tables and writes benchmarks/results/NAME.json
(NAME.quick.json with --quick); benchmarks/RESULTS.md is written by hand from them.
"""

import subprocess
import sys

from harness import HERE, PYTHON

SCRIPTS = ["overhead.py", "samplers.py", "compile.py", "scale.py", "study.py", "data_hash.py"]

if __name__ == "__main__":
    flags = [a for a in sys.argv[1:] if a == "--quick"]
    for script in SCRIPTS:
        print(f"\n# {script}", flush=True)
        subprocess.run([PYTHON, str(HERE / script), *flags], check=True)
