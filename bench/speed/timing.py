"""Clocks: the median time of a step, and what this machine allows at the moment of
measuring (its single-thread float32 GEMM peak, and the steps per second of two
processes against one)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from bench.speed.workloads import training_step


def median_time(step: Callable[[], object], steps: int, warmup: int = 50) -> float:
    """Seconds of the median of `steps` timed calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    times = np.empty(steps)
    for i in range(steps):
        start = time.perf_counter()
        step()
        times[i] = time.perf_counter() - start
    return float(np.median(times))


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
