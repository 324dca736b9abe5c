"""Property-based tests: specs are untrusted text. Any TOML document, valid spec or
broken, either loads into a spec that round-trips (through `to_dict` and through TOML
text) or is refused with `SpecError`, never another exception."""

import math

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpsearch.spec import SpecError, StudySpec, from_dict, loads

KEYS = [
    "name", "seed", "storage", "round", "parent", "data", "model", "training", "search",
    "train_size", "validation_fraction", "hidden_sizes", "activation", "init", "init_scale",
    "weight_decay", "batchnorm", "dropout", "epochs", "batch_size", "optimizer", "lr",
    "n_trials", "timeout", "retry_for", "sampler", "pruner", "sampler_options", "pruner_options",
    "params", "low", "high", "log", "step", "choices", "hidden_width", "hidden_depth",
    "init_health", "enabled", "collapse", "saturation", "start_at_defaults",
]  # fmt: skip
WORDS = [
    "mnist-5k", "digits", "circles", "relu", "tanh", "sigmoid", "he", "xavier", "zeros",
    "normal", "sgd", "adam", "momentum", "tpe", "random", "grid", "median", "none",
    "hyperband", "", "it's; DROP TABLE studies;--", "测试 ✓", "idx:/nonexistent",
]  # fmt: skip

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # what TOML integers hold
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)


def valid_raw() -> st.SearchStrategy[dict]:
    """Specs built from valid parts: names, ranges and settings within their bounds."""
    log_range = st.tuples(st.floats(1e-9, 1e-3), st.floats(1.5, 1e3, allow_infinity=False)).map(
        lambda pair: {"low": pair[0], "high": pair[0] * pair[1], "log": True}
    )
    choices = st.lists(st.sampled_from([16, 32, 64, 128]), min_size=1, max_size=4, unique=True)
    params = st.fixed_dictionaries(
        {"lr": log_range},
        optional={
            "weight_decay": log_range,
            "init_scale": log_range,
            "hidden_width": choices.map(lambda c: {"choices": c}),
            "optimizer": st.lists(
                st.sampled_from(["sgd", "momentum", "adam", "rmsprop"]), min_size=1, unique=True
            ).map(lambda c: {"choices": c}),
            "dropout": st.floats(0.0, 0.4).map(lambda low: {"low": low, "high": low + 0.5}),
        },
    )
    return st.fixed_dictionaries(
        {
            "name": st.text(min_size=1, max_size=40).filter(str.strip),
            "seed": st.integers(0, 2**32 - 1),
            "data": st.fixed_dictionaries(
                {"name": st.sampled_from(["digits", "mnist-5k", "circles"])},
                optional={"train_size": st.integers(50, 5000)},
            ),
            "model": st.fixed_dictionaries(
                {"hidden_sizes": st.lists(st.integers(1, 300), max_size=6)},
                optional={
                    "activation": st.sampled_from(["relu", "tanh", "sigmoid"]),
                    "init": st.sampled_from(["he", "xavier", "normal"]),
                    "batchnorm": st.booleans(),
                },
            ),
            "training": st.fixed_dictionaries(
                {"epochs": st.integers(1, 100), "batch_size": st.integers(1, 512)}
            ),
            "search": st.fixed_dictionaries(
                {
                    "n_trials": st.integers(1, 10_000),
                    "sampler": st.sampled_from(["tpe", "random", "qmc"]),
                    "pruner": st.sampled_from(["none", "median", "hyperband"]),
                    "params": params,
                },
                optional={
                    "init_health": st.fixed_dictionaries(
                        {},
                        optional={
                            "enabled": st.booleans(),
                            "collapse": st.floats(0.0, 1.0),
                            "saturation": st.floats(0.0, 1.0),
                        },
                    )
                },
            ),
        }
    )


def assert_round_trips(spec: StudySpec) -> None:
    again = from_dict(spec.to_dict())
    assert again == spec
    assert again.to_dict() == spec.to_dict()
    assert loads(tomli_w.dumps(spec.to_dict())) == spec
    for param in spec.search.params.values():
        for bound in ("low", "high"):
            value = getattr(param, bound, 0.0)
            assert math.isfinite(value)


def load_or_refuse(raw: dict) -> StudySpec | None:
    try:
        text = tomli_w.dumps(raw)
    except (TypeError, ValueError):
        return None  # not representable as TOML (e.g. a list mixing types in old TOML)
    try:
        spec = loads(text, source="generated.toml")
    except SpecError as exc:
        assert str(exc).startswith("generated.toml")
        return None
    assert_round_trips(spec)
    return spec


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_raw())
def test_valid_specs_load_and_round_trip(raw):
    spec = load_or_refuse(raw)
    assert spec is not None
    assert spec.name == raw["name"]
    assert set(spec.search.params) == set(raw["search"]["params"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_raw(), st.lists(st.tuples(st.lists(st.sampled_from(KEYS), max_size=3), values)))
def test_broken_specs_load_or_fail_with_spec_error(raw, mutations):
    """Replace or add values anywhere in a valid spec, with anything TOML can hold."""
    for path, value in mutations:
        target = raw
        for key in path[:-1]:
            child = target.get(key)
            if not isinstance(child, dict):
                child = target[key] = {}
            target = child
        if path:
            target[path[-1]] = value
    load_or_refuse(raw)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), values, max_size=6))
def test_arbitrary_tables_load_or_fail_with_spec_error(raw):
    load_or_refuse(raw)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_loads_or_fails_with_spec_error(text):
    try:
        spec = loads(text, source="generated.toml")
    except SpecError:
        return
    assert_round_trips(spec)
