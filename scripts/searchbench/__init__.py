"""`make bench-search`: search strategies over tasks and seeds, against an oracle per task."""
