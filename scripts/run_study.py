"""Run a study: `python scripts/run_study.py [SPEC] [options]`, the same as `hpsearch run`.

With no SPEC it runs studies/mnist_lr_wd_init.toml into sqlite:///studies/hpsearch.db;
running it again continues that study up to its trial budget.
"""

import sys

from hpsearch.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
