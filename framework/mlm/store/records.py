"""One record type for everything the store remembers about a result.

Each stage's result (the data, a built model, a trace, a figure, a comparison, a study
point) is described by a `Record`: the key it was made under, the inputs that key hashes
(so `mlm status` can say which one changed), one timestamp, and details of its own kind
(rows and columns of the data, a trace's diagnostics, a figure's file). On disk a record
is a flat JSON object, readable without mlm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Timestamp names written by mlm before records had one field; read as `made_at`.
_LEGACY_TIMESTAMPS = ("created_at", "loaded_at", "built_at", "drawn_at")
_FIELDS = ("key", "inputs", "made_at")


def now() -> str:
    """The current time in UTC, to the second, as ISO 8601 text."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Record:
    """What the store keeps about one result: key, inputs, when, and its own details."""

    key: str
    inputs: dict = field(default_factory=dict)
    made_at: str = field(default_factory=now)
    details: dict = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        """A detail of this record (`record.get("rows")`)."""
        return self.details.get(name, default)

    def with_details(self, **details: Any) -> Record:
        return Record(self.key, self.inputs, self.made_at, {**self.details, **details})

    def to_json(self) -> dict:
        return {**self.details, "key": self.key, "inputs": self.inputs, "made_at": self.made_at}

    @classmethod
    def from_json(cls, content: dict | None) -> Record | None:
        """The record a JSON object holds, or None when it holds none (no key)."""
        if not content or not isinstance(content.get("key"), str):
            return None
        made_at = content.get("made_at")
        for legacy in _LEGACY_TIMESTAMPS:
            made_at = made_at or content.get(legacy)
        details = {
            k: v for k, v in content.items() if k not in _FIELDS and k not in _LEGACY_TIMESTAMPS
        }
        inputs = content.get("inputs") if isinstance(content.get("inputs"), dict) else {}
        return cls(content["key"], inputs, made_at or "?", details)
