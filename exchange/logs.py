"""Structured JSON logs (one object a line) with request id, organization and latency."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from gunicorn import glogging

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> None:
    root = logging.getLogger("datafair")
    if any(getattr(h, "_datafair", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    handler._datafair = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


# Path segments that are credentials (a download link's token): never written to any log.
_SECRET_PATH = re.compile(r"(/api/v1/downloads/)[^/?\s\"]+")


def redact_path(path: str) -> str:
    """`path` with every credential segment replaced by `[redacted]`."""
    return _SECRET_PATH.sub(r"\1[redacted]", path)


class RedactingGunicornLogger(glogging.Logger):
    """gunicorn's logger whose access log never shows a download token (the path, the request line
    and the referer are redacted before formatting)."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("U", "r", "f", "{raw_uri}e"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_path(atoms[key])
        return atoms
