import numpy as np
import pytest

from hpsearch.data import Split, load


@pytest.fixture(scope="session")
def mnist() -> Split:
    """mnist-5k with the acceptance split: 1,000 test, 3,200 train, 800 validation."""
    return load("mnist-5k", validation_fraction=0.2, seed=0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
