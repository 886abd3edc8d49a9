"""The API's permission matrix: every /api route refuses a request without a token (401), refuses a
token without the route's scope (403 naming it), and lets the right scope through."""

from __future__ import annotations

import re

import pytest

from portal.api.core import PUBLIC_ENDPOINTS
from tests.api.conftest import ALL_SCOPES


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint not in PUBLIC_ENDPOINTS:
            method = next(iter(sorted(rule.methods - {"HEAD", "OPTIONS"})))
            yield rule.endpoint, method, re.sub(r"<(?:[a-z]+:)?[a-z_]+>", "999999", rule.rule)


def test_every_api_route_names_its_scope(app):
    for endpoint, _, _ in _routes(app):
        assert getattr(app.view_functions[endpoint], "required_scope", None) in ALL_SCOPES, endpoint


def test_every_api_route_needs_a_token_and_its_scope(app, session, api_as):
    http = app.test_client()
    for endpoint, method, path in _routes(app):
        scope = app.view_functions[endpoint].required_scope
        without = http.open(path, method=method, json={} if method != "GET" else None)
        assert without.status_code == 401 and without.mimetype == "application/problem+json", endpoint
        others = [name for name in ALL_SCOPES if name != scope]
        wrong = api_as(*others)
        refused = wrong.client.open(path, method=method, json={} if method != "GET" else None,
                                    headers={"Authorization": f"Bearer {wrong.token}"})
        assert refused.status_code == 403 and refused.get_json()["required_scope"] == scope, endpoint
        right = api_as(scope)
        allowed = right.client.open(path, method=method, json={} if method != "GET" else None,
                                    headers={"Authorization": f"Bearer {right.token}"})
        assert allowed.status_code not in (401, 403, 500), (endpoint, allowed.get_json())


@pytest.mark.parametrize("path", ["/api/openapi.json", "/api/docs"])
def test_the_documents_are_public(app, session, path):
    assert app.test_client().get(path).status_code == 200
