"""Make the project's own modules (data.py, model.py, ...) importable in its tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
