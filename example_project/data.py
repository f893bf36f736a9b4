"""Data of a partially clustered trial: treated subjects in therapy groups, controls alone.

One row per subject: `subject`, `condition` ("treated" or "control"), `group` and the
outcome `y`. Treated subjects share a therapy group (1..n_groups); each control has a
group of its own (n_groups+1, ...), as SAS PROC MIXED/MCMC and lme4 users code
unclustered subjects. The shipped data/partially_clustered.csv is simulate() at the seed
and truth recorded in TRUTH below.
"""

from pathlib import Path

import numpy as np
import pandas as pd

DATA_FILE = Path(__file__).parent / "data" / "partially_clustered.csv"

# The values data/partially_clustered.csv was simulated from (rng seed 20111130).
TRUTH = {
    "b0": 0.0,
    "b1": 0.3,
    "sigma_u": 0.5,
    "sigma_e_treated": 0.8,
    "sigma_e_control": 1.1,
}
SEED = 20111130


def load():
    """The trial's 200 subjects, with condition as an ordered category (control first)."""
    data = pd.read_csv(DATA_FILE)
    data["condition"] = pd.Categorical(data["condition"], categories=["control", "treated"])
    return data


def simulate(
    rng,
    n_groups=10,
    group_size=10,
    n_control=100,
    b0=TRUTH["b0"],
    b1=TRUTH["b1"],
    sigma_u=TRUTH["sigma_u"],
    sigma_e_treated=TRUTH["sigma_e_treated"],
    sigma_e_control=TRUTH["sigma_e_control"],
):
    """A trial of the same layout as the shipped CSV, drawn from the given truth.

    y = b0 + b1*treated + u[group]*treated + e, u ~ N(0, sigma_u), and e ~ N(0, sigma_e)
    with sigma_e_treated in the treated arm and sigma_e_control in the control arm.
    """
    n_treated = n_groups * group_size
    group = np.concatenate(
        [np.repeat(np.arange(1, n_groups + 1), group_size), n_groups + 1 + np.arange(n_control)]
    )
    treated = np.concatenate([np.ones(n_treated, int), np.zeros(n_control, int)])
    u = rng.normal(0.0, sigma_u, size=n_groups)
    group_effect = np.where(treated == 1, u[np.minimum(group, n_groups) - 1], 0.0)
    sigma_e = np.where(treated == 1, sigma_e_treated, sigma_e_control)
    y = b0 + b1 * treated + group_effect + rng.normal(0.0, 1.0, size=group.size) * sigma_e
    return pd.DataFrame(
        {
            "subject": np.arange(1, group.size + 1),
            "condition": pd.Categorical(
                np.where(treated == 1, "treated", "control"), categories=["control", "treated"]
            ),
            "group": group,
            "y": y.round(4),
        }
    )


if __name__ == "__main__":
    # Regenerate the shipped CSV: python data.py
    simulate(np.random.default_rng(SEED)).to_csv(DATA_FILE, index=False)
