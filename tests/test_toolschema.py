"""Tool schemas: golden schemas in both dialects, docstring styles, Runway's limits and the
types a dialect cannot express, all found when the tool is defined."""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Any, Literal, Optional

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from masquerade import Host, ToolContext, ToolDefinitionError, tool
from masquerade.builtin.toolschema import parse_docstring
from masquerade.tools import Tool


@pytest.fixture(scope="module")
def host() -> Host:
    return Host(load_entrypoints=False)


def openai(host: Host, t: Tool) -> dict[str, Any]:
    return host.tool_schema(t, "openai")


def runway(host: Host, t: Tool) -> dict[str, Any]:
    return host.tool_schema(t, "runway")


# ---------------------------------------------------------------- golden schemas
def test_scalars_and_defaults(host: Host) -> None:
    @tool
    def book_slot(day: str, hour: int, length: float = 1.5, urgent: bool = False) -> str:
        """Book a delivery slot.

        Args:
            day: Day of the week.
            hour: Hour of the day,
                8 to 18.
            length: Hours the slot lasts.
            urgent: Whether to jump the queue.
        """
        return ""

    assert openai(host, book_slot) == {
        "type": "function",
        "name": "book_slot",
        "description": "Book a delivery slot.",
        "parameters": {
            "type": "object",
            "properties": {
                "day": {"type": "string", "description": "Day of the week."},
                "hour": {"type": "integer", "description": "Hour of the day, 8 to 18."},
                "length": {
                    "type": "number",
                    "description": "Hours the slot lasts.",
                    "default": 1.5,
                },
                "urgent": {
                    "type": "boolean",
                    "description": "Whether to jump the queue.",
                    "default": False,
                },
            },
            "required": ["day", "hour"],
            "additionalProperties": False,
        },
    }
    assert runway(host, book_slot) == {
        "type": "backend_rpc",
        "name": "book_slot",
        "description": "Book a delivery slot.",
        "parameters": [
            {"name": "day", "type": "string", "description": "Day of the week.",
             "required": True},
            {"name": "hour", "type": "integer", "description": "Hour of the day, 8 to 18.",
             "required": True},
            {"name": "length", "type": "number", "description": "Hours the slot lasts.",
             "required": False},
            {"name": "urgent", "type": "boolean", "description": "Whether to jump the queue.",
             "required": False},
        ],
        "timeoutSeconds": 4.0,
    }


class Size(enum.StrEnum):
    SMALL = "s"
    LARGE = "l"


@dataclasses.dataclass
class Address:
    """A postal address.

    Attributes:
        street: Street and number.
        city: The city.
    """

    street: str
    city: str = "Paris"


class Window(TypedDict):
    """A delivery window.

    Args:
        start: First hour.
        end: Last hour.
    """

    start: int
    end: int


class Customer(BaseModel):
    """Who orders."""

    name: str = Field(description="Full name.")
    vip: bool = False


