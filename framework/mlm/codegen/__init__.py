"""Code generation: a `ModelSpec` and the data it describes -> the files of a project.

One concept per module, top to bottom:

- writer: `model_source(spec, data)`, the model.py text
- population, groups, residual: the lines of each kind of term (a factor coded by R's rule,
  `body.codings`; a factor in a group term as a design matrix)
- response: the outcome (a two-level text response coded 0/1, a binomial's trials) and
  each family's likelihood
- priors: a `--prior` validated against PyMC
- body: build()'s lines, data, coords and parameters as they are written
- columns: `classify_columns(spec, data)`, the data's columns as the formula uses them
- information: `group_information(spec, columns, data)`, how much each grouping's levels
  say about their effects (one-way ANOVAs): what chooses a group term's centred or
  non-centred form
- names: Python names of columns, factors and group terms in the generated code
- templates: data.py, graphics.py and tests/test_model.py rendered from template files
- formatting: `ruff format` on the generated text

It sits above `mlm.formula` (which parses text into a spec) and below the generators
(`mlm.template`); nothing here imports the pipeline.
"""

from mlm.codegen.columns import Columns, classify_columns
from mlm.codegen.formatting import formatted
from mlm.codegen.priors import prior_arguments
from mlm.codegen.templates import data_source, graphics_source, template_dir, tests_source
from mlm.codegen.writer import model_source, written_family

__all__ = [
    "Columns",
    "classify_columns",
    "data_source",
    "formatted",
    "graphics_source",
    "model_source",
    "prior_arguments",
    "template_dir",
    "tests_source",
    "written_family",
]
