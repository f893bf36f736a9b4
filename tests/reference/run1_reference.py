"""The long reference run of the example's model on the questioner's own data.

Settings: example_project/model.py (per-arm sigma_e, the questioner's priors) on
../shared/seed/run1.csv, nutpie NUTS, 8 chains x 10,000 draws after 2,000 tuning steps,
random_seed 20111130. Writes run1_reference.json beside this file: posterior mean, sd
and Monte Carlo SE of each reported quantity. Run: python tests/reference/run1_reference.py
"""

import json
import sys
from pathlib import Path

import arviz as az
import pandas as pd
import pymc as pm

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUN1 = REPO.parent / "shared" / "seed" / "run1.csv"
QUANTITIES = ["b0", "b1", "sigma_u", "sigma_e"]


def run1_as_example_data(path: Path = RUN1) -> pd.DataFrame:
    """run1.csv (i, j, treat, y) in the example's layout (subject, condition, group, y)."""
    raw = pd.read_csv(path)
    return pd.DataFrame(
        {
            "subject": range(1, len(raw) + 1),
            "condition": pd.Categorical(
                raw["treat"].map({1: "treated", 0: "control"}), categories=["control", "treated"]
            ),
            "group": raw["j"],
            "y": raw["y"],
        }
    )


def example_model(data: pd.DataFrame):
    sys.path.insert(0, str(REPO / "example_project"))
    try:
        import model
    finally:
        sys.path.pop(0)
    return model.build(data)


def main() -> None:
    with example_model(run1_as_example_data()):
        idata = pm.sample(draws=10_000, tune=2_000, chains=8, random_seed=20111130)
    table = az.summary(idata, var_names=QUANTITIES, round_to="none")
    reference = {
        "settings": "example_project/model.py on run1.csv; nutpie, 8 chains x 10,000 draws, "
        "2,000 tuning steps, random_seed 20111130",
        "quantities": {
            str(name): {
                "mean": row["mean"],
                "sd": row["sd"],
                "mcse_mean": row["mcse_mean"],
                "ess_bulk": row["ess_bulk"],
                "r_hat": row["r_hat"],
            }
            for name, row in table.iterrows()
        },
    }
    (HERE / "run1_reference.json").write_text(json.dumps(reference, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
