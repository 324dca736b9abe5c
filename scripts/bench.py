"""`make bench`: hpsearch's training step and study throughput, measured side by side.

Prints one table, a PASS/FAIL line per target of issue 6, and writes the figures as
JSON under bench/results/ with the machine's CPU and library versions. Every ratio
is measured in this one run, on this machine; nothing here is a timed assert.

    python scripts/bench.py [--steps 300] [--trials 100] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import optuna
from threadpoolctl import threadpool_info, threadpool_limits

from hpsearch.data import load
from hpsearch.nn import MultiLayerNet, make_optimizer

ROOT = Path(__file__).resolve().parent.parent

SIZES = [784, 100, 100, 100, 100, 100, 100, 10]
LR, WEIGHT_DECAY = 0.01, 1e-4


def median_time(step, steps: int, warmup: int = 50) -> float:
    for _ in range(warmup):
        step()
    times = np.empty(steps)
    for i in range(steps):
        start = time.perf_counter()
        step()
        times[i] = time.perf_counter() - start
    return float(np.median(times))


def batches(batch: int, count: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
    """Real MNIST mini-batches: a fixed batch trained to zero loss would fill the
    gradients with denormal floats and time the CPU's slow path instead."""
    split = load("mnist-5k")
    rng = np.random.default_rng(0)
    picks = [rng.choice(len(split.t_train), batch, replace=False) for _ in range(count)]
    return [(split.x_train[p], split.t_train[p]) for p in picks]


def gemm_peak(repeats: int = 10) -> float:
    """Single-thread float32 GEMM throughput (FLOP/s), best of a few large products."""
    rng = np.random.default_rng(0)
    best = 0.0
    for n in (512, 1024, 1536):
        a = rng.random((n, n), dtype=np.float32)
        b = rng.random((n, n), dtype=np.float32)
        seconds = median_time(lambda a=a, b=b: a @ b, repeats, warmup=2)
        best = max(best, 2 * n**3 / seconds)
    return best


def training_step(batch: int):
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


def hpsearch_step(batch: int, steps: int) -> float:
    return median_time(training_step(batch), steps)


def _steps_for(seconds: float, queue) -> None:
    """In a worker process: how many batch-100 training steps fit in `seconds`."""
    with threadpool_limits(limits=1):
        step = training_step(100)
        steps, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            step()
            steps += 1
        queue.put(steps)


def hardware_scaling(seconds: float = 5.0) -> float:
    """Training steps per second of two processes against one, nothing else running:
    what this machine allows the 2-worker study at the moment of measuring."""
    import multiprocessing

    context = multiprocessing.get_context("fork")  # no other thread runs here yet

    def steps(processes: int) -> int:
        queue = context.Queue()
        workers = [
            context.Process(target=_steps_for, args=(seconds, queue)) for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        total = sum(queue.get() for _ in workers)
        for worker in workers:
            worker.join()
        return total

    return steps(2) / steps(1)


class BookAffine:
    """common/layers.py's Affine: keeps x, returns dx even for the input layer."""

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.W, self.b = W, b

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return dx.reshape(*self.original_x_shape)


class BookRelu:
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout[self.mask] = 0
        return dout


def book_softmax(x: np.ndarray) -> np.ndarray:
    x = x.T
    x = x - np.max(x, axis=0)
    return (np.exp(x) / np.sum(np.exp(x), axis=0)).T


class BookSoftmaxWithLoss:
    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        self.t = t
        self.y = book_softmax(x)
        batch_size = self.y.shape[0]
        return -np.sum(np.log(self.y[np.arange(batch_size), t] + 1e-7)) / batch_size

    def backward(self, dout: float = 1) -> np.ndarray:
        batch_size = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(batch_size), self.t] -= 1
        return dx / batch_size


