"""The `hpsearch` command. The library logs; this module is the only one that prints.

Every user-facing problem arrives here as an `HpsearchError` and leaves as one line on
stderr with exit code 2; argparse's own usage errors also exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import numpy as np

from hpsearch import __version__
from hpsearch.data import DATASETS
from hpsearch.errors import HpsearchError
from hpsearch.nn import ACTIVATIONS, INIT_RULES, OPTIMIZERS

EXIT_USAGE = 2


def parse_hidden_sizes(text: str) -> list[int]:
    """'100x6' or '100,100,50' -> a list of layer widths."""
    try:
        if "x" in text:
            width, depth = text.split("x")
            sizes = [int(width)] * int(depth)
        else:
            sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"hidden sizes must look like 100x6 or 100,100,50, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive, got {text!r}")
    return sizes


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train one network configuration and print its curves",
        description="Train one MultiLayerNet on a data set and print per-epoch accuracy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--data", default="mnist-5k", help=f"one of {', '.join(DATASETS)}")
    train.add_argument(
        "--train-size", type=int, default=None, help="examples before the validation split"
    )
    train.add_argument("--validation-fraction", type=float, default=0.2)
    train.add_argument(
        "--hidden", type=parse_hidden_sizes, default=[100] * 6, help="e.g. 100x6 or 100,50"
    )
    train.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    train.add_argument("--init", choices=INIT_RULES, default="he")
    train.add_argument("--init-scale", type=float, default=1.0, help="gain on the init rule's std")
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--batchnorm", action="store_true")
    train.add_argument("--dropout", type=float, default=0.0)
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd")
    train.add_argument(
        "--lr", type=float, default=None, help="default: the book's for the optimizer"
    )
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--batch-size", type=int, default=100)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--float64", action="store_true", help="train in float64 instead of float32")
    train.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hpsearch.data import load
    from hpsearch.nn import MultiLayerNet, make_optimizer
    from hpsearch.train import fit

    split = load(
        args.data,
        train_size=args.train_size,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
    )
    rng = np.random.default_rng(args.seed)
    net = MultiLayerNet(
        split.input_size,
        args.hidden,
        split.n_classes,
        activation=args.activation,
        init=args.init,
        init_scale=args.init_scale,
        weight_decay=args.weight_decay,
        batchnorm=args.batchnorm,
        dropout=args.dropout,
        dtype=np.float64 if args.float64 else np.float32,
        rng=rng,
    )
    optimizer = make_optimizer(args.optimizer, args.lr)
    print(f"{split}\n{net}, {args.optimizer} lr={optimizer.lr:g}, batch {args.batch_size}")
    print(f"{'epoch':>5}  {'train loss':>10}  {'train acc':>9}  {'val acc':>7}  {'seconds':>7}")
    # No bar on a pipe, and none at all for a run that fails at once.
    with tqdm(
        total=args.epochs, unit="epoch", leave=False, file=sys.stderr, disable=None, delay=1.0
    ) as bar:

        def report(epoch: int, history) -> None:
            bar.update(1)
            tqdm.write(
                f"{epoch:>5}  {history.train_loss[-1]:>10.4f}  {history.train_accuracy[-1]:>9.4f}"
                f"  {history.val_accuracy[-1]:>7.4f}  {history.seconds[-1]:>7.3f}"
            )

        history = fit(
            net,
            optimizer,
            split,
            epochs=args.epochs,
            batch_size=args.batch_size,
            rng=rng,
            on_epoch=report,
        )
    best = int(np.argmax(history.val_accuracy))
    print(
        f"final validation accuracy {history.val_accuracy[-1]:.4f} "
        f"(best {history.val_accuracy[best]:.4f} at epoch {best + 1}, "
        f"{sum(history.seconds):.1f} s)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpsearch",
        description="Hyperparameter search for from-scratch NumPy networks.",
    )
    parser.add_argument("--version", action="version", version=f"hpsearch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except HpsearchError as exc:
        print(f"hpsearch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hpsearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
