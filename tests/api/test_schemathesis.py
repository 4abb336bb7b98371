"""Schemathesis against the app's own OpenAPI document, in process (WSGI, no network).

For each principal (anonymous, vendor, enterprise, assessor, operator) on a populated exchange
(tests.world), every operation gets a bounded number of generated requests — valid and invalid
bodies and queries, real ids of existing objects and random ones — with a fixed seed, and every
response must pass `not_a_server_error`, `status_code_conformance` and `response_schema_conformance`,
and every 403 and 409 problem must say what to do next (`next_step`, as tests/conftest.py checks for
the test client's responses: schemathesis calls the app through werkzeug's own client).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.world import PATH_OBJECTS, build_world


@schemathesis.check
def refusals_name_their_next_step(ctx, response, case):
    """A 403 or 409 problem carries a non-empty `next_step` (issue 21)."""
    if response.status_code not in (403, 409):
        return None
    content_type = next((v for k, v in response.headers.items() if k.lower() == "content-type"), "")
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if not content_type.startswith("application/problem+json"):
        return None
    step = (response.json() or {}).get("next_step")
    if not (isinstance(step, str) and step.strip()):
        raise AssertionError(f"{response.status_code} without a next_step: {response.text}")
    return None


CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, refusals_name_their_next_step]
EXAMPLES_PER_OPERATION = 20
SEED = 20261128
# principal of this test -> the world's actor whose token it uses
PRINCIPALS = {"anonymous": None, "vendor": "owner", "enterprise": "buyer", "assessor": "assessor",
              "operator": "operator"}


def _read_whole(wsgi_app):
    """The app's responses read whole and closed, as a server does once it has sent them: schemathesis
    reads a WSGI response without closing it, which would leave a download's file open."""
    def app(environ, start_response):
        result = wsgi_app(environ, start_response)
        try:
            return [b"".join(result)]
        finally:
            if hasattr(result, "close"):
                result.close()
    return app


def _strategy(operation, ids: dict[str, str]):
    names = [p.name for p in operation.path_parameters]
    fixed = {name: ids[PATH_OBJECTS[name]] for name in names}
    strategies = [operation.as_strategy(generation_mode=mode, path_parameters=fixed or None)
                  for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    if names:
        # Some random ids too: unknown objects must be a documented 404, never a 500.
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    return st.one_of(strategies)


@pytest.mark.slow
@pytest.mark.parametrize("principal", list(PRINCIPALS))
def test_the_api_conforms_to_its_openapi_document(api, principal):
    world = build_world(api)
    actor = world.actors[PRINCIPALS[principal]] if PRINCIPALS[principal] else None
    headers = dict(actor.headers) if actor else {}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api.app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 80, len(operations)
    wsgi_app = api.app.wsgi_app
    api.app.wsgi_app = _read_whole(wsgi_app)  # the Flask app stays the target (its 500s are still captured)
    try:
        for operation in operations:

            @seed(SEED)
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=False,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=_strategy(operation, world.ids))
            def check(case):
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label} as {principal}:\n{exc}")
    finally:
        api.app.wsgi_app = wsgi_app
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
