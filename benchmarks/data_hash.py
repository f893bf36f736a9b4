"""What it costs to know that the data did not change: the data stage's stamp of a 1 GB
data folder, hashed in full (first run, or after any change) and through the status
shortcut (size, mtime, ctime and inode unchanged), side by side in one run.

    python benchmarks/data_hash.py [--quick]     (--quick: 100 MB)

Writes benchmarks/results/data_hash[.quick].json.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from harness import HERE

from mlm.layout import Layout
from mlm.stages import Session

ROUNDS = 3


def _project(folder: Path, size: int) -> Path:
    root = folder / "big"
    (root / "data").mkdir(parents=True)
    (root / "mlm.toml").write_text('[project]\nname = "big"\nseed = 1\n')
    (root / "data.py").write_text(
        "import pandas as pd\n\n\ndef load():\n    return pd.DataFrame({'x': [1.0]})\n"
    )
    with open(root / "data" / "survey.bin", "wb") as handle:
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            handle.write(block)
    return root


def _stamp(root: Path) -> float:
    """Seconds the data stage takes to stamp its inputs; then it records them."""
    stage = Session(Layout(root)).data()
    start = time.perf_counter()
    stage.inputs()
    took = time.perf_counter() - start
    stage.run()
    return took


def main() -> None:
    quick = "--quick" in sys.argv
    size = (100 if quick else 1000) << 20
    folder = Path(tempfile.mkdtemp(prefix="mlm-hash-"))
    try:
        root = _project(folder, size)
        time.sleep(2.1)  # let the file settle (a file changed within 2 s is hashed again)
        full, shortcut = [], []
        for _ in range(ROUNDS):
            shutil.rmtree(root / ".mlm", ignore_errors=True)
            full.append(_stamp(root))
            shortcut.append(_stamp(root))
        result = {
            "bytes": size,
            "full_hash_s": sorted(full)[ROUNDS // 2],
            "status_shortcut_s": sorted(shortcut)[ROUNDS // 2],
        }
        result["ratio"] = result["status_shortcut_s"] / result["full_hash_s"]
        print("| data folder | full hash (SHA-256) | unchanged (stat) | ratio |")
        print("| --- | --- | --- | --- |")
        print(
            f"| {size >> 20} MB | {result['full_hash_s']:.2f} s | "
            f"{result['status_shortcut_s'] * 1000:.2f} ms | {result['ratio']:.5f} |"
        )
        name = "data_hash.quick.json" if quick else "data_hash.json"
        (HERE / "results" / name).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