class BookNet:
    """The baseline: the book's MultiLayerNet (ch. 6, common/multi_layer_net.py) as the
    book writes it, in float64. `gradient` runs `loss` (forward, softmax, cross-entropy
    and the L2 term over every W), backpropagates through every layer including the
    input's dx, and adds weight decay to each dW; SGD is `params[key] -= lr * grads[key]`."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.layers: list[BookAffine | BookRelu] = []
        self.affines: list[BookAffine] = []
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(SIZES), 1):
            self.params[f"W{i}"] = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in)
            self.params[f"b{i}"] = np.zeros(fan_out)
            affine = BookAffine(self.params[f"W{i}"], self.params[f"b{i}"])
            self.affines.append(affine)
            self.layers.append(affine)
            if i < len(SIZES) - 1:
                self.layers.append(BookRelu())
        self.last_layer = BookSoftmaxWithLoss()

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        for layer in self.layers:
            x = layer.forward(x)
        weight_decay = 0.0
        for affine in self.affines:
            weight_decay += 0.5 * WEIGHT_DECAY * np.sum(affine.W**2)
        return self.last_layer.forward(x, t) + weight_decay

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        grads = {}
        for i, affine in enumerate(self.affines, 1):
            grads[f"W{i}"] = affine.dW + WEIGHT_DECAY * affine.W
            grads[f"b{i}"] = affine.db
        return grads


def book_step(batch: int, steps: int) -> float:
    net = BookNet(np.random.default_rng(0))
    data = [(x.astype(np.float64), t) for x, t in batches(batch)]
    counter = iter(range(10**9))

    def step() -> None:
        x, t = data[next(counter) % len(data)]
        grads = net.gradient(x, t)
        for key in net.params:
            net.params[key] -= LR * grads[key]

    return median_time(step, steps)


def torch_step(batch: int, steps: int) -> float | None:
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

    return median_time(step, steps)


@dataclass
class StudyRun:
    trials: int
    epochs: int
    seconds: float
    to_first_trial: float = 0.0  # seconds from the call to the first trial's start
    after_last_trial: float = 0.0  # from the last trial's end to the call's return
    idle_at_end: float = 0.0  # between the workers' last trial ends: one worker waits

    @property
    def per_minute(self) -> float:
        return self.trials / self.seconds * 60

    @property
    def epochs_per_minute(self) -> float:
        return self.epochs / self.seconds * 60


def study_run(
    workers: int, trials: int, folder: Path, name: str, replay: list[dict] | None = None
) -> tuple[StudyRun, list[dict]]:
    """The default study with `workers` worker processes (one BLAS thread each),
    timed from start to end in a fresh database; with `replay`, trial n trains the
    n-th of those parameter sets, as an earlier run did. Returns the run and its
    trials' parameters in trial order."""
    from hpsearch import spec
    from hpsearch import study as study_module
    from hpsearch.objective import load_split
    from hpsearch.storage import open_storage

    study_module.quiet_optuna()
    study_spec = spec.load(ROOT / "studies" / "mnist_lr_wd_init.toml").with_overrides(
        storage=f"sqlite:///{folder / f'{name}.db'}", n_trials=trials
    )
    if replay is not None:  # the replayed trials are all there is, trial 0 included
        study_spec = dataclasses.replace(
            study_spec, search=dataclasses.replace(study_spec.search, start_at_defaults=False)
        )
    # Every run starts with the data loaded and its database and study created.
    load_split(study_spec.data, study_spec.seed)
    study_module.open_study(study_spec, open_storage(study_spec.storage))
    with replaying(study_module, replay):
        called, start = datetime.now(), time.perf_counter()  # Optuna's clock: local time
        result = study_module.run(study_spec, workers=workers, spawn=True)
        seconds = time.perf_counter() - start
        returned = datetime.now()
    done = sorted(result.study.trials, key=lambda t: t.number)
    first = min(t.datetime_start for t in done)
    last = max(t.datetime_complete for t in done)
    if replay is not None and [t.params for t in done] != replay[: len(done)]:
        raise SystemExit(
            "bench: the workers ran trials outside the replayed ones; the scaling figure "
            "would compare different searches"
        )
    epochs = sum(t.user_attrs.get("epochs_run", 0) for t in done)
    ends: dict[str, datetime] = {}
    for t in done:
        worker = t.user_attrs.get("worker", "")
        ends[worker] = max(ends.get(worker, t.datetime_complete), t.datetime_complete)
    edges = (
        (first - called).total_seconds(),
        (returned - last).total_seconds(),
        (last - min(ends.values())).total_seconds(),
    )
    return StudyRun(result.finished_now, epochs, seconds, *edges), [t.params for t in done]


