"""Sampling: NUTS (nutpie, PyMC's default when installed), then what LOO and PPCs need."""

import pymc as pm


def sample(model, project):
    """Posterior draws, pointwise log-likelihood and posterior predictive draws."""
    with model:
        idata = pm.sample(draws=2000, tune=1000, chains=4, random_seed=project.seed)
        pm.compute_log_likelihood(idata)
        pm.sample_posterior_predictive(idata, extend_inferencedata=True, random_seed=project.seed)
    return idata
