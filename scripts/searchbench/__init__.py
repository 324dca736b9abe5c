"""`make bench-search`: search strategies over tasks and seeds, against an oracle per task."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
