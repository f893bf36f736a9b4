"""Figures of the trial, one function each.

mlm draws each figure for each model variant, into figures/VARIANT/NAME.png: model.py
(a residual SD per condition) and models/shared_sigma.py (one shared residual SD).
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

PROB = 0.89  # ArviZ's default interval width


def _draws(da):
    """All posterior draws of a scalar quantity, chains pooled."""
    return np.asarray(da).reshape(-1)


def _interval(values):
    tail = (1 - PROB) / 2
    return np.mean(values), *np.quantile(values, [tail, 1 - tail])


def _sigma_e(post, condition):
    """Draws of the residual SD in one arm (the same draws in both when it is shared)."""
    sigma_e = post["sigma_e"]
    return _draws(sigma_e.sel(condition=condition) if "condition" in sigma_e.dims else sigma_e)


def forest(idata):
    """Fixed effects and standard deviations: posterior means with 89% intervals."""
    post = idata["posterior"]
    rows = [
        ("b0 (control mean)", _draws(post["b0"])),
        ("b1 (treatment effect)", _draws(post["b1"])),
        ("sigma_u (between therapy groups)", _draws(post["sigma_u"])),
        ("sigma_e (control)", _sigma_e(post, "control")),
        ("sigma_e (treated)", _sigma_e(post, "treated")),
    ]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for y, (_label, values) in enumerate(reversed(rows)):
        mean, low, high = _interval(values)
        ax.hlines(y, low, high, color="C0", linewidth=2)
        ax.plot(mean, y, "o", color="C0")
    ax.set_yticks(range(len(rows)), [label for label, _ in reversed(rows)])
    ax.axvline(0, color="0.6", linestyle="--", linewidth=1)
    ax.set_xlabel("outcome units")
    ax.set_title(f"Posterior means and {PROB:.0%} intervals")
    fig.tight_layout()
    return fig


def group_effects(idata):
    """Therapy-group effects u_j (caterpillar plot), sorted by posterior mean."""
    u = idata["posterior"]["u"]
    groups = u["group"].to_numpy()
    stats = np.array([_interval(_draws(u.sel(group=g))) for g in groups])
    order = np.argsort(stats[:, 0])
    fig, ax = plt.subplots(figsize=(6, 4))
    y = np.arange(len(groups))
    ax.hlines(y, stats[order, 1], stats[order, 2], color="C1", linewidth=2)
    ax.plot(stats[order, 0], y, "o", color="C1")
    ax.axvline(0, color="0.6", linestyle="--", linewidth=1)
    ax.set_yticks(y, [f"group {g}" for g in groups[order]])
    ax.set_xlabel("u_j: deviation of the group's mean from b0 + b1 (outcome units)")
    ax.set_title(f"Therapy-group effects, {PROB:.0%} intervals")
    fig.tight_layout()
    return fig


def ppc_by_condition(idata, data):
    """Observed outcome density in each arm against 100 posterior predictive replicates."""
    y_rep = idata["posterior_predictive"]["y"].stack(sample=("chain", "draw")).to_numpy()
    grid = np.linspace(data["y"].min() - 1.5, data["y"].max() + 1.5, 200)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    picks = np.linspace(0, y_rep.shape[1] - 1, 100).astype(int)
    for ax, condition in zip(axes, ["control", "treated"], strict=True):
        rows = (data["condition"] == condition).to_numpy()
        for i in picks:
            ax.plot(grid, _density(y_rep[rows, i], grid), color="C0", alpha=0.08)
        ax.plot(grid, _density(data["y"].to_numpy()[rows], grid), color="k", linewidth=2)
        ax.set_title(f"{condition} (n = {rows.sum()})")
        ax.set_xlabel("y")
    axes[0].set_ylabel("density")
    axes[0].plot([], [], color="C0", label="replicated")
    axes[0].plot([], [], color="k", label="observed")
    axes[0].legend(loc="upper left", frameon=False)
    fig.suptitle("Posterior predictive check by condition")
    fig.tight_layout()
    return fig


def sigma_e_difference(idata):
    """Posterior of sigma_e[treated] - sigma_e[control], the third question's answer."""
    post = idata["posterior"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    if "condition" not in post["sigma_e"].dims:
        # One residual SD for both arms: show it, since the difference is 0 by construction.
        shared = _draws(post["sigma_e"])
        ax.hist(shared, bins=60, color="0.7", density=True)
        ax.set_xlabel("sigma_e, shared by both arms (outcome units)")
        ax.set_yticks([])
        ax.set_title("One residual SD for both conditions (no difference to estimate)")
        fig.tight_layout()
        return fig
    diff = _sigma_e(post, "treated") - _sigma_e(post, "control")
    mean, low, high = _interval(diff)
    ax.hist(diff, bins=60, color="0.7", density=True)
    ax.axvline(0, color="k", linestyle="--", linewidth=1)
    ax.axvspan(low, high, color="C0", alpha=0.2, label=f"{PROB:.0%} interval")
    ax.axvline(mean, color="C0", label=f"mean {mean:.2f}")
    ax.set_xlabel("sigma_e[treated] - sigma_e[control] (outcome units)")
    ax.set_yticks([])
    ax.set_title(f"Residual SD difference; P(treated < control) = {np.mean(diff < 0):.3f}")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


# Two new patients: a control, and a treated patient in a therapy group the trial never had
# (group numbers 1..110 are taken, so 111 and 112 are new).
NEW_PATIENTS = pd.DataFrame({"condition": ["control", "treated"], "group": [111, 112]})


def new_patient(predict):
    """Expected outcome of a new control and of a patient in a new therapy group, and the
    difference: b1 plus a new group's effect, drawn from N(0, sigma_u)."""
    expected = predict(NEW_PATIENTS, kind="mean")  # draws (chain, draw, row)
    control, treated = (_draws(expected.isel(row=i)) for i in range(2))
    outcome = predict(NEW_PATIENTS, kind="response")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    grid = np.linspace(-3.5, 4, 300)
    for i, (label, values) in enumerate(
        [("control", control), ("treated, new therapy group", treated)]
    ):
        mean, low, high = _interval(values)
        axes[0].plot(
            grid,
            _density(values, grid),
            color=f"C{i}",
            linewidth=2,
            label=f"E[y], {label}: {mean:.2f} [{low:.2f}, {high:.2f}]",
        )
        new_y = _draws(outcome.isel(row=i))
        axes[0].plot(
            grid,
            _density(new_y, grid),
            color=f"C{i}",
            linestyle=":",
            label=f"a new patient's y, {label}",
        )
    axes[0].set_xlabel("outcome")
    axes[0].set_yticks([])
    axes[0].legend(
        frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2
    )
    axes[0].set_title(f"Expected outcome ({PROB:.0%} intervals) and a new patient's")
    diff = treated - control
    mean, low, high = _interval(diff)
    axes[1].hist(diff, bins=60, color="0.7", density=True)
    axes[1].axvline(0, color="k", linestyle="--", linewidth=1)
    axes[1].axvspan(low, high, color="C0", alpha=0.2, label=f"{PROB:.0%} interval")
    axes[1].axvline(mean, color="C0", label=f"mean {mean:.2f}")
    axes[1].set_xlabel("E[y | new therapy group] - E[y | control]")
    axes[1].set_yticks([])
    axes[1].set_title(f"Benefit of a new therapy group; P(> 0) = {np.mean(diff > 0):.2f}")
    axes[1].legend(frameon=False)
    fig.tight_layout()
    return fig


def _density(values, grid):
    """A Gaussian kernel density estimate (Scott's bandwidth) evaluated on `grid`."""
    values = np.asarray(values, dtype=float)
    bandwidth = 1.06 * values.std() * values.size ** (-1 / 5)
    z = (grid[:, None] - values[None, :]) / bandwidth
    return np.exp(-0.5 * z**2).sum(axis=1) / (values.size * bandwidth * np.sqrt(2 * np.pi))
