"""Graphics: each public function draws one figure and returns it.

mlm saves `name()`'s figure as figures/name.png. Ask for what you need by parameter
name: `idata` (the trace), `data` (the DataFrame), `model`, `project`. Editing one
function redraws only its figure; no function here ever resamples the model.
"""

import matplotlib.pyplot as plt
import numpy as np


def _interval(draws, prob=0.89):
    """Posterior mean and equal-tailed interval over chains and draws."""
    values = np.asarray(draws).reshape(-1)
    tail = (1 - prob) / 2
    return values.mean(), np.quantile(values, tail), np.quantile(values, 1 - tail)


def coefficients(idata):
    """Posterior means and 89% intervals of the model's scalar parameters."""
    posterior = idata["posterior"]
    names = ["intercept", "slope", "sigma_school", "sigma"]
    fig, axes = plt.subplots(1, len(names), figsize=(10, 2.6))
    for ax, name in zip(axes, names):
        mean, low, high = _interval(posterior[name])
        ax.hist(np.asarray(posterior[name]).reshape(-1), bins=40, color="0.75")
        ax.axvline(mean, color="k")
        ax.axvspan(low, high, color="C0", alpha=0.2)
        ax.set_title(name)
        ax.set_yticks([])
    fig.suptitle("Posterior distributions (line: mean; band: 89% interval)")
    fig.tight_layout()
    return fig


def school_effects(idata):
    """Each school's deviation from the overall intercept, sorted, with 89% intervals."""
    effects = idata["posterior"]["school_effect"]
    schools = effects["school"].to_numpy()
    stats = np.array([_interval(effects.sel(school=s)) for s in schools])
    order = np.argsort(stats[:, 0])
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(schools) + 1.2))
    y = np.arange(len(schools))
    ax.hlines(y, stats[order, 1], stats[order, 2], color="C0")
    ax.plot(stats[order, 0], y, "o", color="C0")
    ax.axvline(0, color="0.6", linestyle="--")
    ax.set_yticks(y, schools[order])
    ax.set_xlabel("school effect (score points)")
    ax.set_title("School effects, 89% intervals")
    fig.tight_layout()
    return fig


def posterior_predictive(idata, data):
    """Observed scores against 50 replicated data sets from the posterior predictive."""
    replicated = idata["posterior_predictive"]["score"].stack(sample=("chain", "draw"))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(data["score"].min() - 20, data["score"].max() + 20, 40)
    for i in np.linspace(0, replicated.sizes["sample"] - 1, 50).astype(int):
        ax.hist(replicated.isel(sample=i), bins=bins, histtype="step", color="C0", alpha=0.15)
    ax.hist(data["score"], bins=bins, histtype="step", color="k", linewidth=2, label="observed")
    ax.set_xlabel("score")
    ax.set_ylabel("pupils")
    ax.set_title("Posterior predictive check")
    ax.legend()
    fig.tight_layout()
    return fig
