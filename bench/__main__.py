"""`python -m bench speed [...]` and `python -m bench search [...]`: the first word picks the
benchmark, the rest are its options (`python -m bench speed --help` lists them). Each
benchmark's command line is its own `cli` module; this one only dispatches, so that one
entry point runs both and `make bench` and `make bench-search` call it alike."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "speed": ("bench.speed.cli", "the training step and study throughput (make bench)"),
    "search": ("bench.search.cli", "search strategies against an oracle (make bench-search)"),
}


def usage() -> str:
    lines = ["usage: python -m bench {speed,search} [options]", ""]
    lines += [f"  {name:<8} {about}" for name, (_, about) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark named by the first argument with the rest; exit status 2 and the
    usage on stderr when it names none."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if not argv or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
