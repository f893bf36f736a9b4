"""The validation corpus: published mixed-model fits, refitted as a new user would.

Each case is one CSV of tests/validation/data/, the lme4 formula a user would type and the
published estimates with their reference (tests/validation/data/README.md). `run_case`
drives the real command line: `mlm new NAME --formula ... --data FILE.csv`, `mlm run fit`,
`mlm check`; then reads the cached trace.

    python tests/validation/corpus.py [NAME ...]   # prints docs/validation.md's table rows
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Case:
    name: str
    csv: str
    formula: str
    # parameter (mlm's name, `name[level]` for one level) -> (published value, reference)
    fixed: dict[str, tuple[float, str]]
    residual_sd: tuple[float, str] | None = None
    family: str | None = None
    # published SDs of group effects (and a family's shape: theta), shown beside the
    # posterior (not asserted)
    group_sds: dict[str, tuple[float, str]] = field(default_factory=dict)

    @property
    def lme4(self) -> str:
        return self.formula


LME4_SLEEP = "lme4 documentation, ?sleepstudy / Bates et al. (2015) JSS 67(1), REML"
GH_12 = "Gelman & Hill (2007), sec. 12.4, lmer M1"
GH_13 = "Gelman & Hill (2007), sec. 13.1, lmer M3"
LME4_BOOK = "Bates (2010), lme4: Mixed-effects modeling with R, ch. 2, fm03, REML"
MLWIN = "Rasbash et al., A User's Guide to MLwiN, ch. 3 (random intercept), IGLS"
LME4_CBPP = "lme4 documentation, ?cbpp example gm1 (Laplace)"
PB = "Pinheiro & Bates (2000), sec. 1.4 / nlme ?lme example fm1, REML"
LME4_NB = (
    "glmmADMB's fit recorded in lme4's tests/nbinom.R (glmmADMB_epil_vals), which glmer.nb "
    "reproduces (fixef within 0.4%, theta within 0.22%; Laplace ML)"
)

MASS_OATS = (
    "Venables & Ripley (2002), Modern Applied Statistics with S, 4th ed., sec. 10.3, "
    "lme(Y ~ N + V, random = ~1 | B/V, data = oats), REML"
)

LME4_PASTES = (
    "Bates (2010), lme4: Mixed-effects modeling with R, ch. 2, fm04 (Pastes, nested), REML; "
    "the balanced nested ANOVA's estimates, the same to the digits shown"
)
PB_MACHINES = (
    "Pinheiro & Bates (2000), sec. 1.3, fm2Machine: lme(score ~ Machine, random = "
    "~1 | Worker/Machine), REML; the balanced ANOVA's estimates, the same to the digits shown"
)

CASES = (
    Case(
        "sleepstudy",
        "sleepstudy.csv",
        "Reaction ~ Days + (Days | Subject)",
        {"Intercept": (251.405, LME4_SLEEP), "b_Days": (10.467, LME4_SLEEP)},
        residual_sd=(25.592, LME4_SLEEP),
        group_sds={
            "sigma_Subject[Intercept]": (24.741, LME4_SLEEP),
            "sigma_Subject[Days]": (5.922, LME4_SLEEP),
        },
    ),
    Case(
        "radon",
        "radon.csv",
        "log_radon ~ floor + (1 | county)",
        {"Intercept": (1.46, GH_12), "b_floor": (-0.69, GH_12)},
        residual_sd=(0.76, GH_12),
        group_sds={"sigma_county": (0.33, GH_12)},
    ),
    Case(
        "radon_slopes",
        "radon.csv",
        "log_radon ~ floor + (1 + floor | county)",
        {"Intercept": (1.46, GH_13), "b_floor": (-0.68, GH_13)},
        residual_sd=(0.75, GH_13),
        group_sds={
            "sigma_county[Intercept]": (0.35, GH_13),
            "sigma_county[floor]": (0.34, GH_13),
        },
    ),
    Case(
        "penicillin",
        "penicillin.csv",
        "diameter ~ 1 + (1 | plate) + (1 | sample)",
        {"Intercept": (22.972, LME4_BOOK)},
        residual_sd=(0.5499, LME4_BOOK),
        group_sds={"sigma_plate": (0.8467, LME4_BOOK), "sigma_sample": (1.9316, LME4_BOOK)},
    ),
    Case(
        "exam",
        "exam.csv",
        "normexam ~ standLRT + (1 | school)",
        {"Intercept": (0.002, MLWIN), "b_standLRT": (0.563, MLWIN)},
        residual_sd=(0.7523, MLWIN + " (variance 0.566)"),
        group_sds={"sigma_school": (0.3033, MLWIN + " (variance 0.092)")},
    ),
    Case(
        "cbpp_bernoulli",
        "cbpp_bernoulli.csv",
        "infected ~ period + (1 | herd)",
        {
            "Intercept": (-1.3983, LME4_CBPP),
            "b_period[p2]": (-0.9919, LME4_CBPP),
            "b_period[p3]": (-1.1282, LME4_CBPP),
            "b_period[p4]": (-1.5797, LME4_CBPP),
        },
        family="bernoulli",
        group_sds={"sigma_herd": (0.6421, LME4_CBPP)},
    ),
    Case(
        "cbpp",
        "cbpp.csv",
        "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)",
        {
            "Intercept": (-1.3983, LME4_CBPP),
            "b_period[2]": (-0.9919, LME4_CBPP),
            "b_period[3]": (-1.1282, LME4_CBPP),
            "b_period[4]": (-1.5797, LME4_CBPP),
        },
        group_sds={"sigma_herd": (0.6421, LME4_CBPP)},
    ),
    Case(
        "orthodont",
        "orthodont.csv",
        "distance ~ age + (age | Subject)",
        {"Intercept": (16.7611, PB), "b_age": (0.66019, PB)},
        residual_sd=(1.3100, PB),
        group_sds={
            "sigma_Subject[Intercept]": (2.3270, PB),
            "sigma_Subject[age]": (0.22643, PB),
        },
    ),
    Case(
        "epil_nbinom",
        "epil.csv",
        "y ~ Base*trt + Age + Visit + (Visit | subject)",
        {
            "Intercept": (-1.33, LME4_NB),
            "b_Base": (0.88392, LME4_NB),
            "b_trt[progabide]": (-0.92997, LME4_NB),
            "b_Age": (0.47514, LME4_NB),
            "b_Visit": (-0.27016, LME4_NB),
            "b_Base_by_trt[progabide]": (0.33724, LME4_NB),
        },
        family="negbinomial",
        group_sds={"theta": (7.4702, LME4_NB)},
    ),
    Case(
        "oats",
        "oats.csv",
        "Y ~ N + V + (1 | B/V)",
        {
            "Intercept": (79.917, MASS_OATS),
            "b_N[0.2cwt]": (19.500, MASS_OATS),
            "b_N[0.4cwt]": (34.833, MASS_OATS),
            "b_N[0.6cwt]": (44.000, MASS_OATS),
            "b_V[Marvellous]": (5.2917, MASS_OATS),
            "b_V[Victory]": (-6.8750, MASS_OATS),
        },
        residual_sd=(12.750, MASS_OATS),
        group_sds={"sigma_B": (14.645, MASS_OATS), "sigma_B_by_V": (10.473, MASS_OATS)},
    ),
    Case(
        "pastes",
        "pastes.csv",
        "strength ~ 1 + (1 | batch/cask)",
        {"Intercept": (60.0533, LME4_PASTES)},
        residual_sd=(0.8234, LME4_PASTES),
        group_sds={
            "sigma_batch": (1.2874, LME4_PASTES),
            "sigma_batch_by_cask": (2.9041, LME4_PASTES),
        },
    ),
    Case(
        "machines",
        "machines.csv",
        "score ~ Machine + (1 | Worker/Machine)",
        {
            "Intercept": (52.3556, PB_MACHINES),
            "b_Machine[B]": (7.9667, PB_MACHINES),
            "b_Machine[C]": (13.9167, PB_MACHINES),
        },
        residual_sd=(0.96158, PB_MACHINES),
        group_sds={
            "sigma_Worker": (4.7811, PB_MACHINES),
            "sigma_Worker_by_Machine": (3.7295, PB_MACHINES),
        },
    ),
)
BY_NAME = {c.name: c for c in CASES}


def mlm(*args: str, cwd: Path, timeout: float = 1200) -> subprocess.CompletedProcess:
    """The real command line, in a subprocess, as a user runs it."""
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "mlm", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def posterior_of(idata, name: str):
    """Draws of `name` or `name[level]` (one level of a dimensioned parameter), flattened."""
    posterior = idata["posterior"]
    base, _, level = name.partition("[")
    values = posterior[base]
    if level:
        level = level.rstrip("]")
        (dim,) = [d for d in values.dims if d not in ("chain", "draw")]
        values = values.sel({dim: level})
    return values.to_numpy().reshape(-1)


def run_case(case: Case, parent: Path) -> dict:
    """Fit `case` through the CLI under `parent`; what the table and the tests need."""
    from mlm import Project
    from mlm.check import advice_lines, explain

    args = ["new", case.name, "--formula", case.formula, "--data", str(DATA / case.csv)]
    if case.family:
        args += ["--family", case.family]
    made = mlm(*args, cwd=parent)
    if made.returncode:
        raise RuntimeError(f"mlm new failed:\n{made.stdout}\n{made.stderr}")
    root = parent / case.name
    start = time.perf_counter()
    fitted = mlm("run", "fit", cwd=root)
    seconds = time.perf_counter() - start
    if fitted.returncode:
        raise RuntimeError(f"mlm run fit failed:\n{fitted.stdout}\n{fitted.stderr}")
    again = re.search(r"(\d+) divergent transitions at target_accept", fitted.stdout)
    checked = mlm("check", cwd=root)
    project = Project(root)
    idata = project.idata
    rows = explain(project.check(), idata, root / "model.py", root / "fit.py")
    estimates = {}
    for name, (published, _) in {
        **case.fixed,
        **({"sigma": case.residual_sd} if case.residual_sd else {}),
        **case.group_sds,
    }.items():
        draws = posterior_of(idata, name)
        estimates[name] = {
            "published": published,
            "mean": float(draws.mean()),
            "sd": float(draws.std()),
        }
    return {
        "name": case.name,
        "root": str(root),
        "seconds": seconds,
        # fit.py samples again at target_accept 0.99 when its first try diverged: after how
        # many divergences (0: it sampled once)
        "again": int(again[1]) if again else 0,
        "check_passed": checked.returncode == 0,
        "check_output": checked.stdout + checked.stderr,
        "checks": {
            r.name: {"value": r.value, "passed": r.passed, "detail": r.detail} for r in rows
        },
        "estimates": estimates,
        "advice": [text for _, text in advice_lines(rows)],
    }


def table_row(case: Case, result: dict) -> str:
    def fmt(x: float) -> str:
        return f"{x:.4g}"

    cells = []
    for name, e in result["estimates"].items():
        cells.append(f"{name} {fmt(e['published'])} / {fmt(e['mean'])} ± {fmt(e['sd'])}")
    checks = result["checks"]
    failed = [n for n, c in checks.items() if not c["passed"]]
    verdict = "pass" if result["check_passed"] else "FAIL: " + ", ".join(failed)
    again = result.get("again")
    divergences = "divergence" if again == 1 else "divergences"
    again = f", sampled again at 0.99 after {again} {divergences}" if again else ""
    numbers = (
        f"r_hat {checks['r_hat']['value']:.3f} ({checks['r_hat']['detail']}); "
        f"ESS bulk {checks['ess_bulk']['value']:.0f} ({checks['ess_bulk']['detail']}); "
        f"tail {checks['ess_tail']['value']:.0f}; "
        f"divergences {checks['divergences']['value']:.0f}"
    )
    return (
        f"| {case.name} | `{case.formula}` | {'<br>'.join(cells)} | {verdict} | {numbers} "
        f"| {result['seconds']:.0f} s{again} |"
    )


def main(names: list[str]) -> None:
    import tempfile

    chosen = [BY_NAME[n] for n in names] if names else list(CASES)
    with tempfile.TemporaryDirectory() as tmp:
        for case in chosen:
            result = run_case(case, Path(tmp))
            print(table_row(case, result), flush=True)
            for text in result["advice"]:
                print(f"  advice: {text}", flush=True)
            keep = {k: v for k, v in result.items() if k not in ("root", "check_output")}
            print(json.dumps(keep), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