def test_choices_lists_optionals_and_nested_types(host: Host) -> None:
    @tool(timeout=2)
    async def order(
        ctx: ToolContext,
        mode: Literal["pickup", "delivery"],
        size: Size,
        tags: list[str],
        note: Optional[str] = None,  # noqa: UP045 - the Optional spelling is what is tested
        address: Address | None = None,
        window: Window | None = None,
        customer: Customer | None = None,
        hours: Annotated[list[int], Field(description="Acceptable hours.")] = [],  # noqa: B006
        priority: Annotated[int, "How urgent, 1 to 5."] = 1,
    ) -> str:
        """Place an order.

        The order is confirmed by text message.

        Args:
            mode: How the customer gets it.
            size: Box size.
            tags: Labels for the warehouse.
            note: A note for the driver.
            address: Where to deliver.
            window: When to deliver.
            customer: Who orders.
            hours: Ignored: the Field description wins.
        """
        return ""

    assert order.takes_context
    assert order.description == "Place an order.\n\nThe order is confirmed by text message."
    params = openai(host, order)["parameters"]
    assert params["required"] == ["mode", "size", "tags"]
    props = params["properties"]
    assert "ctx" not in props
    assert props["mode"] == {
        "type": "string",
        "description": "How the customer gets it.",
        "enum": ["pickup", "delivery"],
    }
    assert props["size"] == {"type": "string", "description": "Box size.", "enum": ["s", "l"]}
    assert props["tags"] == {
        "type": "array",
        "description": "Labels for the warehouse.",
        "items": {"type": "string"},
    }
    assert props["note"] == {
        "description": "A note for the driver.",
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "default": None,
    }
    assert props["address"]["anyOf"][0] == {
        "type": "object",
        "description": "A postal address.",
        "properties": {
            "street": {"type": "string", "description": "Street and number."},
            "city": {"type": "string", "description": "The city.", "default": "Paris"},
        },
        "required": ["street"],
        "additionalProperties": False,
    }
    assert props["window"]["anyOf"][0]["properties"]["start"] == {
        "type": "integer",
        "description": "First hour.",
    }
    assert props["customer"]["anyOf"][0]["properties"]["name"] == {
        "type": "string",
        "description": "Full name.",
    }
    assert props["hours"]["description"] == "Acceptable hours."
    assert props["priority"] == {
        "type": "integer",
        "description": "How urgent, 1 to 5.",
        "default": 1,
    }
    assert "$defs" not in str(params)
    assert "title" not in str(params)

    schema = runway(host, order)
    assert schema["timeoutSeconds"] == 2.5
    by_name = {p["name"]: p for p in schema["parameters"]}
    assert list(by_name) == [
        "mode", "size", "tags", "note", "address", "window", "customer", "hours", "priority"
    ]
    assert by_name["mode"] == {
        "name": "mode",
        "type": "string",
        "description": "How the customer gets it.",
        "required": True,
        "enum": ["pickup", "delivery"],
    }
    assert by_name["size"]["enum"] == ["s", "l"]
    assert by_name["tags"]["items"] == {"type": "string"}
    assert by_name["hours"]["items"] == {"type": "integer"}
    assert by_name["note"] == {
        "name": "note",
        "type": "string",
        "description": "A note for the driver.",
        "required": False,
    }
    assert by_name["address"] == {
        "name": "address",
        "type": "object",
        "description": "Where to deliver.",
        "required": False,
        "properties": [
            {"name": "street", "type": "string", "description": "Street and number.",
             "required": True},
            {"name": "city", "type": "string", "description": "The city.", "required": False},
        ],
    }
    assert [p["name"] for p in by_name["window"]["properties"]] == ["start", "end"]
    # A nested field without any description gets its name, since Runway requires one.
    assert by_name["customer"]["properties"][1] == {
        "name": "vip",
        "type": "boolean",
        "description": "Vip",
        "required": False,
    }


def test_client_event_tools_have_no_timeout_seconds(host: Host) -> None:
    @tool(kind="client_event", name="show_map", description="Show a map to the user.")
    def show(city: str) -> None:
        return None

    schema = runway(host, show)
    assert schema["type"] == "client_event"
    assert schema["name"] == "show_map"
    assert schema["description"] == "Show a map to the user."
    assert "timeoutSeconds" not in schema
    assert openai(host, show)["name"] == "show_map"


def test_no_parameters_and_no_docstring(host: Host) -> None:
    @tool
    def hang_up() -> str:
        return "bye"

    assert openai(host, hang_up)["parameters"] == {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }
    assert runway(host, hang_up)["parameters"] == []
    # Runway requires a description: without a docstring, the name says what it does.
    assert hang_up.description == "Hang up"


def test_timeout_seconds_keeps_a_delivery_margin() -> None:
    def f() -> None:
        """Do it."""

    assert tool(timeout=0.2)(f).timeout_seconds == 1.0  # Runway's minimum
    assert tool(f).timeout == 3.5
    assert tool(f).timeout_seconds == 4.0
    assert tool(timeout=7.5)(f).timeout_seconds == 8.0