class ReplaySampler(optuna.samplers.BaseSampler):
    """Proposes, for trial n, the n-th parameter set of an earlier run: the same
    configurations in the same order for 1 and for 2 workers. (Enqueuing them instead
    needed a thread in the benchmark's process that fed Optuna's queue while the
    workers ran: with one worker it had a core of its own, with two it took its CPU
    from them, which biased the comparison against two workers.)"""

    def __init__(self, replay: list[dict]) -> None:
        self.replay = replay

    def infer_relative_search_space(self, study, trial) -> dict:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict:
        return {}

    def sample_independent(self, study, trial, name, distribution):
        return self.replay[trial.number][name]


@contextmanager
def replaying(study_module, replay: list[dict] | None):
    """Workers made inside the block sample from `replay` (they fork from this process,
    which runs no other thread, so they inherit the replacement)."""
    if replay is None:
        yield
        return
    original = study_module.make_sampler
    study_module.make_sampler = lambda *args, **kwargs: ReplaySampler(replay)
    try:
        if study_module._start_method() != "fork":
            raise SystemExit("bench: replaying needs workers forked from this process")
        yield
    finally:
        study_module.make_sampler = original


def overhead(trials: int, folder: Path) -> dict[str, float]:
    """One worker in a fresh process, data loaded and study opened before the clock.

    Per trial (each `study.optimize(n_trials=1)` call of a worker): the share of its
    wall time spent outside the objective (Optuna's ask and tell, the sampler, SQLite:
    the issue's measure), and the share spent outside training itself (also counting
    the suggest, report, should_prune and user-attr calls made inside the objective,
    and building the net). Opening the study is a once-per-worker cost, shown apart.
    Also the worker's peak RSS."""
    code = f"""
import time, json
import optuna
from hpsearch import spec, study as study_module
from hpsearch.objective import Objective, load_split
from threadpoolctl import threadpool_limits
clock = {{"objective": 0.0, "trials": 0.0}}
def timed(function, key):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            clock[key] += time.perf_counter() - start
    return wrapper
class TimedObjective(Objective):
    __call__ = timed(Objective.__call__, "objective")
study_module.Objective = TimedObjective
optuna.Study.optimize = timed(optuna.Study.optimize, "trials")
study_module.quiet_optuna()
s = spec.load({str(ROOT / "studies" / "mnist_lr_wd_init.toml")!r}).with_overrides(
    storage="sqlite:///{folder / "overhead.db"}", n_trials={trials})
with threadpool_limits(1):
    load_split(s.data, s.seed)
    start = time.perf_counter()
    result = study_module.run(s)
    wall = time.perf_counter() - start
training = sum(t.user_attrs.get("seconds", 0.0) for t in result.study.trials)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the forking parent.
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(json.dumps({{"wall": wall, "trial_time": clock["trials"], "objective": clock["objective"],
                  "training": training, "trials": result.finished_now,
                  "rss_mb": int(status) / 1024}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    f = json.loads(out.stdout.strip().splitlines()[-1])
    outside = f["trial_time"] - f["objective"]
    not_training = f["trial_time"] - f["training"]
    return {
        "optuna_sqlite_overhead_share": outside / f["trial_time"],
        "optuna_sqlite_overhead_ms_per_trial": outside / f["trials"] * 1e3,
        "non_training_share": not_training / f["trial_time"],
        "non_training_ms_per_trial": not_training / f["trials"] * 1e3,
        "opening_and_other_ms": (f["wall"] - f["trial_time"]) * 1e3,
        "worker_peak_rss_mb": f["rss_mb"],
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per variant")
    parser.add_argument(
        "--trials", type=int, default=100, help="trials per study run (the default study's budget)"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=5,
        help="1-worker and 2-worker runs of the default study, alternated (median ratio)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer steps and trials")
    args = parser.parse_args()
    steps, trials = (100, 20) if args.quick else (args.steps, args.trials)
    pairs = 1 if args.quick else max(1, args.pairs)
    figures: dict[str, float | None] = {}
    lines: list[tuple[str, bool]] = []

    with threadpool_limits(limits=1):
        peak = gemm_peak()
        figures["gemm_peak_gflops"] = peak / 1e9
        for batch in (100, 500):
            flops = 6 * batch * sum(a * b for a, b in itertools.pairwise(SIZES))
            ours = hpsearch_step(batch, steps)
            book = book_step(batch, steps)
            torch_time = torch_step(batch, steps)
            figures[f"hpsearch_ms_b{batch}"] = ours * 1e3
            figures[f"book_f64_ms_b{batch}"] = book * 1e3
            figures[f"torch_ms_b{batch}"] = None if torch_time is None else torch_time * 1e3
            figures[f"gemm_fraction_b{batch}"] = flops / ours / peak
            figures[f"speedup_vs_book_b{batch}"] = book / ours
            if torch_time is not None:
                figures[f"ratio_vs_torch_b{batch}"] = ours / torch_time
    figures["hardware_scaling_steps"] = hardware_scaling(2.0 if args.quick else 5.0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Two workers searching on their own sample other trials (two sampler streams,
        # pruning that sees other finished trials), so their trials/min says as much
        # about the search as about throughput: the scaling target compares the same
        # configurations, those of a free 1-worker run, replayed by 1 and by 2 workers
        # (trial n gets the free run's n-th configuration). The free
        # 2-worker figure is printed beside it, against the free 1-worker run. A run
        # takes seconds and this VM's speed drifts by ~10% over such spans, so the pair
        # is measured several times, alternating, and the median pair is the figure.
        alone, params = study_run(1, trials, folder, "one-free")
        runs = []
        for pair in range(pairs):
            one, _ = study_run(1, trials, folder, f"one-replay-{pair}", replay=params)
            two, _ = study_run(2, trials, folder, f"two-replay-{pair}", replay=params)
            runs.append((two.per_minute / one.per_minute, one, two))
        ratios = [ratio for ratio, _, _ in runs]
        _, one, two = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
        free, _ = study_run(2, trials, folder, "two-free")
        costs = overhead(trials, folder)
    figures |= {
        "trials_per_min_1_worker_free": alone.per_minute,
        "trials_per_min_1_worker": one.per_minute,
        "trials_per_min_2_workers": two.per_minute,
        "trials_per_min_2_workers_free": free.per_minute,
        "epochs_per_min_1_worker": one.epochs_per_minute,
        "epochs_per_min_2_workers": two.epochs_per_minute,
        "epochs_per_min_2_workers_free": free.epochs_per_minute,
        "worker_scaling": two.per_minute / one.per_minute,
        "worker_scaling_pairs": ratios,
        "worker_scaling_free": free.per_minute / alone.per_minute,
        "worker_scaling_epochs": two.epochs_per_minute / one.epochs_per_minute,
        "to_first_trial_ms_1_worker": one.to_first_trial * 1e3,
        "to_first_trial_ms_2_workers": two.to_first_trial * 1e3,
        "after_last_trial_ms_1_worker": one.after_last_trial * 1e3,
        "after_last_trial_ms_2_workers": two.after_last_trial * 1e3,
        "idle_at_end_ms_2_workers": two.idle_at_end * 1e3,
    } | costs
    share, rss = costs["optuna_sqlite_overhead_share"], costs["worker_peak_rss_mb"]

    print(f"CPU: {cpu_name()}; numpy {np.__version__}; one BLAS thread")
    print(f"float32 GEMM peak, one thread: {peak / 1e9:.1f} GFLOP/s")
    print(f"{'step (784-[100]x6-10, SGD + wd)':<34} {'batch 100':>10} {'batch 500':>10}")
    for label, key in [
        ("hpsearch float32 (ms)", "hpsearch_ms"),
        ("PyTorch CPU float32 (ms)", "torch_ms"),
        ("book-style float64 (ms)", "book_f64_ms"),
    ]:
        cells = [figures[f"{key}_b{b}"] for b in (100, 500)]
        print(
            f"{label:<34} " + " ".join("       n/a" if c is None else f"{c:>10.3f}" for c in cells)
        )
    print(
        f"{'share of GEMM peak':<34} {figures['gemm_fraction_b100']:>10.0%} "
        f"{figures['gemm_fraction_b500']:>10.0%}"
    )
    print(
        f"default study, {trials} trials: 1 worker {alone.per_minute:.0f} trials/min "
        f"({alone.epochs} epochs); its configurations replayed by 1 worker "
        f"{one.per_minute:.0f} trials/min ({one.epochs} epochs, "
        f"{one.epochs_per_minute:.0f}/min) and by 2 workers {two.per_minute:.0f} "
        f"trials/min ({two.epochs} epochs, "
        f"{two.epochs_per_minute:.0f}/min): x{figures['worker_scaling']:.2f} trials, "
        f"x{figures['worker_scaling_epochs']:.2f} epochs (median of {len(ratios)} pairs: "
        + ", ".join(f"x{r:.2f}" for r in ratios)
        + ")"
    )
    print(
        f"  outside the trials: {one.to_first_trial * 1e3:.0f} ms to the first trial and "
        f"{one.after_last_trial * 1e3:.0f} ms after the last with 1 worker, "
        f"{two.to_first_trial * 1e3:.0f} and {two.after_last_trial * 1e3:.0f} ms with 2, "
        f"one of which waited {two.idle_at_end * 1e3:.0f} ms for the other's last trial "
        f"(runs of {one.seconds:.1f} s and {two.seconds:.1f} s)"
    )
    print(
        "the machine itself, now: 2 processes doing only training steps "
        f"x{figures['hardware_scaling_steps']:.2f} the steps/s of 1"
    )
    print(
        f"2 workers searching freely: {free.per_minute:.0f} trials/min ({free.epochs} epochs, "
        f"{free.epochs_per_minute:.0f}/min): x{figures['worker_scaling_free']:.2f} the free "
        "1-worker run's trials/min"
    )
    print(
        f"Optuna + SQLite outside the objective: {share:.1%} of trial wall time, "
        f"{costs['optuna_sqlite_overhead_ms_per_trial']:.1f} ms per trial; everything but "
        f"training (also suggest/report/prune/attrs inside it): {costs['non_training_share']:.1%}, "
        f"{costs['non_training_ms_per_trial']:.1f} ms per trial; opening the study and the "
        f"worker loop: {costs['opening_and_other_ms']:.0f} ms in all"
    )
    print(f"peak RSS of one worker: {rss:.0f} MB")

    torch_b100, torch_b500 = figures.get("ratio_vs_torch_b100"), figures.get("ratio_vs_torch_b500")
    if torch_b100 is None:
        print("PyTorch not installed (pip install torch==2.13.0): its targets are not measured")
    else:
        lines.append(
            (f"step <= 0.85 x PyTorch at batch 100: {torch_b100:.2f} x", torch_b100 <= 0.85)
        )
        lines.append((f"step <= 1.0 x PyTorch at batch 500: {torch_b500:.2f} x", torch_b500 <= 1.0))
    lines += [
        (
            f">= 70% of GEMM peak at batch 100: {figures['gemm_fraction_b100']:.0%}",
            figures["gemm_fraction_b100"] >= 0.70,
        ),
        (
            f">= 80% of GEMM peak at batch 500: {figures['gemm_fraction_b500']:.0%}",
            figures["gemm_fraction_b500"] >= 0.80,
        ),
        (
            f">= 2.5 x faster than book-style float64 at batch 100: "
            f"{figures['speedup_vs_book_b100']:.2f} x",
            figures["speedup_vs_book_b100"] >= 2.5,
        ),
        (
            f"2 workers >= 1.8 x trials/min of 1 (same configurations): "
            f"{figures['worker_scaling']:.2f} x",
            figures["worker_scaling"] >= 1.8,
        ),
        (f"Optuna + SQLite overhead (outside objective) <= 10%: {share:.1%}", share <= 0.10),
        (f"worker peak RSS <= 400 MB: {rss:.0f} MB", rss <= 400),
    ]
    for text, ok in lines:
        print(f"{text} ... {'PASS' if ok else 'FAIL'}")

    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "when": stamp,
        "cpu": cpu_name(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": [
            {k: i.get(k) for k in ("internal_api", "version", "num_threads")}
            for i in threadpool_info()
        ],
        "torch": _version("torch"),
        "optuna": _version("optuna"),
        "figures": figures,
        "targets": [{"target": text, "pass": ok} for text, ok in lines],
    }
    path = results / f"bench-{stamp}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written: {path.relative_to(ROOT)}")
    return 0


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
