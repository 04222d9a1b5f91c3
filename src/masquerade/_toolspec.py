"""A Python function described as a tool: docstring, arguments model, JSON Schema.

For every tool, :func:`describe` builds one pydantic model from the function's signature
(the same model validates the model's arguments at call time), derives the JSON Schema of
the parameters from it, and checks that Runway can express it
(:mod:`masquerade._runway_params`). It runs when the tool is defined, so a tool Runway
would reject fails at ``@tool``, with a message that names the tool and the parameter and
says how to fix it. The built-in ``toolschema`` plugin renders the result in each
provider's dialect; its page lists the types a parameter may have.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

from ._runway_params import (
    RPC_DELIVERY_MARGIN,
    RUNWAY_LIMITS,
    Problem,
    check_description,
    check_name,
    humanize,
    runway_parameters,
)
from .errors import ToolDefinitionError

if TYPE_CHECKING:
    from pydantic_core import core_schema

__all__ = ["ToolSpec", "describe", "parse_docstring", "timeout_seconds", "copy_json"]

logger = logging.getLogger("masquerade.toolschema")


# ------------------------------------------------------------------ docstrings
def _squash(text: str) -> str:
    return " ".join(text.split())


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into its description and per-parameter descriptions.

    The style (Google, NumPy or Sphinx) is detected by griffe::

        >>> parse_docstring(":param day: Day of the week.")
        ('', {'day': 'Day of the week.'})

    Attributes sections count as parameters (that is how classes document fields).
    """
    if not doc or not doc.strip():
        return "", {}
    import griffe  # imported on first use: it takes a quarter of a second

    docstring = griffe.Docstring(inspect.cleandoc(doc))
    style, _ = griffe.infer_docstring_style(docstring, default="google")
    sections = docstring.parse(style, warnings=False)
    text: list[str] = []
    params: dict[str, str] = {}
    for section in sections:
        kind = section.kind.value
        if kind == "text":
            text.append(str(section.value).strip())
        elif kind in ("parameters", "other parameters", "attributes"):
            for item in section.value:
                description = _squash(str(item.description or ""))
                if description:
                    params.setdefault(str(item.name).lstrip("*"), description)
    return "\n\n".join(t for t in text if t), params


# ------------------------------------------------------------------ the model
@dataclass(frozen=True)
class ToolSpec:
    """Everything masquerade derives from a tool's signature, once, at definition.

    Attributes:
        model: the pydantic model of the arguments (fields are aliased to the parameter
            names, so any Python parameter name works).
        fields: ``(field name, parameter name, positional only)`` per parameter.
        parameters: the JSON Schema of the arguments (OpenAI's ``parameters``).
        runway_parameters: Runway's parameter list.
        description: the tool's description.
    """

    model: type[BaseModel]
    fields: tuple[tuple[str, str, bool], ...]
    parameters: dict[str, Any]
    runway_parameters: list[dict[str, Any]]
    description: str