def test_schemas_are_cached_and_copies(host: Host) -> None:
    @tool
    def ping(n: int) -> int:
        """Ping."""
        return n

    first = openai(host, ping)
    assert openai(host, ping) is first  # cached on the tool by the host
    first["parameters"]["properties"]["n"]["type"] = "string"
    other_host = Host(load_entrypoints=False)
    fresh = Tool(ping.fn)
    assert other_host.tool_schema(fresh, "openai")["parameters"]["properties"]["n"] == {
        "type": "integer"
    }
    assert ping.parameters_schema["properties"]["n"] == {"type": "integer"}


def test_unknown_dialect_is_a_clear_error(host: Host) -> None:
    @tool
    def ping() -> None:
        """Ping."""

    with pytest.raises(ToolDefinitionError, match="'mcp' dialect"):
        host.tool_schema(ping, "mcp")


# ---------------------------------------------------------------- docstrings
GOOGLE = """Book a delivery slot.

Args:
    day: Day of the week.
    hour: Hour of the day,
        8 to 18.
"""

NUMPY = """Book a delivery slot.

Parameters
----------
day : str
    Day of the week.
hour : int
    Hour of the day,
    8 to 18.
"""

SPHINX = """Book a delivery slot.

:param day: Day of the week.
:param hour: Hour of the day,
    8 to 18.
:returns: a confirmation.
"""


@pytest.mark.parametrize("doc", [GOOGLE, NUMPY, SPHINX], ids=["google", "numpy", "sphinx"])
def test_docstring_styles(doc: str, host: Host) -> None:
    def book_slot(day: str, hour: int) -> str:
        return ""

    book_slot.__doc__ = doc
    assert parse_docstring(doc) == (
        "Book a delivery slot.",
        {"day": "Day of the week.", "hour": "Hour of the day, 8 to 18."},
    )
    props = openai(host, tool(book_slot))["parameters"]["properties"]
    assert props == {
        "day": {"type": "string", "description": "Day of the week."},
        "hour": {"type": "integer", "description": "Hour of the day, 8 to 18."},
    }


def test_docstring_without_sections_is_the_description() -> None:
    @tool
    def f(x: int) -> None:
        """Do a thing.

        It does it well.
        """

    assert f.description == "Do a thing.\n\nIt does it well."
    assert "description" not in f.parameters_schema["properties"]["x"]


def test_explicit_description_wins() -> None:
    @tool(description="Something else.")
    def f() -> None:
        """Do a thing."""

    assert f.description == "Something else."


def test_docstring_of_unknown_parameter_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    @tool
    def f(day: str) -> None:
        """Do it.

        Args:
            days: The days.
        """

    assert "documents parameters it does not have: days" in caplog.text


# ---------------------------------------------------------------- Runway limits
def make_fn(params: str, doc: str = "Do it.", name: str = "f") -> Any:
    namespace: dict[str, Any] = {}
    exec(f"def {name}({params}):\n    {doc!r}\n", globals(), namespace)
    return namespace[name]


def test_at_most_20_parameters() -> None:
    assert len(tool(make_fn(", ".join(f"p{i}: int" for i in range(20)))).parameters_schema[
        "properties"
    ]) == 20
    with pytest.raises(ToolDefinitionError) as err:
        tool(make_fn(", ".join(f"p{i}: int" for i in range(21))))
    assert "tool 'f' has 21 parameters; Runway allows 20 per tool" in err.value.message
    assert "pydantic model" in err.value.hint


@pytest.mark.parametrize(
    "name",
    ["1abc", "has-dash", "has space", "é", "x" * 65],
)
def test_tool_name_pattern_and_length(name: str) -> None:
    def f() -> None:
        """Do it."""

    with pytest.raises(ToolDefinitionError) as err:
        tool(name=name)(f)
    assert "is not a valid name" in err.value.message
    assert "letters, digits and underscores" in err.value.hint


def test_valid_names_at_the_limits() -> None:
    def f() -> None:
        """Do it."""

    assert tool(name="_" + "a" * 63)(f).name == "_" + "a" * 63
    assert tool(name="A")(f).name == "A"


def test_lambda_is_not_a_valid_name() -> None:
    with pytest.raises(ToolDefinitionError, match="'<lambda>' is not a valid name"):
        tool(lambda: None)


