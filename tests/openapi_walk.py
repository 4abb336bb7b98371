"""Walking the request schemas of the app's OpenAPI document (for sweeps over every writable field)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Path = tuple[Any, ...]  # keys and list indexes from the body's root


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its $ref (and allOf) resolved."""
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "allOf" in schema:
        merged: dict[str, Any] = {"properties": {}}
        for part in schema["allOf"]:
            merged["properties"].update(resolve(spec, part).get("properties", {}))
        return merged
    return schema


def body_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    return op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")


def objects(spec: dict[str, Any], schema: dict[str, Any], prefix: Path = (), depth: int = 0
            ) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path, properties) of the body object and of every object nested in it (through arrays too)."""
    schema = resolve(spec, schema)
    props = schema.get("properties")
    if props is None or depth > 3:
        return
    resolved = {name: resolve(spec, sub) for name, sub in props.items()}
    yield prefix, resolved
    for name, sub in resolved.items():
        if sub.get("type") == "array" and "items" in sub:
            yield from objects(spec, sub["items"], (*prefix, name, 0), depth + 1)
        elif "properties" in sub:
            yield from objects(spec, sub, (*prefix, name), depth + 1)


def nest(path: Path, leaf: dict[str, Any]) -> Any:
    """`leaf` placed at `path` in an otherwise empty body."""
    value: Any = leaf
    for step in reversed(path):
        value = [value] if isinstance(step, int) else {step: value}
    return value


def key(path: Path, name: str) -> str:
    """The dotted key the API's problem `errors` use for a field."""
    return ".".join(str(s) for s in (*path, name))
