"""Named hooks: how a lower layer lets a higher one act in the same transaction without importing it.

The higher layer registers a handler in its `init_app` (`register(app, "trade_escrowed", fn)`); the
lower layer calls `call("trade_escrowed", session, trade=...)` before it flushes, and every handler
runs with that session, so what they write commits or rolls back with the change that caused it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from sqlalchemy.orm import Session

EXTENSION = "datafair.hooks"


def register(app: Flask, name: str, handler: Callable[..., None]) -> None:
    """Add `handler(session, **facts)` to the hook `name`."""
    app.extensions.setdefault(EXTENSION, {}).setdefault(name, []).append(handler)


def call(name: str, session: Session, **facts: Any) -> None:
    """Run every handler registered for `name`, in registration order."""
    for handler in current_app.extensions.get(EXTENSION, {}).get(name, ()):
        handler(session, **facts)


def refusal(name: str, session: Session, **facts: Any) -> str | None:
    """Ask every handler of `name` whether a step may go ahead: the first reason one gives (a
    string) refuses it; None from all of them lets it go ahead."""
    for handler in current_app.extensions.get(EXTENSION, {}).get(name, ()):
        reason = handler(session, **facts)
        if reason:
            return reason
    return None
