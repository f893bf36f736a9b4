"""`mlm watch`: rerun what became stale on every save, and show it on a local page.

`loop` watches the project's slot files, its own modules, `data/` and mlm.toml (with
watchfiles) and runs what became stale after each change; `server` serves a page on
127.0.0.1 with the status table, every figure and the last error, which refreshes itself
(server-sent events, polling as a fallback) when a run ends. `state` is what the two share.
"""

from __future__ import annotations

from mlm.watch.loop import watch

__all__ = ["watch"]
