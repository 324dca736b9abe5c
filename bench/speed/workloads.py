"""What is timed: one training step of hpsearch's net, of the book's float64 net and of
the same net in PyTorch, each on the next of a few real MNIST mini-batches. Every
function returns a step (a no-argument callable) for the clocks of `timing`."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from bench.speed.book import BookNet
from hpsearch.data import load
from hpsearch.nn import MultiLayerNet, make_optimizer

SIZES = [784, 100, 100, 100, 100, 100, 100, 10]
LR, WEIGHT_DECAY = 0.01, 1e-4

Step = Callable[[], None]


def batches(batch: int, count: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
    """Real MNIST mini-batches: a fixed batch trained to zero loss would fill the
    gradients with denormal floats and time the CPU's slow path instead."""
    split = load("mnist-5k")
    rng = np.random.default_rng(0)
    picks = [rng.choice(len(split.t_train), batch, replace=False) for _ in range(count)]
    return [(split.x_train[p], split.t_train[p]) for p in picks]


def training_step(batch: int) -> Step:
    """One training step of hpsearch's net on the next of a few real MNIST batches."""
    rng = np.random.default_rng(0)
    net = MultiLayerNet(784, SIZES[1:-1], 10, weight_decay=WEIGHT_DECAY, rng=rng)
    optimizer = make_optimizer("sgd", LR)
    data = batches(batch)
    counter = iter(range(10**9))

    def step() -> None:
        x, t = data[next(counter) % len(data)]
        _, grads = net.loss_and_gradient(x, t)
        optimizer.update(net.params, grads)

    return step


def book_training_step(batch: int) -> Step:
    """One step of the book's float64 net (see `bench.speed.book`) and its SGD."""
    net = BookNet(np.random.default_rng(0), SIZES, WEIGHT_DECAY)
    data = [(x.astype(np.float64), t) for x, t in batches(batch)]
    counter = iter(range(10**9))

    def step() -> None:
        x, t = data[next(counter) % len(data)]
        grads = net.gradient(x, t)
        for key in net.params:
            net.params[key] -= LR * grads[key]

    return step


def torch_training_step(batch: int) -> Step | None:
    """The same net, loss and SGD with weight decay on the weights in PyTorch (one
    thread), or None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    torch.manual_seed(0)
    layers = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(SIZES)):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    decay = [p for name, p in model.named_parameters() if name.endswith("weight")]
    no_decay = [p for name, p in model.named_parameters() if name.endswith("bias")]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay}], lr=LR
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    data = [(torch.from_numpy(x), torch.from_numpy(t)) for x, t in batches(batch)]
    counter = iter(range(10**9))

    def step() -> None:
        x, t = data[next(counter) % len(data)]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), t).backward()
        optimizer.step()

    return step


def step_flops(batch: int) -> int:
    """FLOPs of one training step's matrix products, as the net does them: per layer the
    forward product and the weight gradient (2 x batch x weights each), the bias
    gradient (2 x batch x biases) and the input gradient (2 x batch x weights), which the
    first layer skips: its input is the data, which needs no gradient."""
    total = 0
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(SIZES)):
        products = 3 if layer > 0 else 2
        total += products * 2 * batch * fan_in * fan_out + 2 * batch * fan_out
    return total
