"""Run the default study: `python scripts/run_study.py [options]`.

A thin wrapper over the `hpsearch` command. Until the study runner lands it trains
the default network (He-initialised 784-[100]x6-10 ReLU net, SGD lr 0.1, 20 epochs on
mnist-5k) once and prints its validation accuracy per epoch; options are those of
`hpsearch train` and override these defaults.
"""

import sys

from hpsearch.cli import main

DEFAULT_NETWORK = ["--data", "mnist-5k", "--hidden", "100x6", "--init", "he", "--lr", "0.1"]

if __name__ == "__main__":
    sys.exit(main(["train", *DEFAULT_NETWORK, *sys.argv[1:]]))
