"""Sampling: NUTS (nutpie, PyMC's default when installed), then what LOO and PPCs need."""

import pymc as pm


def sample(model, project):
    """Posterior draws, and posterior predictive draws for 200 of them."""
    with model:
        idata = pm.sample(draws=2000, tune=1000, chains=4, random_seed=project.seed)
        # Posterior predictive draws for 200 of the 8,000 posterior draws (every 40th draw of
        # each chain): plenty for the predictive checks in graphics.py.
        thinned = idata["posterior"].to_dataset().isel(draw=slice(None, None, 40))
        predictive = pm.sample_posterior_predictive(thinned, random_seed=project.seed)
        idata["posterior_predictive"] = predictive["posterior_predictive"]
        # No pointwise log-likelihood is stored: `mlm run compare` computes PSIS-LOO from
        # the model a chunk of rows at a time (add pm.compute_log_likelihood(idata) to keep
        # it in the trace; compare then uses it).
    return idata
