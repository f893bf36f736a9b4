"""Data: load() returns the analysis data set as a pandas DataFrame.

The shipped data/scores.csv holds test scores of pupils in eight schools, made by
simulate() below from known values, so you can check that the model recovers them.
Replace load() with your own reading code; mlm re-runs everything downstream only when
the DataFrame it returns changes.
"""

from pathlib import Path

import numpy as np
import pandas as pd

DATA_FILE = Path(__file__).parent / "data" / "scores.csv"


def load():
    """The pupils' scores: one row per pupil, with school, weekly study hours and score."""
    data = pd.read_csv(DATA_FILE, dtype={"school": "category"})
    return data


def simulate(
    rng,
    n_schools=8,
    pupils_per_school=15,
    intercept=60.0,
    slope=2.0,
    sigma_school=6.0,
    sigma=8.0,
):
    """Scores of the same shape as data/scores.csv, made from known parameter values."""
    school = np.repeat(np.arange(n_schools), pupils_per_school)
    hours = rng.uniform(0, 10, size=school.size).round(1)
    school_effect = rng.normal(0, sigma_school, size=n_schools)
    score = intercept + slope * hours + school_effect[school] + rng.normal(0, sigma, school.size)
    return pd.DataFrame(
        {
            "pupil": np.arange(1, school.size + 1),
            "school": pd.Categorical([f"school_{s + 1}" for s in school]),
            "hours": hours,
            "score": score.round(1),
        }
    )
