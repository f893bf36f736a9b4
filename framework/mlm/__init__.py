"""mlm: convention over configuration for Bayesian multilevel-model analyses on PyMC.

import mlm
project = mlm.Project("example_project")
project.run()            # data -> model -> fit -> graphics, only what is stale
project.idata            # the cached trace (an xarray DataTree)
"""

from mlm.errors import MlmError
from mlm.project import Project
from mlm.version import __version__

__all__ = ["MlmError", "Project", "__version__"]
