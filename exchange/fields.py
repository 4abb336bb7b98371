"""Marshmallow building blocks shared by every domain: bounded text, strict integers, UTC times,
money, pagination. Every string has a length bound and refuses NUL and other control characters
(PostgreSQL refuses NUL in text; it must be a 422 on both engines, not a 500 on one).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context
from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

from exchange.money import CURRENCIES, MAX_AMOUNT
from exchange.netguard import UnsafeURL, check_public_url

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f]")


class StrictSchema(Schema):
    """Load schemas refuse unknown fields: no mass assignment."""

    class Meta:
        unknown = RAISE


class Text(fields.String):
    """A bounded string; `multiline` allows newlines and tabs. Leading/trailing space is stripped."""

    def __init__(self, *, max_length: int, min_length: int = 1, multiline: bool = False, **kw: Any) -> None:
        self.max_length = max_length
        self.multiline = multiline
        validators = list(kw.pop("validate", []) or [])
        validators.insert(0, validate.Length(min=min_length, max=max_length))
        super().__init__(validate=validators, **kw)
        self.metadata.setdefault("maxLength", max_length)
        self.metadata.setdefault("minLength", min_length)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> str:
        out = super()._deserialize(value, attr, data, **kw)
        pattern = _CONTROL if self.multiline else _CONTROL_SINGLE_LINE
        if pattern.search(out):
            raise ValidationError("Control characters (including NUL) are not allowed.")
        if any("\ud800" <= ch <= "\udfff" for ch in out):
            raise ValidationError("Unpaired surrogates are not valid text.")
        return out.strip()


class PublicURL(Text):
    """An absolute http(s) URL to a public host (no credentials, no private, loopback or link-local
    address, no intranet name), judged and returned in its normalized form: see
    exchange.netguard.check_public_url."""

    def __init__(self, *, max_length: int = 500, **kw: Any) -> None:
        super().__init__(max_length=max_length, **kw)
        self.metadata.setdefault("format", "uri")
        self.metadata.setdefault("description", "an http(s) URL on the public internet (stored normalized: "
                                                "host lowercased, IDNA-mapped, no trailing dot)")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> str:
        out = super()._deserialize(value, attr, data, **kw)
        try:
            return check_public_url(out)  # the Length validator then runs on this normalized form
        except UnsafeURL as exc:
            raise ValidationError(f"URL {exc}.") from None


# Marks a response field as a one-time secret (OpenAPI extension `x-one-time-secret: true`).
ONE_TIME_SECRET = "x-one-time-secret"  # noqa: S105 - a metadata key, not a secret
ONE_TIME_SECRETS_SEEN = "one_time_secrets"  # on flask.g: the values dumped by this request
_REPLAY_NOTE = (" An idempotent replay of this response (same `Idempotency-Key`) carries null here: the "
                "idempotency store never holds the value.")


class OneTimeSecret(fields.String):
    """A secret a response shows once (a webhook signing secret, a Stripe `client_secret`, an API key).

    Each value it dumps is remembered on the request, and `exchange.idempotency` stores (so replays)
    the response with that field null. Mark every such field with this class: the idempotency
    recorder knows nothing about routes."""

    def __init__(self, *, description: str, **kw: Any) -> None:
        metadata = {**kw.pop("metadata", {}), ONE_TIME_SECRET: True, "description": description + _REPLAY_NOTE}
        super().__init__(allow_none=True, metadata=metadata, **kw)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kw: Any) -> str | None:
        out = super()._serialize(value, attr, obj, **kw)
        if out and has_request_context():
            g.setdefault(ONE_TIME_SECRETS_SEEN, set()).add(out)
        return out


class StrictInteger(fields.Integer):
    """An integer that refuses floats and numeric strings, bounded to what RFC 8785 can encode."""

    def __init__(self, *, minimum: int = 0, maximum: int = MAX_AMOUNT, **kw: Any) -> None:
        validators = list(kw.pop("validate", []) or [])
        validators.insert(0, validate.Range(min=minimum, max=maximum))
        super().__init__(strict=True, validate=validators, **kw)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kw)


class UTCDateTime(fields.DateTime):
    """ISO 8601 with a timezone (stored and shown in UTC with `Z`); naive input -> 422."""

    default_error_messages = {"naive": "A timezone is required (for example 2026-11-28T04:00:00Z)."}

    MAX_LENGTH = 40

    def __init__(self, **kw: Any) -> None:
        super().__init__(format="iso", **kw)
        self.metadata.setdefault("maxLength", self.MAX_LENGTH)

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kw: Any) -> str | None:
        return iso_z(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> datetime:
        if isinstance(value, str) and len(value) > self.MAX_LENGTH:
            raise self.make_error("invalid", input=value[:40], obj_type="datetime")
        out = super()._deserialize(value, attr, data, **kw)
        if out.tzinfo is None or out.utcoffset() is None:
            raise self.make_error("naive")
        if not 1970 <= out.year <= 9998:
            raise ValidationError("Year out of range.")
        return out.astimezone(UTC).replace(microsecond=0)


def iso_z(value: datetime | None) -> str | None:
    """The one way the API writes a time: `2026-11-28T04:00:00Z`."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Boolean(fields.Boolean):
    """JSON booleans only: no "yes"/1 coercion in bodies."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class MoneySchema(StrictSchema):
    amount = StrictInteger(required=True, minimum=1, metadata={"description": "minor units (fen/cents), > 0"})
    currency = fields.String(required=True, validate=validate.OneOf(CURRENCIES))


_SUM_NOTE = ("An exact integer of minor units that may exceed 2^53-1 (and 2^63-1): parse it as a big "
             "integer (e.g. JavaScript's JSON.parse rounds it; use a reviver or a bigint-aware parser).")


def money_sum_schema(name: str, what: str) -> type[Schema]:
    """A dump schema `{currency, amount}` for an exact sum of money (which may pass 2^53-1);
    `what` says what is summed. One shape for every such sum, one OpenAPI component per `name`."""
    return type(name, (Schema,), {
        "currency": fields.String(),
        "amount": fields.Integer(metadata={"description": f"{what} {_SUM_NOTE}"}),
    })


class PaginationArgsSchema(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


CURSOR_FIELDS = ("after", "limit")
PAGE_FIELDS = ("page", "per_page")
CURSOR_LIMIT = 20
# The largest id of an `Integer` (32-bit on PostgreSQL) column: a bigger `after` would be a 500 there.
MAX_INT_ID = 2**31 - 1


class CursorArgsSchema(StrictSchema):
    """`?after=&limit=` of an append-only log read by cursor (see `exchange.api.cursor_page`); with
    `page` or `per_page` beside them, a 422."""

    after = Text(max_length=80, metadata={
        "description": "The `next` of the previous page (the id of its last item): the items appended after "
                       "it, oldest first. 422 for an id that is not an item of this list."})
    # Query values are strings: plain Integer (a strict one would refuse "20"). No load default, so a
    # route can tell that a cursor was asked for; `cursor_page` applies it.
    limit = fields.Integer(validate=validate.Range(min=1, max=100), metadata={
        "default": CURSOR_LIMIT, "description": "Items per cursor page, 1..100."})

    @pre_load
    def _one_mode(self, data: Any, **kwargs: Any) -> Any:
        # Checked on what was sent (page/per_page have defaults; where a list has no page mode, the
        # query string's unknown names are otherwise ignored): a client mixing the two learns it.
        given = set(data) if hasattr(data, "keys") else set()
        cursor, paged = given & set(CURSOR_FIELDS), given & set(PAGE_FIELDS)
        if cursor and paged:
            message = "page by cursor (after, limit) or by number (page, per_page), not both"
            raise ValidationError({name: [message] for name in sorted(cursor | paged)})
        return data


class LogPageArgsSchema(PaginationArgsSchema, CursorArgsSchema):
    """An append-only log's list: pages (`page`/`per_page`, with `total`) or, when `after` or `limit`
    is given, a cursor (`after`/`limit`, with `next`). Mixing the two is a 422."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000), metadata={
        "description": "Page mode: the page number, from 1 (not with `after`/`limit`)."})
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100), metadata={
        "description": "Page mode: items per page, 1..100 (not with `after`/`limit`)."})