class _DocumentedSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, plus field descriptions from nested classes' docstrings
    (``Attributes:`` sections), which pydantic leaves in the class description."""

    def _documented(self, json_schema: JsonSchemaValue, cls: Any) -> JsonSchemaValue:
        doc = getattr(cls, "__doc__", None)
        if not doc or not isinstance(json_schema.get("properties"), dict):
            return json_schema
        text, fields = parse_docstring(doc)
        if text and not text.startswith(f"{getattr(cls, '__name__', '')}("):
            json_schema["description"] = text
        else:  # a dataclass's generated docstring says nothing
            json_schema.pop("description", None)
        for name, prop in json_schema["properties"].items():
            if isinstance(prop, dict) and "description" not in prop and name in fields:
                prop["description"] = fields[name]
        return json_schema

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        return self._documented(super().model_schema(schema), schema.get("cls"))

    def dataclass_schema(self, schema: core_schema.DataclassSchema) -> JsonSchemaValue:
        return self._documented(super().dataclass_schema(schema), schema.get("cls"))

    def typed_dict_schema(self, schema: core_schema.TypedDictSchema) -> JsonSchemaValue:
        return self._documented(super().typed_dict_schema(schema), schema.get("cls"))


def _annotated_descriptions(annotation: Any) -> tuple[str | None, str | None]:
    """Descriptions given in ``Annotated[T, Field(description=...)]`` and in
    ``Annotated[T, "text"]`` (which pydantic itself ignores)."""
    if get_origin(annotation) is not Annotated:
        return None, None
    field_description = text = None
    for meta in get_args(annotation)[1:]:
        if isinstance(meta, FieldInfo) and meta.description:
            field_description = meta.description
        elif isinstance(meta, str) and meta.strip():
            text = meta.strip()
    return field_description, text


def _find_bad_annotation(tool_name: str, annotations: dict[str, Any], exc: Exception) -> None:
    for param_name, annotation in annotations.items():
        try:
            TypeAdapter(annotation).json_schema()
        except Exception as inner:
            detail = str(inner).splitlines()[0]
            hint = "use str, int, float, bool, Literal, Enum, list[...] or a pydantic model"
            if "TypedDict" in detail:
                hint = "import TypedDict from typing_extensions (needed before Python 3.12)"
            raise ToolDefinitionError(
                f"tool {tool_name!r}: parameter {param_name!r} has a type masquerade cannot "
                f"turn into a schema ({annotation!r}): {detail}",
                hint=hint,
            ) from inner
    raise ToolDefinitionError(
        f"tool {tool_name!r}: its parameters cannot be turned into a schema: {exc}",
        hint="use str, int, float, bool, Literal, Enum, list[...] or a pydantic model",
    ) from exc


def _build_model(
    fn: Callable[..., Any],
    tool_name: str,
    context_type: type,
    localns: Mapping[str, Any] | None,
) -> tuple[type[BaseModel], tuple[tuple[str, str, bool], ...], bool, dict[str, str], str]:
    names: dict[str, Any] = {}
    try:
        names.update(inspect.getclosurevars(fn).nonlocals)  # types local to a function
    except (TypeError, ValueError):
        pass  # not a plain function: its globals are all there is
    names.update(localns or {})
    try:
        signature = inspect.signature(fn, eval_str=True, locals=names)
    except NameError as exc:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: a type hint of its function cannot be resolved: {exc}",
            hint="define or import the type before the tool is defined (hints are evaluated "
            "by @tool), at module level if the tool is not decorated where it is defined",
        ) from exc
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: cannot read the signature of {fn!r}: {exc}",
            hint="wrap it in a def with typed parameters",
        ) from exc
    description, docs = parse_docstring(inspect.getdoc(fn))
    params = list(signature.parameters.values())
    takes_context = bool(params) and _is_context(params[0].annotation, context_type)
    if takes_context:
        params = params[1:]
    definitions: dict[str, Any] = {}
    annotations: dict[str, Any] = {}
    fields: list[tuple[str, str, bool]] = []
    for i, param in enumerate(params):
        where = f"tool {tool_name!r}: parameter {param.name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise ToolDefinitionError(
                f"tool {tool_name!r} takes {star}{param.name}, which a model cannot fill",
                hint="list the parameters one by one with their types",
            )
        if _is_context(param.annotation, context_type):
            raise ToolDefinitionError(
                f"{where} is a ToolContext but is not the first parameter",
                hint="make the ToolContext the first parameter of the function",
            )
        if param.annotation is inspect.Parameter.empty:
            hint = f"annotate it, for example `{param.name}: str`"
            if param.name in ("self", "cls"):
                hint = "decorate the bound method instead: tool(instance.method)"
            raise ToolDefinitionError(f"{where} has no type hint", hint=hint)
        field_name = f"p{i}"
        default = ... if param.default is inspect.Parameter.empty else param.default
        field_description, text_description = _annotated_descriptions(param.annotation)
        extra: dict[str, Any] = {}
        if not field_description:  # a Field(description=...) in Annotated says it already
            description_text = text_description or docs.get(param.name)
            if description_text:
                extra["description"] = description_text
        definitions[field_name] = (
            param.annotation,
            Field(default, alias=param.name, **extra),
        )
        annotations[param.name] = param.annotation
        fields.append((field_name, param.name, param.kind is param.POSITIONAL_ONLY))
    known = {p.name for p in params}
    unknown = sorted(set(docs) - known - {"ctx", "context"})
    if unknown:
        logger.warning(
            "tool %s documents parameters it does not have: %s", tool_name, ", ".join(unknown)
        )
    try:
        model = create_model(
            f"{tool_name}_arguments",
            __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=False),
            **definitions,
        )
    except Exception as exc:
        _find_bad_annotation(tool_name, annotations, exc)
        raise  # unreachable: the helper always raises
    if not model.__pydantic_complete__:  # a hint names a type that does not exist (yet)
        try:
            model.model_rebuild(_types_namespace={**_fn_globals(fn), **names})
        except Exception as exc:
            detail = str(exc).splitlines()[0]
            raise ToolDefinitionError(
                f"tool {tool_name!r}: a type hint of its function cannot be resolved: {detail}",
                hint="define or import the type before the tool is defined",
            ) from None
    return model, tuple(fields), takes_context, docs, description


def _fn_globals(fn: Callable[..., Any]) -> dict[str, Any]:
    target = inspect.unwrap(fn)
    found = getattr(target, "__globals__", None)
    return dict(found) if isinstance(found, dict) else {}


def _is_context(annotation: Any, context_type: type) -> bool:
    if annotation is context_type or annotation == "ToolContext":
        return True
    return isinstance(annotation, type) and issubclass(annotation, context_type)


# ------------------------------------------------------------------ JSON Schema
_ORDER = (
    "type",
    "description",
    "enum",
    "const",
    "items",
    "properties",
    "required",
    "additionalProperties",
)
_LITERAL_KEYS = frozenset({"default", "enum", "const", "examples"})


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """Resolve ``$ref``s, drop pydantic's titles and order the keys readably."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def walk(node: Any, path: str, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(item, path, stack) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name in stack:
                raise Problem(
                    path,
                    f"uses the recursive type {name}, which tool schemas cannot express",
                    "flatten the type, or take the nested part as a JSON string",
                )
            merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return walk(merged, path, (*stack, name))
        if "allOf" in node and len(node["allOf"]) == 1:
            merged = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
            return walk(merged, path, stack)
        out: dict[str, Any] = {}
        for key in (*_ORDER, *sorted(node)):
            if key in out or key not in node or key in ("title", "$defs"):
                continue
            value = node[key]
            if key == "properties" and isinstance(value, dict):
                out[key] = {
                    name: walk(sub, f"{path}.{name}" if path else name, stack)
                    for name, sub in value.items()
                }
            elif key in _LITERAL_KEYS:
                out[key] = value
            else:
                out[key] = walk(value, path, stack)
        return out

    result: dict[str, Any] = walk(schema, "", ())
    result.pop("description", None)  # the tool's description says it
    result.setdefault("properties", {})
    return result


