"""The subcommands that train networks outside a study: `train` (one configuration, its
per-epoch curves) and `experiment` (a reference experiment's figures and table)."""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

import numpy as np

from hpsearch.data import DATASETS
from hpsearch.errors import HpsearchError
from hpsearch.nn import ACTIVATIONS, INIT_RULES, OPTIMIZERS


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


def add_train_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train one network configuration and print its curves",
        description="Train one MultiLayerNet on a data set and print per-epoch accuracy.",
    )
    train.add_argument("--data", default="mnist-5k", help=f"one of {', '.join(DATASETS)}")
    train.add_argument(
        "--train-size",
        type=int,
        default=None,
        help="examples before the validation split (default: all)",
    )
    train.add_argument(
        "--validation-fraction",
        type=float,
        default=0.2,
        help="fraction of the examples held out for validation",
    )
    train.add_argument("--label", default=None, help="a table's label column (default: the last)")
    train.add_argument(
        "--test", default=None, help="a data file's test file (default: a stratified hold-out)"
    )
    train.add_argument(
        "--no-standardize",
        dest="standardize",
        action="store_false",
        default=None,
        help="keep a data file's features as written (default: scaled by the training "
        "split's mean and std)",
    )
    train.add_argument(
        "--hidden",
        type=parse_hidden_sizes,
        default=[100] * 6,
        help="hidden layer widths, e.g. 100x6 or 100,50 (default: 100x6)",
    )
    train.add_argument(
        "--activation", choices=sorted(ACTIVATIONS), default="relu", help="hidden activation"
    )
    train.add_argument("--init", choices=INIT_RULES, default="he", help="weight init rule")
    train.add_argument("--init-scale", type=float, default=1.0, help="gain on the init rule's std")
    train.add_argument(
        "--weight-decay", type=float, default=0.0, help="L2 coefficient (lambda) on the weights"
    )
    train.add_argument(
        "--batchnorm", action="store_true", help="batch norm after each hidden affine layer"
    )
    train.add_argument(
        "--dropout", type=float, default=0.0, help="dropout rate after each hidden layer"
    )
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd", help="optimizer")
    train.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: the book's for the optimizer)",
    )
    train.add_argument("--epochs", type=int, default=20, help="passes over the training split")
    train.add_argument("--batch-size", type=int, default=100, help="examples per update")
    train.add_argument("--seed", type=int, default=0, help="seed of the split, init and batches")
    train.add_argument("--float64", action="store_true", help="train in float64 instead of float32")
    train.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hpsearch.data import load
    from hpsearch.train import fit

    # No monitor thread, as for the study's bar: a process that trains in-process next
    # (tests, notebooks) would otherwise start its workers from a fork server.
    tqdm.monitor_interval = 0
    from hpsearch.trials.network import TrialConfig, build

    split = load(
        args.data,
        train_size=args.train_size,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        label=args.label,
        test=args.test,
        standardize=args.standardize,
    )
    rng = np.random.default_rng(args.seed)
    config = TrialConfig(
        hidden_sizes=tuple(args.hidden),
        activation=args.activation,
        init=args.init,
        init_scale=args.init_scale,
        weight_decay=args.weight_decay,
        batchnorm=args.batchnorm,
        dropout=args.dropout,
        optimizer=args.optimizer,
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=args.epochs,
    )
    net, optimizer = build(config, split, rng, dtype=np.float64 if args.float64 else np.float32)
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


def add_experiment_parser(commands: argparse._SubParsersAction) -> None:
    from hpsearch.experiments import EXPERIMENTS

    experiment = commands.add_parser(
        "experiment",
        help="run a reference experiment (figures and a table)",
        description=(
            "The reference articles' experiments on hpsearch's own network: "
            + ", ".join(EXPERIMENTS)
            + "."
        ),
    )
    experiment.add_argument("name", choices=list(EXPERIMENTS), help="which experiment")
    experiment.add_argument(
        "--out",
        type=Path,
        default=Path("experiments"),
        help="folder for the PNGs (default: ./experiments)",
    )
    experiment.add_argument("--seed", type=int, default=0, help="seed of the data and networks")
    experiment.add_argument(
        "--data",
        default=None,
        help="the data set of init-mnist, optimizers, batchnorm and overfit (default: "
        f"mnist-5k): one of {', '.join(DATASETS)}; a table's label is its last column",
    )
    experiment.set_defaults(handler=_experiment)


def _experiment(args: argparse.Namespace) -> int:
    import pandas as pd

    from hpsearch.experiments import experiment

    if args.seed < 0:
        raise HpsearchError(f"--seed must be >= 0, got {args.seed}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HpsearchError(f"cannot create {args.out}: {exc.strerror}") from None
    run = experiment(args.name)
    options = {}
    if args.data is not None:
        if "data" not in inspect.signature(run).parameters:
            raise HpsearchError(f"experiment {args.name} has its own data: --data is not for it")
        options["data"] = args.data
    print(f"experiment {args.name} (seed {args.seed}) ...", flush=True)
    result = run(args.out, args.seed, **options)
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(result.table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for line in result.findings:
        print(f"- {line}")
    for path in result.figures:
        print(f"figure: {path}")
    return 0