def cursor_requested(args: dict[str, Any]) -> bool:
    """Whether loaded list arguments ask for a cursor page (`after` or `limit` given)."""
    return any(name in args for name in CURSOR_FIELDS)


class ReasonSchema(StrictSchema):
    reason = Text(required=True, max_length=2000, multiline=True)


class PageMetaSchema(Schema):
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)


def page_schema(item_schema: type[Schema], name: str) -> type[Schema]:
    """A `{"items", "total", "page", "per_page"}` list schema around an item schema."""
    return type(
        name,
        (PageMetaSchema,),
        {"items": fields.List(fields.Nested(item_schema), required=True)},
    )


def log_page_schema(item_schema: type[Schema], name: str,
                    cursor: type[fields.Field] = fields.String) -> type[Schema]:
    """The list schema of an append-only log: `{"items", "total", "page", "per_page"}` by page number,
    `{"items", "next", "limit"}` by cursor (`?after=` or `?limit=`); `cursor` is the type of its ids."""
    mode = "Page mode (page/per_page) only."
    return type(name, (Schema,), {
        "items": fields.List(fields.Nested(item_schema), required=True),
        "total": fields.Integer(metadata={"description": f"{mode} The number of matching items."}),
        "page": fields.Integer(metadata={"description": mode}),
        "per_page": fields.Integer(metadata={"description": mode}),
        "next": cursor(required=False, allow_none=True, metadata={
            "description": "Cursor mode (after/limit) only. The id of this page's last item when more items "
                           "follow it (pass it as `after`), null at the end of the log for now (items "
                           "appended later follow this page's last item: keep that id to resume).",
        }),
        "limit": fields.Integer(metadata={"description": "Cursor mode (after/limit) only."}),
    })


class Facts:
    """A domain object with the computed facts its schema dumps beside the object's own attributes
    (`Facts(contract, signatures=[...], trade_id=...)`): what a service returns when a response needs
    more than one row; the schema reads both alike."""

    def __init__(self, obj: Any, **facts: Any) -> None:
        self.__dict__.update(facts)
        self._obj = obj

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_obj"], name)


class Composite(fields.Dict):
    """An object made of attributes of the dumped object: `Composite(amount="amount", currency="currency")`
    dumps `{"amount": obj.amount, "currency": obj.currency}` (documented as the plain object it is)."""

    def __init__(self, **parts: str) -> None:
        self.parts = parts
        super().__init__()

    def serialize(self, attr: str, obj: Any, accessor: Any = None, **kw: Any) -> dict[str, Any]:
        return {key: getattr(obj, name) for key, name in self.parts.items()}