# ------------------------------------------------------------------ describe
def describe(
    fn: Callable[..., Any],
    *,
    name: str,
    description: str | None,
    kind: str,
    timeout: float,
    context_type: type,
    localns: Mapping[str, Any] | None = None,
) -> tuple[ToolSpec, bool]:
    """Build the :class:`ToolSpec` of a tool and check it against Runway's limits.

    ``localns`` holds names visible where the tool is defined, to resolve string
    annotations. Returns the spec and whether the function takes a ToolContext first. Raises
    :class:`~masquerade.ToolDefinitionError` naming the tool (and the parameter) when the
    tool cannot be described, with a hint on how to fix it.
    """
    try:
        check_name(name, "tool name", "")
    except Problem as problem:
        raise ToolDefinitionError(problem.message, hint=problem.hint) from None
    if kind not in ("backend_rpc", "client_event"):
        raise ToolDefinitionError(
            f"tool {name!r}: kind {kind!r} is not a tool kind",
            hint='use kind="backend_rpc" (answered by Python) or kind="client_event"',
        )
    if not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
        raise ToolDefinitionError(
            f"tool {name!r}: timeout={timeout!r} must be a positive number of seconds",
            hint="for example @tool(timeout=2)",
        )
    ceiling = RUNWAY_LIMITS["timeout_seconds"][1] - RPC_DELIVERY_MARGIN
    if kind == "backend_rpc" and timeout > ceiling:
        raise ToolDefinitionError(
            f"tool {name!r}: timeout={timeout:g}s is too long for a Runway backend_rpc "
            f"tool: Runway waits at most {RUNWAY_LIMITS['timeout_seconds'][1]:g}s for the "
            f"answer and masquerade keeps {RPC_DELIVERY_MARGIN:g}s to deliver it",
            hint=f"use timeout <= {ceiling:g}, or start the slow work in the background and "
            "report back in a later turn",
        )
    model, fields, takes_context, _docs, doc_description = _build_model(
        fn, name, context_type, localns
    )
    text = description if description is not None else (doc_description or humanize(name))
    if not text.strip():
        raise ToolDefinitionError(
            f"tool {name!r} has an empty description",
            hint="write a docstring, or pass @tool(description=...)",
        )
    try:
        check_description(text, "")
        try:
            raw = model.model_json_schema(schema_generator=_DocumentedSchema)
        except Exception as exc:
            raise Problem(
                "",
                f"cannot be turned into a JSON Schema: {exc}",
                "use plainer types: str, int, float, bool, Literal, Enum, list[...], models",
            ) from exc
        parameters = _inline(raw)
        runway = runway_parameters(parameters)
    except Problem as problem:
        where = f"tool {name!r}" + (f": parameter {problem.path!r}" if problem.path else "")
        raise ToolDefinitionError(f"{where} {problem.message}", hint=problem.hint) from None
    spec = ToolSpec(
        model=model,
        fields=fields,
        parameters=parameters,
        runway_parameters=runway,
        description=text,
    )
    return spec, takes_context


def timeout_seconds(timeout: float) -> float:
    """Runway's ``timeoutSeconds`` for a tool whose own timeout is ``timeout``."""
    low, high = RUNWAY_LIMITS["timeout_seconds"]
    return float(min(high, max(low, round(timeout + RPC_DELIVERY_MARGIN, 3))))


def copy_json(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars); a few times faster than deepcopy."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value