def test_parameter_name_pattern() -> None:
    class Weird(BaseModel):
        ok: int
        bad: int = Field(alias="bad-name")

    def f(w: Weird) -> None:
        """Do it."""

    with pytest.raises(ToolDefinitionError) as err:
        tool(f)
    assert err.value.message.startswith("tool 'f': parameter 'w.bad-name'")
    assert "not a valid name" in err.value.message


def test_description_length() -> None:
    def f() -> None:
        """Do it."""

    assert len(tool(description="x" * 1024)(f).description) == 1024
    with pytest.raises(ToolDefinitionError) as err:
        tool(description="x" * 1025)(f)
    assert "1025 characters long; Runway allows 1024" in err.value.message
    with pytest.raises(ToolDefinitionError, match="description is empty"):
        tool(description="  ")(f)


def test_parameter_description_length() -> None:
    long = "word " * 220
    with pytest.raises(ToolDefinitionError) as err:
        tool(make_fn("day: str", doc=f"Do it.\n\nArgs:\n    day: {long}"))
    assert "tool 'f': parameter 'day'" in err.value.message
    assert "Runway allows 1024" in err.value.message
    assert "shorten" in err.value.hint


def test_enum_limits() -> None:
    twenty = ", ".join(repr(f"v{i}") for i in range(20))
    assert tool(make_fn(f"x: Literal[{twenty}]")).parameters_schema["properties"]["x"]["enum"]
    with pytest.raises(ToolDefinitionError) as err:
        tool(make_fn(f"x: Literal[{twenty}, 'v20']"))
    assert "parameter 'x' has 21 choices; Runway allows 20" in err.value.message
    assert tool(make_fn(f"x: Literal[{'a' * 64!r}]"))
    with pytest.raises(ToolDefinitionError) as err:
        tool(make_fn(f"x: Literal[{'a' * 65!r}]"))
    assert "longer than 64 characters" in err.value.message
    assert "short codes" in err.value.hint


def test_enum_of_numbers_is_inexpressible() -> None:
    class Level(enum.IntEnum):
        LOW = 1
        HIGH = 2

    for annotation in (Level, Literal[1, 2]):

        def f(level: Any) -> None:
            """Do it."""

        f.__annotations__["level"] = annotation
        with pytest.raises(ToolDefinitionError) as err:
            tool(f)
        assert "parameter 'level' has the choices [1, 2]; Runway enums hold strings only" in (
            err.value.message
        )
        assert "Literal of strings" in err.value.hint


def test_nested_object_at_most_20_properties() -> None:
    Twenty = TypedDict("Twenty", {f"k{i}": int for i in range(20)})  # type: ignore[misc]
    TwentyOne = TypedDict("TwentyOne", {f"k{i}": int for i in range(21)})  # type: ignore[misc]

    def ok(x: Twenty) -> None:  # type: ignore[valid-type]
        """Do it."""

    def bad(x: TwentyOne) -> None:  # type: ignore[valid-type]
        """Do it."""

    assert len(tool(ok).parameters_schema["properties"]["x"]["properties"]) == 20
    with pytest.raises(ToolDefinitionError) as err:
        tool(bad)
    assert "tool 'bad': parameter 'x' has 21 fields; Runway allows 20" in err.value.message


@pytest.mark.parametrize("timeout", [7.6, 8, 30])
def test_backend_rpc_timeout_must_fit_runway(timeout: float) -> None:
    def f() -> None:
        """Do it."""

    with pytest.raises(ToolDefinitionError) as err:
        tool(timeout=timeout)(f)
    assert "too long for a Runway backend_rpc tool" in err.value.message
    assert "timeout <= 7.5" in err.value.hint
    # A client event is not answered over RPC: no Runway timeout applies.
    assert tool(timeout=timeout, kind="client_event")(f).timeout == timeout


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_timeout_must_be_positive(timeout: float) -> None:
    def f() -> None:
        """Do it."""

    with pytest.raises(ToolDefinitionError, match="must be a positive number"):
        tool(timeout=timeout, kind="client_event")(f)


def test_unknown_kind() -> None:
    def f() -> None:
        """Do it."""

    with pytest.raises(ToolDefinitionError, match="kind 'rest' is not a tool kind"):
        tool(kind="rest")(f)  # type: ignore[call-overload]


