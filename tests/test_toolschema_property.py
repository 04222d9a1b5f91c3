"""Property: the arguments a tool accepts are exactly those its JSON Schema allows.

The model is given the JSON Schema; masquerade validates with the pydantic model the
schema came from. Both must agree, in both directions, or the model is either refused
arguments its schema allows or handed to Python arguments its schema forbids.

One documented convention: like Python's ``json``, masquerade keeps ``2.0`` a number and
asks for ``2`` where an integer is expected, whereas JSON Schema counts ``2.0`` as an
integer; the validator below is told the same (``integer`` means an integral JSON number
written without a fraction).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from masquerade import ToolArgumentsError, tool
from masquerade.tools import Tool


class Size(enum.StrEnum):
    SMALL = "s"
    LARGE = "l"


@dataclasses.dataclass
class Address:
    street: str
    city: str = "Paris"


class Window(TypedDict):
    start: int
    end: int


class Customer(BaseModel):
    name: str
    vip: bool = False


@tool
def scalars(s: str, i: int, f: float, b: bool = False) -> None:
    """Scalars."""


@tool
def choices(
    mode: Literal["pickup", "delivery"],
    size: Size,
    tags: list[str],
    hours: list[int] | None = None,
    note: str | None = None,
) -> None:
    """Choices."""


@tool
def nested(
    address: Address,
    window: Window,
    customer: Customer | None = None,
    rating: Annotated[int, Field(ge=0, le=10)] = 5,
    name: Annotated[str, Field(min_length=1, max_length=5)] = "x",
) -> None:
    """Nested."""


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly plausible values, sometimes anything at all."""
    return weighted(good, JSON, 1 / 8)


def weighted(
    usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], p: float
) -> st.SearchStrategy[Any]:
    # (one_of treats repeated strategies as one, so weights need a coin)
    return st.floats(0, 1).flatmap(lambda x: rare if x < p else usual)


def obj(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Objects that sometimes miss a required key or carry an unknown one."""
    keys = {**required, **optional}
    base = st.fixed_dictionaries(
        {k: maybe(v) for k, v in required.items()},
        optional={k: maybe(v) for k, v in optional.items()},
    )
    broken = st.one_of(
        st.builds(
            lambda d, k: {x: y for x, y in d.items() if x != k},
            base,
            st.sampled_from(sorted(keys)),
        ),
        st.builds(lambda d, k, v: {**d, k: v}, base, st.text(max_size=6), JSON),
    )
    return weighted(base, broken, 1 / 6)


STRATEGIES: dict[str, tuple[Tool, st.SearchStrategy[Any]]] = {
    "scalars": (
        scalars,
        obj(
            {"s": st.text(), "i": st.integers(), "f": st.floats(allow_nan=False,
                                                                  allow_infinity=False)},
            {"b": st.booleans()},
        ),
    ),
    "choices": (
        choices,
        obj(
            {
                "mode": st.sampled_from(["pickup", "delivery"] * 3 + ["drone"]),
                "size": st.sampled_from(["s", "l"] * 3 + ["m", "S"]),
                "tags": st.lists(st.text(max_size=4), max_size=3),
            },
            {
                "hours": st.none() | st.lists(st.integers(), max_size=3) | st.lists(st.floats()),
                "note": st.none() | st.text(max_size=4),
            },
        ),
    ),
    "nested": (
        nested,
        obj(
            {
                "address": obj({"street": st.text(max_size=4)}, {"city": st.text(max_size=4)}),
                "window": obj({"start": st.integers(), "end": st.integers()}, {}),
            },
            {
                "customer": st.none()
                | obj({"name": st.text(max_size=4)}, {"vip": st.booleans()}),
                "rating": st.integers(min_value=-1, max_value=11),
                "name": st.text(min_size=1, max_size=5) | st.text(max_size=7),
            },
        ),
    ),
}

# JSON Schema's "integer" also matches 2.0; masquerade's JSON data model does not.
_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
)
Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPES)


_validators: dict[str, Any] = {}


def validator(t: Tool) -> Any:
    if t.name not in _validators:
        schema = t.parameters_schema
        Validator.check_schema(schema)
        _validators[t.name] = Validator(schema)
    return _validators[t.name]


def agree(t: Tool, arguments: Any) -> bool:
    schema_ok = bool(validator(t).is_valid(arguments))
    try:
        t.parse_arguments(arguments)
        python_ok = True
    except ToolArgumentsError:
        python_ok = False
    assert python_ok == schema_ok, (
        f"{t.name}: pydantic {'accepts' if python_ok else 'rejects'} but the JSON Schema "
        f"{'allows' if schema_ok else 'forbids'} {json.dumps(arguments)}"
    )
    return python_ok


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_pydantic_and_json_schema_agree(name: str, data: st.DataObject) -> None:
    t, strategy = STRATEGIES[name]
    accepted = agree(t, data.draw(strategy, label="arguments"))
    event("accepted" if accepted else "rejected")


@pytest.mark.parametrize(
    ("t", "arguments", "accepted"),
    [
        (scalars, {"s": "x", "i": 1, "f": 1}, True),  # an integer is a number
        (scalars, {"s": "x", "i": "1", "f": 1.0}, False),  # no string-to-number coercion
        (scalars, {"s": "x", "i": True, "f": 1.0}, False),  # a boolean is not an integer
        (scalars, {"s": "x", "i": 1, "f": 1.0, "z": 0}, False),  # unknown argument
        (choices, {"mode": "pickup", "size": "s", "tags": []}, True),
        (choices, {"mode": "pickup", "size": "S", "tags": []}, False),
        (choices, {"mode": "pickup", "size": "s", "tags": [], "hours": None}, True),
        (nested, {"address": {"street": "a"}, "window": {"start": 1, "end": 2}}, True),
        (nested, {"address": {"street": "a", "zip": 1}, "window": {"start": 1, "end": 2}}, False),
        (nested, {"address": {"street": "a"}, "window": {"start": 1, "end": 2},
                  "customer": {"name": "n", "extra": 1}}, True),  # the model ignores extras
        (nested, {"address": {"street": "a"}, "window": {"start": 1, "end": 2},
                  "rating": 11}, False),
        (nested, {"address": {"street": "a"}, "window": {"start": 1, "end": 2},
                  "name": ""}, False),
    ],
)
def test_known_cases(t: Tool, arguments: dict[str, Any], accepted: bool) -> None:
    assert agree(t, arguments) is accepted


@given(arguments=STRATEGIES["scalars"][1])
@example(arguments={"s": "x", "i": 2.0, "f": 1.0})
@settings(max_examples=50, deadline=None)
def test_integral_floats_are_not_integers(arguments: dict[str, Any]) -> None:
    agree(scalars, arguments)
