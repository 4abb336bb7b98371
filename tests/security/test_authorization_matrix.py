"""The authorization matrix (tests.security.matrix.ROWS): every route of the app x every principal.

Each answer must be the expected status, documented for that operation in the OpenAPI document,
problem+json when it is an error, and free of any private value (tests.world sentinels) the
principal may not see. A route in the app's URL map without a row fails.
"""

from __future__ import annotations

import re

from exchange.errors import PROBLEM_JSON
from tests.security.matrix import DOC_ROUTES, ROWS, call
from tests.world import PRINCIPALS, build_world

SAFE = {"HEAD", "OPTIONS"}


def openapi_path(flask_rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", flask_rule)


def app_routes(app) -> set[tuple[str, str]]:
    return {(method, openapi_path(rule.rule)) for rule in app.url_map.iter_rules() if rule.rule not in DOC_ROUTES
            for method in rule.methods - SAFE}


def test_every_route_of_the_app_has_a_row(app):
    covered = {(row.method, row.rule) for row in ROWS}
    missing = sorted(app_routes(app) - covered)
    assert not missing, f"routes without a row in the authorization matrix: {missing}"
    stale = sorted(covered - app_routes(app))
    assert not stale, f"rows for routes the app does not have: {stale}"


def test_authorization_matrix(api):
    world = build_world(api)
    spec = api.get("/api/v1/openapi.json").get_json()
    failures: list[str] = []
    for row in ROWS:
        documented = spec["paths"][row.rule][row.method.lower()]["responses"]
        for principal in PRINCIPALS:
            r = call(world, row, principal)
            label = f"{row.method} {row.path} as {principal}"
            want = row.expect[principal]
            text = r.get_data(as_text=True)
            if r.status_code != want:
                failures.append(f"{label}: {r.status_code}, expected {want}: {text[:200]}")
            if str(r.status_code) not in documented:
                failures.append(f"{label}: {r.status_code} is not documented ({sorted(documented)})")
            if r.status_code >= 400 and r.mimetype != PROBLEM_JSON:
                failures.append(f"{label}: error answered as {r.mimetype}")
            leaked = [s for s, allowed in world.secrets.items() if principal not in allowed and s in text]
            if leaked:
                failures.append(f"{label}: leaks {leaked}")
    assert not failures, f"{len(failures)} matrix failures:\n" + "\n".join(failures)