# ---------------------------------------------------------------- inexpressible types
class Cat(BaseModel):
    meow: bool


class Dog(BaseModel):
    woof: bool


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Tree(BaseModel):
    root: Node


class Opaque:
    pass


@pytest.mark.parametrize(
    ("annotation", "message", "hint"),
    [
        (Cat | Dog, "parameter 'pet' is a union of models", "single type"),
        (int | str, "parameter 'pet' is a union of integer, string", "single type"),
        (list[Cat], "parameter 'pet' is a list of objects", "lists of scalars"),
        (list[list[int]], "parameter 'pet' is a list of lists", "lists of scalars"),
        (list, "parameter 'pet' is a list without an item type", "list[str]"),
        (dict[str, int], "parameter 'pet' is a free-form mapping", "named fields"),
        (Any, "parameter 'pet' has no JSON type", "concrete type"),
        (Tree, "parameter 'pet.root.children' uses the recursive type Node", "flatten"),
        (Opaque, "parameter 'pet' has a type masquerade cannot turn into a schema", "pydantic"),
    ],
    ids=["union-models", "union-scalars", "list-objects", "list-lists", "bare-list", "dict",
         "any", "recursive", "opaque-class"],
)
def test_inexpressible_types_fail_at_definition(annotation: Any, message: str, hint: str) -> None:
    def adopt(pet: Any) -> None:
        """Adopt a pet."""

    adopt.__annotations__["pet"] = annotation
    with pytest.raises(ToolDefinitionError) as err:
        tool(adopt)
    assert err.value.message.startswith("tool 'adopt'")
    assert message in err.value.message
    assert hint in err.value.hint


def test_stdlib_typeddict_before_312_says_what_to_import() -> None:
    import sys
    import typing

    class Plain(typing.TypedDict):
        a: int

    def f(x: Plain) -> None:
        """Do it."""

    if sys.version_info >= (3, 12):
        assert tool(f)
    else:
        with pytest.raises(ToolDefinitionError) as err:
            tool(f)
        assert "parameter 'x'" in err.value.message
        assert "typing_extensions" in err.value.hint


def test_signature_problems() -> None:
    def star(*names: str) -> None:
        """Do it."""

    def kw(**options: str) -> None:
        """Do it."""

    def untyped(day) -> None:  # type: ignore[no-untyped-def]
        """Do it."""

    def late(day: str, ctx: ToolContext) -> None:
        """Do it."""

    def method(self, day: str) -> None:  # type: ignore[no-untyped-def]
        """Do it."""

    cases = [
        (star, "takes *names, which a model cannot fill", "one by one"),
        (kw, "takes **options", "one by one"),
        (untyped, "parameter 'day' has no type hint", "`day: str`"),
        (late, "parameter 'ctx' is a ToolContext but is not the first parameter", "first"),
        (method, "parameter 'self' has no type hint", "tool(instance.method)"),
    ]
    for fn, message, hint in cases:
        with pytest.raises(ToolDefinitionError) as err:
            tool(fn)
        assert message in err.value.message, fn
        assert hint in err.value.hint, fn


def test_unresolvable_forward_reference() -> None:
    fn = make_fn("x: 'NotDefinedAnywhere'")
    with pytest.raises(ToolDefinitionError) as err:
        tool(fn)
    assert "cannot be resolved" in err.value.message
    assert "before the tool is defined" in err.value.hint


def test_not_a_function() -> None:
    with pytest.raises(ToolDefinitionError, match="a tool needs a function"):
        tool(42)  # type: ignore[call-overload]


def test_undocumented_dataclass_gets_no_generated_description(host: Host) -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: int = 0

    @tool
    def move(to: Point) -> None:
        """Move."""

    assert move.parameters_schema["properties"]["to"] == {
        "type": "object",
        "properties": {"x": {"type": "integer"}, "y": {"type": "integer", "default": 0}},
        "required": ["x"],
        "additionalProperties": False,
    }
    assert runway(host, move)["parameters"][0]["description"] == "To"
