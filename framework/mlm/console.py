"""`mlm console`: IPython (or Python's own REPL) with the project ready, as `rails console`.

`project` is the `mlm.Project`; `data`, `model` and `idata` are loaded the first time
they are used, from the cache, and nothing is ever sampled unless asked: `idata` is the
cached trace (the latest one, with a warning, when it is stale); `project.run("fit")`
samples. `np`, `pd`, `pm`, `az` and `plt` are imported on first use too.
"""

from __future__ import annotations

import code
import importlib
import sys
from collections.abc import Callable
from typing import Any

from mlm.errors import MlmError
from mlm.project import Project

LIBRARIES = {
    "np": "numpy",
    "pd": "pandas",
    "pm": "pymc",
    "az": "arviz",
    "plt": "matplotlib.pyplot",
}


class LazyNamespace(dict):
    """A namespace whose names in `loaders` are made on first use, then kept.

    The REPL looks top-level names up through this mapping, so `idata` costs nothing
    until it is typed."""

    def __init__(self, loaders: dict[str, Callable[[], Any]], **values: Any):
        super().__init__(**values)
        self.loaders = loaders

    def __missing__(self, name: str) -> Any:
        loader = self.loaders.get(name)
        if loader is None:
            raise KeyError(name)
        value = loader()
        self[name] = value
        return value

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or name in self.loaders


def cached_trace(project: Project, variant: str | None = None, warn=print):
    """The variant's trace from the cache, never sampled: the fresh one, else the latest
    with a warning, else an error saying how to sample one."""
    variant = variant or project.variants()[0]
    store = project.store
    key = project.fit_key(variant)
    if store.has_trace(variant, key):
        return store.load_trace(variant, key)
    latest = store.latest_key(variant)
    if latest is not None and store.has_trace(variant, latest):
        warn(
            f"warning: the trace of {project.model_file(variant)} is stale; this is the latest "
            "(project.run('fit') samples a fresh one)"
        )
        return store.load_trace(variant, latest)
    raise MlmError(
        f"no trace of {project.model_file(variant)} in the cache yet; project.run('fit') "
        "samples one (nothing is sampled unless you ask)"
    )


def namespace(project: Project, variant: str | None = None, warn=print) -> LazyNamespace:
    """What the console starts with: `project`, `mlm`, and the lazily loaded names."""
    import mlm

    chosen = variant or project.variants()[0]
    loaders: dict[str, Callable[[], Any]] = {
        "data": lambda: project.data,
        "model": lambda: project.model_of(chosen),
        "idata": lambda: cached_trace(project, chosen, warn),
    }
    for alias, module in LIBRARIES.items():
        loaders[alias] = lambda module=module: importlib.import_module(module)
    return LazyNamespace(loaders, project=project, mlm=mlm, __name__="__console__")


def banner(project: Project, variant: str | None) -> str:
    which = f" (model: {variant})" if variant else ""
    return (
        f"mlm console: {project.name} in {project.root}{which}\n"
        "  project, data, model, idata are ready: each is loaded on first use, from the "
        "cache;\n  nothing is sampled unless you ask (project.run('fit')). "
        "np, pd, pm, az, plt too."
    )


def start(project: Project, variant: str | None = None, plain: bool = False) -> None:
    """Run the REPL until the user leaves it: IPython when installed (and not `plain`)."""
    import os

    if not sys.stdin.isatty():
        os.environ.setdefault("MPLBACKEND", "Agg")  # driven by a script: no windows
    warn = lambda text: print(text, file=sys.stderr)  # noqa: E731
    names = namespace(project, variant, warn)
    text = banner(project, variant)
    if not plain:
        try:
            import IPython
            from traitlets.config import Config
        except ImportError:
            plain = True
        else:
            config = Config()
            config.TerminalInteractiveShell.banner2 = text + "\n"
            # Run inside the shell as it starts (short_errors needs the shell), leaving no
            # name behind in the user's namespace.
            config.InteractiveShellApp.exec_lines = [
                "__import__('mlm.console').console.short_errors(get_ipython())"
            ]
            IPython.start_ipython(argv=[], user_ns=names, config=config)
            return
    try:
        import readline  # noqa: F401  (line editing and history in the plain REPL)
    except ImportError:
        pass
    Console(names).interact(banner=text, exitmsg="")


def explain(error: MlmError) -> str:
    """How the console shows mlm's own errors: the message, as the command line does
    (they say what to change; a traceback through mlm's code would bury that)."""
    return f"error: {error}"


def short_errors(shell) -> None:
    """IPython shows an MlmError as its message; every other error as usual."""

    def handler(shell, kind, error, tb, tb_offset=None):
        print(explain(error), file=sys.stderr)

    shell.set_custom_exc((MlmError,), handler)


class Console(code.InteractiveConsole):
    """Python's own REPL, showing an MlmError as its message."""

    def showtraceback(self) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, MlmError):
            self.write(explain(error) + "\n")
        else:
            super().showtraceback()
