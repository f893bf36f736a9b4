"""The model stage: what a variant's build(data) returns, keyed by its code and the data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlm import scales
from mlm.errors import MlmError, UserCodeError
from mlm.fingerprint import code_fingerprints
from mlm.stages.base import MODEL_LIBRARIES, Stage, StageStatus, explain, library_versions
from mlm.stages.validate import check_model, missing_values, reading, text_in_numbers
from mlm.store import Record

if TYPE_CHECKING:
    from mlm.stages.session import Session


class ModelStage(Stage):
    """A variant's pymc.Model: built at most once per session, its record in the store."""

    label = "model"

    def __init__(self, session: Session, variant: str):
        super().__init__()
        self.session = session
        self.variant = variant
        self.store = session.layout.store
        self.file = session.layout.model_file(variant)

    def inputs(self) -> dict:
        def compute() -> dict:
            path = self.session.slots.path("model", self.file)
            inputs = code_fingerprints(path, self.session.layout.root)
            inputs["data"] = self.session.data().key()
            inputs.update(library_versions(MODEL_LIBRARIES))
            return inputs

        return self._once("inputs", compute)

    def value(self):
        """The pymc.Model that build() returns (checked); recorded as built."""

        def compute():
            slots = self.session.slots
            fn = slots.function("model", filename=self.file)
            self.session.say("model", "building", self.variant)
            providers = self.session.providers("model", self.variant)
            read: set = set()
            if "data" in providers:
                data, read = reading(self.session.data().value())
                providers["data"] = lambda: data
            path = slots.path("model", self.file)
            numbers = scales.written(path.read_text()) if path.is_file() else {}
            try:
                if numbers:  # build()'s arrays, to check the numbers against
                    model, local = scales.captured(
                        fn, lambda: slots.call("model", fn, providers, self.file)
                    )
                else:
                    model, local = slots.call("model", fn, providers, self.file), {}
            except UserCodeError as exc:
                data = self.session.data().loaded()
                if isinstance(exc.original, KeyError) and data is not None:
                    columns = ", ".join(map(str, data.columns))
                    raise MlmError(f"{exc}\n  the data's columns: {columns}") from exc
                if data is not None and (text := text_in_numbers(data)):
                    raise MlmError(
                        f"{exc}\n  text in a column of numbers: {text}; fix those values in data.py"
                    ) from exc
                if (
                    data is not None
                    and (missing := missing_values(data))
                    and not _names_every_missing_column(str(exc.original), data)
                ):
                    # pm.Data refuses NaN; say where they are and what to do (unless build()'s
                    # own error says so already, as a generated model.py's does).
                    raise MlmError(
                        f"{exc}\n  the data have missing (NaN) values: {missing}; drop or fix "
                        "those rows in data.py"
                    ) from exc
                raise
            check_model(model, self.file, self.session.data().loaded(), read)
            for message in scales.stale(numbers, local):
                self.session.say("model", f"warning: {self.file}: {message}", self.variant)
            details = {
                "free_variables": [v.name for v in model.free_RVs],
                "observed_variables": [v.name for v in model.observed_RVs],
                "coords": {k: len(v) for k, v in model.coords.items() if v is not None},
            }
            self.store.write(
                self.store.paths.model_record(self.variant),
                Record(self.key(), self.inputs(), details=details),
            )
            return model

        return self._once("value", compute)

    def status(self) -> StageStatus:
        key = self.key()
        record = self.store.read(self.store.paths.model_record(self.variant))
        if record and record.key == key:
            return self.row("fresh", "built", key)
        if self.store.has_trace(self.variant, self.session.fit(self.variant).key()):
            return self.row("fresh", "its trace is cached", key)
        if record is None:
            return self.row("missing", "never built", key)
        return self.row("stale", explain(self.inputs(), record.inputs), key)

    def run(self, force: bool = False) -> StageStatus:
        status = self.status()
        if status.fresh and not force:
            return status
        model = self.value()
        names = ", ".join(v.name for v in model.free_RVs)
        self.session.say("model", f"built: {names}", self.variant)
        return self.row("fresh", "built", self.key(), ran=True)


def _names_every_missing_column(message: str, data) -> bool:
    """Whether an error's text names, quoted, each column of `data` that has NaN."""
    try:
        columns = data.columns[data.isna().any().to_numpy()]
    except (AttributeError, TypeError):
        return False
    return len(columns) > 0 and all(f"'{column}'" in message for column in columns)
