"""Small helpers for the words mlm prints: "1 row", "2 rows"."""

from __future__ import annotations

import difflib


def plural(count: int, word: str, many: str | None = None) -> str:
    """`count` and `word`, in the plural unless `count` is 1: "1 row", "120 rows"."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def closest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """The choice that `word` most likely misspells, or None when none is close."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None
