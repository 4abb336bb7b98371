"""A vendor's data API for the demo, served by datafair itself in development only, so that `make run`
shows the API gateway end to end with no network: the demo's real-time traffic product has
`http://127.0.0.1:8000/_demo-upstream/v1` as its upstream (delivery.demo.seed_gateway).

It stands for the vendor's own server: it knows nothing of datafair's keys or entitlements and asks
only for the vendor's header, which the gateway adds to every call (a buyer never sees it). Answers
are computed from the segment and the time, so the same call gives the same JSON on every machine.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, jsonify, request

PREFIX = "/_demo-upstream/v1"
HEADER = "X-Demo-Vendor-Key"
# Not a secret: the demo vendor's header value, sealed at rest like any vendor's.
VENDOR_KEY = "gz-transport-demo-upstream"
SEGMENTS = {
    "TH-0412": "天河路 Tianhe Road (体育西路-天河城)",
    "YX-1033": "越秀南路 Yuexiu South Road",
    "HZ-0207": "新港中路 Xingang Middle Road",
    "PY-0551": "番禺大道 Panyu Avenue",
    "BY-0120": "机场高速 Airport Expressway",
}
DEFAULT_AT = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)

blp = Blueprint("demo_upstream", __name__, url_prefix=PREFIX)


def _problem(status: int, detail: str) -> Any:
    response = jsonify({"type": "about:blank", "status": status, "detail": detail})
    response.status_code = status
    response.content_type = "application/problem+json"
    return response


@blp.before_request
def _vendor_key() -> Any:
    if request.headers.get(HEADER) != VENDOR_KEY:
        return _problem(401, f"The vendor's {HEADER} header is missing or wrong.")
    return None


def reading(segment: str, ts: datetime) -> dict[str, Any]:
    """One 5-minute reading of a segment: a morning and an evening peak, varying by segment."""
    seed = int.from_bytes(hashlib.sha256(f"{segment}|{ts.isoformat()}".encode()).digest()[:4], "big")
    hour = ts.hour + ts.minute / 60
    peak = 1.0 + 1.6 * max(0.0, 1 - abs(hour - 8.25) / 1.5) + 1.3 * max(0.0, 1 - abs(hour - 18) / 1.5)
    flow = int(120 * peak + seed % 60)
    speed = round(max(8.0, 62 - 14 * peak - (seed >> 8) % 7), 1)
    return {"segment_id": segment, "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "flow_per_5min": flow,
            "speed_kmh": speed, "congestion_index": round(62 / speed, 2)}


@blp.get("/segments")
def segments() -> Any:
    return jsonify({"items": [{"segment_id": k, "name": v} for k, v in SEGMENTS.items()]})


@blp.get("/traffic-flow")
def traffic_flow() -> Any:
    """`?segment=TH-0412&at=2026-11-02T08:00:00Z&points=12`: the readings of the hour up to `at`."""
    segment = request.args.get("segment", "TH-0412")
    if segment not in SEGMENTS:
        return _problem(404, f"No segment {segment!r}; see /segments.")
    try:
        at = datetime.fromisoformat(request.args["at"].replace("Z", "+00:00")) if "at" in request.args else DEFAULT_AT
        points = int(request.args.get("points", "12"))
    except ValueError:
        return _problem(400, "`at` is an ISO 8601 time and `points` an integer.")
    if at.tzinfo is None or not 1 <= points <= 288:
        return _problem(400, "`at` needs a time zone and `points` is 1..288.")
    at = at.astimezone(UTC).replace(second=0, microsecond=0)
    at -= timedelta(minutes=at.minute % 5)
    rows = [reading(segment, at - STEP * i) for i in reversed(range(points))]
    return jsonify({"segment_id": segment, "name": SEGMENTS[segment], "interval_minutes": 5, "readings": rows})
