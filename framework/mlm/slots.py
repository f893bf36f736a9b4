"""Slots: loading a project's modules by file path and calling its functions by convention.

A slot function asks for what it needs by parameter name, as a pytest test asks for
fixtures: `build(data)`, `sample(model, project)`, `ppc(idata, data)`. The names a slot
may ask for are fixed per slot; anything else is an error naming file, function and
parameter, raised before any expensive work starts.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mlm.errors import MlmError, UserCodeError, is_project_file
from mlm.fingerprint import digest, parse

# importlib's lazily loaded module type: reading its attributes would import it.
_LAZY_MODULE = getattr(importlib.util, "_LazyModule", ())


@dataclass(frozen=True)
class Slot:
    """One of a project's fixed files: what it must define and what it may ask for."""

    name: str
    file: str
    function: str | None  # None: graphics.py, whose every public function is a figure
    params: tuple[str, ...]  # the parameter names its functions may ask for
    purpose: str


SLOTS = {
    slot.name: slot
    for slot in (
        Slot("data", "data.py", "load", ("project",), "load() -> pandas.DataFrame"),
        Slot("model", "model.py", "build", ("data", "project"), "build(data) -> pymc.Model"),
        Slot(
            "fit",
            "fit.py",
            "sample",
            ("model", "data", "project", "variant"),
            "sample(model) -> the trace, as pm.sample returns it",
        ),
        Slot(
            "graphics",
            "graphics.py",
            None,
            ("idata", "data", "model", "project", "variant", "predict"),
            "one public function per figure, returning a matplotlib Figure",
        ),
    )
}


@contextmanager
def working_directory(root: Path) -> Iterator[None]:
    """Run the block in the project's root (slot code's relative paths start there), then
    go back to where we were, also when the block raises."""
    try:
        cwd = os.getcwd()
    except FileNotFoundError:  # the folder we were started in is gone
        cwd = None
    os.chdir(root)
    try:
        yield
    finally:
        if cwd is not None:
            try:
                os.chdir(cwd)
            except OSError:
                pass  # removed meanwhile: stay at the root


class SlotLoader:
    """Imports one project's modules, keeping them out of every other project's way.

    Slot files are imported by path under names unique to the project. Project-local
    modules they import (`import helpers`) are found on the project's root while the
    project is active and are taken out of `sys.modules` afterwards, so two projects with
    a `helpers.py` each never see each other's.
    """

    def __init__(self, root: Path):
        self.root = root
        self._prefix = f"mlm_project_{digest(str(root))}"
        self._modules: dict[str, ModuleType] = {}
        self._loaded: dict[str, ModuleType] = {}

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make the project's own modules importable for the duration of the block, and its
        root the working directory (so `pd.read_csv("data/x.csv")` works under `mlm -C` and
        from a subfolder); both are put back afterwards, whatever happens."""
        root = str(self.root)
        shadowed = {name: sys.modules[name] for name in self._modules if name in sys.modules}
        before = set(sys.modules)
        sys.modules.update(self._modules)
        sys.path.insert(0, root)
        importlib.invalidate_caches()
        try:
            with working_directory(self.root):
                yield
        finally:
            if root in sys.path:
                sys.path.remove(root)
            # Only modules imported in the block (or put back above) can be the project's;
            # skipping the rest avoids resolving thousands of paths and touching lazily
            # loaded modules (arviz registers jax as one), which would import them.
            for name in (set(sys.modules) - before) | set(self._modules):
                module = sys.modules.get(name)
                if module is None or isinstance(module, _LAZY_MODULE):
                    continue
                if is_project_file(getattr(module, "__file__", None), self.root):
                    self._modules[name] = module
                    del sys.modules[name]
            sys.modules.update(shadowed)

    def path(self, slot: str, filename: str | None = None) -> Path:
        """A slot file's path (data.py, model.py, models/NAME.py, ...), checked to exist."""
        filename = filename or SLOTS[slot].file
        path = self.root / filename
        if not path.is_file():
            raise MlmError(
                f"{filename} not found in {self.root}; mlm expects it to define "
                f"{SLOTS[slot].purpose}"
            )
        return path

    def module(self, slot: str, filename: str | None = None) -> ModuleType:
        """The imported slot module (data.py, model.py, models/NAME.py, ...), loaded once."""
        filename = filename or SLOTS[slot].file
        if filename in self._loaded:
            return self._loaded[filename]
        path = self.path(slot, filename)
        parse(path)  # a syntax error is reported with file and line, not as a traceback
        name = f"{self._prefix}_{filename.removesuffix('.py').replace('/', '_')}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        with self.active():
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                raise UserCodeError(f"{filename} (while importing it)", exc, self.root) from exc
        self._loaded[filename] = module
        return module

    def function(self, slot: str, name: str | None = None, filename: str | None = None) -> Callable:
        """A function of a slot module (its own by default: load, build, sample), checked to
        exist and to ask only for names mlm can give it."""
        filename = filename or SLOTS[slot].file
        name = name or SLOTS[slot].function
        fn = getattr(self.module(slot, filename), name, None)
        if not callable(fn):
            what = "has no function" if fn is None else "defines a non-function"
            raise MlmError(
                f"{filename} {what} {name}(); mlm expects {filename} to define "
                f"{SLOTS[slot].purpose}"
            )
        check_params(filename, name, _signature_params(fn), SLOTS[slot].params)
        return fn

    def call(
        self,
        slot: str,
        fn: Callable,
        providers: dict[str, Callable[[], Any]],
        filename: str | None = None,
    ) -> Any:
        """Call a slot function with each parameter it names, shown as the user's own error."""
        kwargs = {}
        for param in inspect.signature(fn).parameters.values():
            if param.name in providers and param.kind not in (
                param.VAR_POSITIONAL,
                param.VAR_KEYWORD,
            ):
                kwargs[param.name] = providers[param.name]()
        where = f"{filename or SLOTS[slot].file}, in {fn.__name__}()"
        with self.active():
            try:
                return fn(**kwargs)
            except Exception as exc:
                raise UserCodeError(where, exc, self.root) from exc


def _signature_params(fn: Callable) -> list[tuple[str, bool]]:
    """(name, required) for each named parameter of `fn`."""
    result = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.kind is param.POSITIONAL_ONLY:
            raise MlmError(
                f"{fn.__name__}(): positional-only parameters cannot be injected by name"
            )
        result.append((param.name, param.default is param.empty))
    return result


def check_params(
    filename: str, function: str, params: list[tuple[str, bool]], available: tuple[str, ...]
) -> None:
    """Raise, pytest-style, when a function asks for a name mlm cannot give it."""
    for name, required in params:
        if name not in available and required:
            raise MlmError(
                f"{filename}: {function}() asks for parameter '{name}', which mlm does not "
                f"know.\n  available here: {', '.join(available)}"
            )
