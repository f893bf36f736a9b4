"""The stages data -> model -> fit -> graphics (-> compare): one class per stage.

Each stage has the same small interface (`base.Stage`: inputs -> key -> status -> run ->
value); a `Session` holds one object per stage for one command; `pipeline` runs them
make-style across the project's variants.
"""

from mlm.stages.base import STAGES, Progress, StageStatus, explain, library_versions
from mlm.stages.session import Session

__all__ = ["STAGES", "Progress", "Session", "StageStatus", "explain", "library_versions"]
