"""Checking one value of a spec: its type, its bounds, its keys, with the file and the
key named in every message.

`Checker` raises `SpecError` at the first problem; `hpsearch.spec.from_dict` walks a
whole spec through it. The messages are part of the interface (tests pin them), so a
user can act on each one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NoReturn

from hpsearch.errors import HpsearchError
from hpsearch.spec.schema import (
    MAX_STEPS,
    Choice,
    Confirm,
    FloatRange,
    InitHealth,
    IntRange,
    Param,
)
from hpsearch.spec.searchable import SEARCHABLE, Setting


class SpecError(HpsearchError, ValueError):
    """A study spec that cannot be run as written."""


class Checker:
    """Validation helpers that name the file and key in every message."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> NoReturn:
        raise SpecError(f"{self.source}: {key}: {problem}")

    def table(
        self, raw: Any, path: str, cls: type, nested: tuple[str, ...] = ()
    ) -> Mapping[str, Any]:
        where = path or "top level"
        if not isinstance(raw, Mapping):
            self.fail(where, f"must be a table, got {raw!r}")
        known = {f for f in cls.__dataclass_fields__ if f != "source"} | set(nested)
        unknown = sorted(set(raw) - known)
        if unknown:
            prefix = f"{path}." if path else ""
            self.fail(
                prefix + unknown[0],
                f"unknown key; the keys of {where} are {', '.join(sorted(known))}",
            )
        return raw

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {value!r}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates: what Python makes of command-line bytes that are not UTF-8.
            self.fail(key, f"must be valid UTF-8 text, got {value!r}")
        return value

    def integer(self, value: Any, key: str, minimum: int, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be an integer, got {value!r}")
        if value < minimum:
            self.fail(key, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            self.fail(key, f"must be <= {maximum}, got {value}")
        return value

    def optional_integer(self, value: Any, key: str, minimum: int) -> int | None:
        return None if value is None else self.integer(value, key, minimum)

    def number(
        self, value: Any, key: str, *, above: float | None = None, below: float | None = None
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            self.fail(key, f"must be a finite number, got {value!r}")
        if above is not None and value <= above:
            self.fail(key, f"must be > {above:g}, got {value!r}")
        if below is not None and value >= below:
            self.fail(key, f"must be < {below:g}, got {value!r}")
        return float(value)

    def fraction(self, value: Any, key: str) -> float:
        """A number from 0 to 1, both included."""
        value = self.number(value, key)
        if not 0.0 <= value <= 1.0:
            self.fail(key, f"must be a fraction from 0 to 1, got {value!r}")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {value!r}")
        return value

    def init_health(self, raw: Any) -> InitHealth:
        key = "search.init_health"
        raw = self.table(raw, key, InitHealth)
        return InitHealth(
            enabled=self.boolean(raw.get("enabled", InitHealth.enabled), f"{key}.enabled"),
            collapse=self.fraction(raw.get("collapse", InitHealth.collapse), f"{key}.collapse"),
            saturation=self.fraction(
                raw.get("saturation", InitHealth.saturation), f"{key}.saturation"
            ),
        )

    def confirm(self, raw: Any) -> Confirm:
        """`[search.confirm]`, or `confirm = true | false` for its defaults or none."""
        key = "search.confirm"
        if isinstance(raw, bool):
            return Confirm(enabled=raw)
        if not isinstance(raw, Mapping):
            self.fail(key, f"must be a table or true or false, got {raw!r}")
        raw = self.table(raw, key, Confirm)
        return Confirm(
            enabled=self.boolean(raw.get("enabled", Confirm.enabled), f"{key}.enabled"),
            top_k=self.integer(raw.get("top_k", Confirm.top_k), f"{key}.top_k", 1),
            max_repeats=self.integer(
                raw.get("max_repeats", Confirm.max_repeats), f"{key}.max_repeats", 1
            ),
            share=self.fraction(raw.get("share", Confirm.share), f"{key}.share"),
            reshuffle=self.boolean(raw.get("reshuffle", Confirm.reshuffle), f"{key}.reshuffle"),
        )

    def options(self, raw: Any, key: str) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            self.fail(key, f"must be a table of keyword arguments, got {raw!r}")
        for name, value in raw.items():
            self.finite(value, f"{key}.{name}")
        return dict(raw)

    def finite(self, value: Any, key: str) -> None:
        """No NaN or infinity anywhere inside a value (TOML allows both)."""
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(key, f"must be a finite number, got {value!r}")
        if isinstance(value, str):
            self.text(value, key)
        elif isinstance(value, Mapping):
            for name, item in value.items():
                self.finite(item, f"{key}.{name}")
        elif isinstance(value, list | tuple):
            for item in value:
                self.finite(item, key)

    def value(self, name: str, value: Any, key: str, setting: Setting | None = None) -> Any:
        """One value of a searchable setting (or of a user's own parameter, `setting`),
        checked against its type and bounds."""
        setting = setting or SEARCHABLE[name]
        if setting.kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(key, f"must be a number, got {value!r}")
            if not math.isfinite(value):
                self.fail(key, f"must be a finite number, got {value!r}")
            value = float(value)
        elif setting.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(key, f"must be an integer, got {value!r}")
        elif setting.kind is bool:
            if not isinstance(value, bool):
                self.fail(key, f"must be true or false, got {value!r}")
        elif not isinstance(value, str):
            self.fail(key, f"must be a string, got {value!r}")
        if setting.names and value not in setting.names:
            self.fail(key, f"unknown {name} {value!r}; choose one of {', '.join(setting.names)}")
        too_small = setting.minimum is not None and (
            value < setting.minimum or (setting.strict_minimum and value == setting.minimum)
        )
        if too_small:
            relation = ">" if setting.strict_minimum else ">="
            self.fail(key, f"must be {relation} {setting.minimum:g}, got {value!r}")
        if setting.below is not None and value >= setting.below:
            self.fail(key, f"must be < {setting.below:g}, got {value!r}")
        if setting.maximum is not None and value > setting.maximum:
            self.fail(key, f"must be <= {setting.maximum:g}, got {value!r}")
        return value

    def own_setting(self, name: str, raw: Mapping[str, Any], key: str) -> Setting:
        """The type of a python entry's own parameter: integer when its bounds (or all its
        choices) are integers, a number when they are numbers, else text or true/false."""
        if not name.isidentifier():
            self.fail(key, "a parameter's name must be an identifier (letters, digits, _)")
        values = raw.get("choices") if "choices" in raw else [raw.get("low"), raw.get("high")]
        if not isinstance(values, list | tuple) or not values:
            return Setting("python", float)  # the range or choice checks name the problem
        kinds = {bool if isinstance(v, bool) else type(v) for v in values}
        if kinds <= {int}:
            return Setting("python", int)
        if kinds <= {int, float}:
            return Setting("python", float)
        if len(kinds) == 1 and kinds <= {str, bool}:
            return Setting("python", kinds.pop())
        self.fail(key, f"values must be all numbers, all text or all true/false: {values!r}")

    def setting(self, table: Mapping[str, Any], name: str, default: Any, section: str) -> Any:
        if name not in table:
            return default
        return self.value(name, table[name], f"{section}.{name}")

    def param(self, name: str, raw: Any, *, own: bool = False) -> Param:
        """A searched parameter: one of hpsearch's settings, or (`own`: a python entry's
        search) any name, its type read from its values."""
        key = f"search.params.{name}"
        if not isinstance(raw, Mapping):
            self.fail(key, "must be a table with low/high[/log/step] or choices")
        if name in SEARCHABLE:
            setting = SEARCHABLE[name]
        elif own:
            setting = self.own_setting(name, raw, key)
        else:
            self.fail(key, f"cannot be searched; searchable settings are {', '.join(SEARCHABLE)}")
        kind = setting.kind
        if "choices" in raw:
            extra = sorted(set(raw) - {"choices"})
            if extra:
                self.fail(f"{key}.{extra[0]}", "unknown key; a choice takes only 'choices'")
            choices = raw["choices"]
            if not isinstance(choices, list | tuple) or not choices:
                self.fail(f"{key}.choices", f"must be a non-empty list, got {choices!r}")
            values = tuple(self.value(name, v, f"{key}.choices", setting) for v in choices)
            if len(set(values)) != len(values):
                self.fail(f"{key}.choices", f"has duplicates: {list(choices)!r}")
            return Choice(values)
        if kind not in (float, int):
            self.fail(key, f"{name} takes a list of choices, e.g. choices = [...]")
        allowed = {"low", "high", "log", "step"}
        extra = sorted(set(raw) - allowed)
        if extra:
            self.fail(f"{key}.{extra[0]}", "unknown key; a range takes low, high, log, step")
        for bound in ("low", "high"):
            if bound not in raw:
                self.fail(key, "a range needs both low and high (or give choices)")
        low = self.value(name, raw["low"], f"{key}.low", setting)
        high = self.value(name, raw["high"], f"{key}.high", setting)
        log = raw.get("log", False)
        if not isinstance(log, bool):
            self.fail(f"{key}.log", f"must be true or false, got {log!r}")
        if low >= high:
            what = "empty" if low == high else "inverted"
            self.fail(key, f"{what} range: low = {low!r} must be below high = {high!r}")
        if log and low <= 0:
            self.fail(
                f"{key}.low",
                f"a log range must have low > 0, got {low!r}; use a small positive low "
                "such as 1e-8",
            )
        if kind is int:
            step = self.integer(raw.get("step", 1), f"{key}.step", minimum=1)
            if log and step != 1:
                self.fail(f"{key}.step", "a log-scale integer range needs step = 1")
            return IntRange(low, high, log=log, step=step)
        step = raw.get("step")
        if step is not None:
            step = self.number(step, f"{key}.step", above=0.0)
            if log:
                self.fail(f"{key}.step", "a log-scale range cannot have a step")
            if (high - low) / step > MAX_STEPS:
                self.fail(
                    f"{key}.step",
                    f"{step!r} cuts the range into more than {MAX_STEPS:.0e} points; "
                    "use a larger step or none",
                )
        return FloatRange(low, high, log=log, step=step)
