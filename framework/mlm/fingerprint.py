"""Fingerprints: what a stage's result depends on, reduced to short hashes.

Code is fingerprinted by its normalized syntax tree, so comments, blank lines, docstrings
and formatting do not count, while any change to what the code does does. A slot's
fingerprint covers the project-local modules it imports, followed transitively.
Data is fingerprinted by content, so a refactor of data.py that yields the same
DataFrame changes nothing downstream.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from mlm.errors import MlmError


def digest(*parts: object) -> str:
    """A short, stable hash of JSON-serializable parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes (shortened)."""
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


def parse(path: Path) -> ast.Module:
    """The syntax tree of a Python file, or an MlmError naming the file and line."""
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MlmError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise MlmError(f"{path}, line {exc.lineno}: syntax error: {exc.msg}") from None


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def normalized(node: ast.AST) -> str:
    """The syntax tree as text, without positions or docstrings."""
    return ast.dump(_strip_docstrings(node), annotate_fields=False, include_attributes=False)


def _imported_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _local_module_file(name: str, root: Path) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def local_imports(path: Path, root: Path) -> list[Path]:
    """The project-local modules that `path` imports, directly or through each other."""
    seen: dict[Path, None] = {}
    pending = [path]
    while pending:
        current = pending.pop()
        for name in sorted(_imported_names(parse(current))):
            parts = name.split(".")
            # `import a.b` also runs a/__init__.py: count every prefix.
            for i in range(1, len(parts) + 1):
                found = _local_module_file(".".join(parts[:i]), root)
                if found and found != path and found not in seen:
                    seen[found] = None
                    pending.append(found)
    return sorted(seen)


def code_fingerprints(path: Path, root: Path) -> dict[str, str]:
    """{file name: fingerprint} for a slot file and each project-local module it imports."""
    files = [path, *local_imports(path, root)]
    return {f.relative_to(root).as_posix(): digest(normalized(parse(f))) for f in files}


@dataclass(frozen=True)
class FigureFunction:
    """A public function of graphics.py: its name, parameters and own fingerprint."""

    name: str
    params: tuple[str, ...]
    fingerprint: str
    line: int


def figure_functions(path: Path) -> tuple[list[FigureFunction], str]:
    """The figure functions of graphics.py, and the fingerprint of everything else in it.

    Each public top-level function is a figure. The rest of the module (imports,
    constants, private helpers) is shared context: a change there re-renders all figures,
    a change inside one figure function re-renders only that figure.
    """
    tree = parse(path)
    figures, context = [], []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            params = tuple(a.arg for a in (*node.args.posonlyargs, *node.args.args))
            figures.append(FigureFunction(node.name, params, digest(normalized(node)), node.lineno))
        else:
            context.append(normalized(node))
    return figures, digest(context)


def data_fingerprint(frame) -> str:
    """A content hash of a DataFrame: values, index, column names and dtypes."""
    import pandas as pd

    try:
        rows = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    except TypeError as exc:
        raise MlmError(
            f"data.py: load() returned a DataFrame that cannot be hashed: {exc}"
        ) from None
    sha = hashlib.sha256(rows.tobytes())
    sha.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    return sha.hexdigest()[:16]
