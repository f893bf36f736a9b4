"""Refit corpus cases with other seeds, as a user would after changing mlm.toml's seed:
how often the verdict of `mlm check` holds (docs/validation.md; Orthodont's xfail).

    python tests/validation/seeds.py NAME SEED [SEED ...] [--adaptation diag|low_rank]
                                     [--target-accept X]

For each seed: `mlm new NAME ...` (the case's formula and data), the seed written into
mlm.toml, `mlm run fit`, and the numbers `mlm check` judged: one row per seed. With
--adaptation, fit.py's choice of nutpie's mass matrix is replaced by that one; with
--target-accept, the target_accept of its first try. A row says whether fit.py sampled
again at 0.99 (after how many divergences).
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from validation.corpus import BY_NAME, DATA, mlm


def edit_line(path: Path, pattern: str, replacement: str) -> None:
    """Replace the one line of `path` that `pattern` matches (after its indentation)."""
    text, count = re.subn(rf"(?m)^(\s*){pattern}$", rf"\g<1>{replacement}", path.read_text())
    assert count == 1, f"{path.name}: not one line matches {pattern!r}"
    path.write_text(text)


def main(
    name: str, seeds: list[int], adaptation: str | None = None, target: str | None = None
) -> None:
    from mlm import Project
    from mlm.check import explain

    case = BY_NAME[name]
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            args = ["new", name, "--formula", case.formula, "--data", str(DATA / case.csv)]
            if case.family:
                args += ["--family", case.family]
            made = mlm(*args, cwd=Path(tmp))
            assert made.returncode == 0, made.stderr
            root = Path(tmp) / name
            toml = root / "mlm.toml"
            toml.write_text(re.sub(r"(?m)^seed = \d+", f"seed = {seed}", toml.read_text()))
            if adaptation:
                edit_line(root / "fit.py", r"adaptation = .*", f'adaptation = "{adaptation}"')
            if target:
                edit_line(
                    root / "fit.py",
                    r"idata = draw\(model, project, target_accept=[0-9.]+\)",
                    f"idata = draw(model, project, target_accept={target})",
                )
            start = time.perf_counter()
            fitted = mlm("run", "fit", cwd=root)
            seconds = time.perf_counter() - start
            assert fitted.returncode == 0, fitted.stderr
            project = Project(root)
            rows = explain(project.check(), project.idata, root / "model.py", root / "fit.py")
            numbers = {r.name: r for r in rows}
            verdict = "pass" if all(r.passed for r in rows) else "FAIL"
            # fit.py samples again at target_accept=0.99 when the first try diverged
            again = re.search(r"(\d+) divergent transitions at target_accept", fitted.stdout)
            print(
                f"| {name} | {seed} | {numbers['divergences'].value:.0f} | "
                f"{numbers['ess_bulk'].value:.0f} ({numbers['ess_bulk'].detail}) | "
                f"{numbers['r_hat'].value:.3f} | {verdict} | {adaptation or 'fit.py'} | "
                f"{target or 'fit.py'} | {f'again ({again[1]})' if again else 'once'} | "
                f"{seconds:.0f} s |",
                flush=True,
            )


if __name__ == "__main__":
    args = sys.argv[1:]
    chosen = None
    if "--adaptation" in args:
        at = args.index("--adaptation")
        chosen = args[at + 1]
        del args[at : at + 2]
    target = None
    if "--target-accept" in args:
        at = args.index("--target-accept")
        target = args[at + 1]
        del args[at : at + 2]
    main(args[0], [int(s) for s in args[1:]], chosen, target)
