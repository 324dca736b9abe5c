"""Is a round's best trials' use of a parameter more than chance? Seeded permutation
tests over the finished trials: the top trials' values against random top sets of the
same size drawn from the same pool.
"""

from __future__ import annotations

import numpy as np

PERMUTATIONS = 1000


def _permutation_p(statistic, values: np.ndarray, is_top: np.ndarray, rng) -> float:
    """P(statistic of a random top set >= the observed one): how often trials drawn at
    random from the pool look as different from the rest as the top trials do."""
    n, k = len(values), int(is_top.sum())
    if k == 0 or k == n:
        return 1.0
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    observed = statistic(ordered, is_top[order][None, :], k)[0]
    permutations = PERMUTATIONS if n <= 2000 else PERMUTATIONS // 4
    masks = np.argsort(rng.random((permutations, n)), axis=1) < k
    null = statistic(ordered, masks, k)
    return float((1 + np.count_nonzero(null >= observed - 1e-12)) / (1 + permutations))


def range_evidence(values: np.ndarray, is_top: np.ndarray, rng: np.random.Generator) -> float:
    """p-value that the top trials' values are where they are by chance: the smaller of
    two permutation tests, doubled (Bonferroni). The Kolmogorov-Smirnov distance sees top
    trials that sit elsewhere than the rest; the span sees top trials bunched inside
    the rest, which is where a sampler like TPE puts most trials once it has learned."""
    p_shifted = _permutation_p(_ks, values, is_top, rng)
    p_bunched = _permutation_p(_narrowness, values, is_top, rng)
    return min(1.0, 2.0 * min(p_shifted, p_bunched))


def choice_evidence(codes: np.ndarray, is_top: np.ndarray, rng: np.random.Generator) -> float:
    """p-value that the top trials' choices (integer codes) are what they are by chance:
    a permutation test of the total-variation distance between their frequencies and
    the others'."""
    return _permutation_p(_total_variation, codes, is_top, rng)


def _narrowness(ordered: np.ndarray, masks: np.ndarray, k: int) -> np.ndarray:
    """Minus the span (max - min) of the masked values, per row of `masks`: larger when
    the masked trials are bunched together."""
    n = ordered.shape[0]
    first = np.argmax(masks, axis=1)
    last = n - 1 - np.argmax(masks[:, ::-1], axis=1)
    return ordered[first] - ordered[last]


def _ks(ordered: np.ndarray, masks: np.ndarray, k: int) -> np.ndarray:
    """Two-sample Kolmogorov-Smirnov distance between the masked values and the rest,
    per row of `masks` (columns in the order of the sorted `ordered`), ties respected."""
    n = ordered.shape[0]
    ends = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
    top = np.cumsum(masks, axis=1)[:, ends]
    rest = (ends + 1)[None, :] - top
    return np.max(np.abs(top / k - rest / (n - k)), axis=1)


def _total_variation(codes: np.ndarray, masks: np.ndarray, k: int) -> np.ndarray:
    """Total-variation distance between the choice frequencies of the masked trials and
    of the rest, per row of `masks`."""
    n = codes.shape[0]
    distance = np.zeros(masks.shape[0])
    for code in np.unique(codes):
        in_top = masks[:, codes == code].sum(axis=1)
        total = np.count_nonzero(codes == code)
        distance += np.abs(in_top / k - (total - in_top) / (n - k))
    return distance / 2
