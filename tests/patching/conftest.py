"""The family tests' tiny-model builders (``tests/models/families``) serve the engine tests too."""

import sys
from pathlib import Path

FAMILIES = Path(__file__).resolve().parents[1] / "models" / "families"
if str(FAMILIES) not in sys.path:
    sys.path.insert(0, str(FAMILIES))
