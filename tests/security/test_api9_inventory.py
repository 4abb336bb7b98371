"""OWASP API9:2023 Improper Inventory Management: the routes the app serves are exactly the operations
its OpenAPI document describes (apart from the document and its viewer, and the API gateway's data
plane, documented in docs/delivery.md), under one version, each
documenting its authentication and every status the kernel can answer for it."""

from __future__ import annotations

import re

from exchange.api import kernel_statuses, requires_token
from tests.security.matrix import CONSOLE_ENDPOINT, DATA_PLANE_ROUTES, DOC_ROUTES
from tests.security.test_authorization_matrix import app_routes, openapi_path
from tests.world import build_world, operations


def test_the_route_table_equals_the_openapi_paths(api, app):
    spec = api.get("/api/v1/openapi.json").get_json()
    documented = {(method, path) for method, path, _ in operations(spec)}
    served = app_routes(app)
    assert served - documented == set(), f"served but undocumented: {sorted(served - documented)}"
    assert documented - served == set(), f"documented but not served: {sorted(documented - served)}"
    # Nothing else is served but the document and its viewer, and the gateway's data plane (a proxy to
    # each vendor's own API: its paths are the vendor's, not operations of this document).
    # Compared in OpenAPI form, so a rule with a converter (`<string(maxlength=1000):token>`) matches its path.
    served_paths = {p for _, p in served}
    others = {rule.rule for rule in app.url_map.iter_rules() if openapi_path(rule.rule) not in served_paths
              and not rule.endpoint.startswith(CONSOLE_ENDPOINT)}
    assert others == DOC_ROUTES | DATA_PLANE_ROUTES, others
    # The console's pages (HTML) are all under its own prefixes, never inside the API's.
    console = {rule.rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith(CONSOLE_ENDPOINT)}
    assert console and not any(r.startswith("/api/") or r.startswith("/gateway/") for r in console), console


def test_one_version_and_well_known_paths_only(api):
    spec = api.get("/api/v1/openapi.json").get_json()
    assert spec["info"]["version"] == "v1"
    for path in spec["paths"]:
        # The API's index (/api/v1) and the site's root (/) answer a client that knows only the address.
        assert path.startswith("/api/v1/") or path in ("/.well-known/jwks.json", "/api/v1", "/"), path


def test_every_operation_documents_its_kernel_statuses_summary_and_tag(api):
    spec = api.get("/api/v1/openapi.json").get_json()
    for method, path, op in operations(spec):
        documented = {int(code) for code in op["responses"]}
        expected = kernel_statuses(path, method)
        if path in ("/api/v1/health/live", "/api/v1", "/"):
            expected.discard(503)  # answers without the database
        assert expected <= documented, (method, path, sorted(expected - documented))
        assert "default" not in op["responses"], (method, path)
        assert op.get("summary") and op.get("tags"), (method, path)
        if op.get("security"):
            assert 401 in documented, (method, path)


def test_the_documented_authentication_is_the_real_one(api):
    world = build_world(api)
    spec = api.get("/api/v1/openapi.json").get_json()
    for method, path, op in operations(spec):
        if requires_token(op.get("security")) or method != "GET":
            continue
        # Documented as open (or a token optional): an anonymous caller is served, or told the object
        # is not there.
        # (A token is optional for listing certifications only when listing what is under public notice.)
        query = "?status=public_notice" if path == "/api/v1/certifications" else ""
        r = api.request(method, world.path(path) + query)
        r.close()  # a download streams from a file
        assert r.status_code in (200, 404), (path, r.status_code, r.get_json())


def test_the_docs_are_served_locally_without_a_cdn(api):
    page = api.get("/api/v1/docs").get_data(as_text=True)
    assert "/api/v1/docs/static/" in page
    assert not re.search(r"""(src|href)=["']https?://""", page), "the docs load assets from another host"
    asset = api.get("/api/v1/docs/static/swagger-ui-bundle.js")
    assert asset.status_code == 200
    asset.close()
