"""Prior scales written as numbers in a model.py, checked against the data it is built on.

`mlm new --formula` and `mlm generate model --formula` write the statistics of the data that
the default priors are scaled from (the outcome's mean and SD, each predictor's SD) into
build() as numbers, each with the expression that computed it beside it:

    y_sd = 1.395  # y.std(): the outcome's SD

Numbers rather than the expressions, so that new data values keep the model's graph and
reuse its compiled form. When the data move far from those the file was written for, the
numbers go stale: `written` finds them in the source, `captured` keeps build()'s local
arrays as it returns, and `stale` evaluates each expression on them and says which number is
off by more than a factor of FACTOR (a mean: by more than the SD written beside it).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

FACTOR = 2.0
# `NAME = NUMBER  # EXPRESSION.std()` or `.mean()`, with an optional ": what it is" after.
_LINE = re.compile(
    r"^[ \t]+([A-Za-z_]\w*) = (-?[0-9][0-9.eE+-]*)[ \t]+#[ \t]*(.+?\.(?:std|mean)\(\))(?::.*)?$",
    re.MULTILINE,
)


def written(source: str) -> dict[str, tuple[float, str]]:
    """The statistics a model.py writes as numbers: name -> (number, expression)."""
    found = {}
    for name, number, expression in _LINE.findall(source):
        try:
            found[name] = (float(number), expression.strip())
        except ValueError:
            continue
    return found


def captured(fn: Callable, call: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """`call()`'s result and the local variables of `fn` (which it calls) as it returned.

    Through sys.monitoring, for `fn`'s code alone: nothing else slows down. With every
    monitoring tool id taken (a debugger, coverage and profilers at once), no locals.
    """
    monitoring = sys.monitoring
    code = getattr(fn, "__code__", None)
    free = [i for i in (3, 4, 0, 1, 2, 5) if monitoring.get_tool(i) is None]
    if code is None or not free:
        return call(), {}
    tool, found = free[0], {}

    def returned(code, offset, value):
        found.update(sys._getframe(1).f_locals)  # the frame of fn, returning

    monitoring.use_tool_id(tool, "mlm prior scales")
    try:
        monitoring.register_callback(tool, monitoring.events.PY_RETURN, returned)
        monitoring.set_local_events(tool, code, monitoring.events.PY_RETURN)
        return call(), found
    finally:
        monitoring.set_local_events(tool, code, 0)
        monitoring.register_callback(tool, monitoring.events.PY_RETURN, None)
        monitoring.free_tool_id(tool)


def stale(numbers: dict[str, tuple[float, str]], namespace: dict[str, Any]) -> list[str]:
    """A sentence for each written number the data in `namespace` (build()'s locals) have
    moved away from; an expression that cannot be evaluated there is left alone."""
    import numpy as np

    messages = []
    for name, (value, expression) in numbers.items():
        try:
            with np.errstate(all="ignore"):
                now = float(eval(expression, {"np": np}, namespace))
        except Exception:
            continue
        if not (np.isfinite(now) and np.isfinite(value)):
            continue
        shown = f"{name} = {value:.4g} ({expression} on the data the file was written for)"
        sd = numbers.get(name.removesuffix("_mean") + "_sd") if name.endswith("_mean") else None
        if sd is not None:
            if abs(now - value) <= sd[0]:
                continue
            moved = f"{abs(now - value) / sd[0]:.1f} times {name.removesuffix('_mean')}_sd away"
        else:
            if value > 0 and now > 0 and 1 / FACTOR <= now / value <= FACTOR:
                continue
            if value == now:
                continue
            ratio = now / value if value else float("inf")
            moved = f"{ratio:.2g} times as large" if ratio > 0 else "of the other sign"
        messages.append(
            f"prior scale {shown} is {now:.4g} on these data, {moved}: the priors scaled "
            "from it may not fit them. Put the new number in the model file, or write it "
            "anew (mlm generate model --formula ... --force)"
        )
    return messages
