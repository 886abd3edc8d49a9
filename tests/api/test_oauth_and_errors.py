"""Tokens (client credentials, scopes, expiry, revocation) and problem+json for every error class."""

from __future__ import annotations

import base64
from datetime import timedelta

import sqlalchemy as sa

from portal.models import ApiClient, ApiToken, AuditEvent
from portal.services import api_clients, clock, policy
from tests import factories as f
from tests.api.conftest import Api, make_client


def _basic(key: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_client_credentials_token_works_and_only_its_hash_is_stored(app, session):
    client, secret = api_clients.create_client(session, policy.Principal.system("t"), "Zapier", "tickets:read")
    http = app.test_client()
    response = http.post("/api/oauth/token", data={"grant_type": "client_credentials"},
                         headers=_basic(client.client_key, secret))
    assert response.status_code == 200, response.get_data(as_text=True)
    token = response.get_json()
    assert token["token_type"].lower() == "bearer" and token["expires_in"] == 3600 and token["scope"] == "tickets:read"
    stored = session.scalars(sa.select(ApiToken).where(ApiToken.client_id == client.client_id)).all()
    assert [row.token_hash for row in stored] == [api_clients.digest(token["access_token"])]
    assert secret not in client.secret_hash and client.secret_hash == api_clients.digest(secret)
    assert Api(http, token["access_token"]).get("/api/tickets").status_code == 200
    # Form fields work as well as HTTP Basic.
    response = http.post("/api/oauth/token", data={"grant_type": "client_credentials", "client_id": client.client_key,
                                                   "client_secret": secret})
    assert response.status_code == 200


def test_wrong_secret_and_wrong_grant_are_refused_as_problems(app, session):
    client, secret = api_clients.create_client(session, policy.Principal.system("t"), "Make", "tickets:read")
    http = app.test_client()
    body = _problem(http.post("/api/oauth/token", data={"grant_type": "client_credentials"},
                              headers=_basic(client.client_key, "wrong")), 401)
    assert body["error"] == "invalid_client"
    body = _problem(http.post("/api/oauth/token", data={"grant_type": "password"},
                              headers=_basic(client.client_key, secret)), 400)
    assert body["error"] == "unsupported_grant_type"
    body = _problem(http.post("/api/oauth/token", data={"grant_type": "client_credentials", "scope": "nonsense"},
                              headers=_basic(client.client_key, secret)), 400)
    assert body["error"] == "invalid_scope"


def test_a_token_has_at_most_the_clients_scopes(app, session):
    client, secret = api_clients.create_client(session, policy.Principal.system("t"), "n8n", "tickets:read time:read")
    response = app.test_client().post("/api/oauth/token", headers=_basic(client.client_key, secret), data={
        "grant_type": "client_credentials", "scope": "tickets:read invoices:write"})
    assert response.get_json()["scope"] == "tickets:read"


def test_missing_invalid_and_expired_tokens_are_401_with_www_authenticate(app, session):
    http = app.test_client()
    body = _problem(http.get("/api/tickets"), 401)
    assert http.get("/api/tickets").headers["WWW-Authenticate"].startswith("Bearer")
    response = Api(http, "not-a-token").get("/api/tickets")
    _problem(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    client, _, token = make_client(session, "tickets:read")
    session.execute(sa.update(ApiToken).where(ApiToken.client_id == client.client_id)
                    .values(issued_at=clock.now() - timedelta(hours=2), expires_at=clock.now() - timedelta(hours=1)))
    body = _problem(Api(http, token).get("/api/tickets"), 401)
    assert "expired" in body["detail"]


def test_a_revoked_clients_tokens_stop_at_once(app, session):
    client, _, token = make_client(session, "tickets:read")
    admin = f.make_staff(session, role="admin")
    api_clients.revoke_client(session, policy.Principal(account_id=None, email="", name="Admin", employee_id=admin.employee_id,
                                                        role="admin"), client.client_id)
    _problem(Api(app.test_client(), token).get("/api/tickets"), 401)


def test_missing_scope_is_403_naming_it(api_as):
    response = api_as("tickets:read").post("/api/tickets", json={"title": "x", "description": "y", "category": "email"})
    body = _problem(response, 403)
    assert body["required_scope"] == "tickets:write"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_malformed_json_is_400(api):
    body = _problem(api.raw("POST", "/api/tickets", b'{"title": '), 400)
    assert "JSON" in body["detail"]


def test_a_json_array_or_unknown_field_is_422_with_field_messages(api):
    _problem(api.raw("POST", "/api/tickets", b"[]"), 422)
    body = _problem(api.post("/api/tickets", json={"titel": "typo"}), 422)
    assert "titel" in body["errors"] and "title" in body["errors"] and "category" in body["errors"]


def test_unknown_email_is_a_422_that_says_so(api):
    body = _problem(api.post("/api/tickets", json={"customer_email": "nobody@nowhere.example", "title": "t",
                                                   "description": "d", "category": "email"}), 422)
    assert "nobody@nowhere.example" in body["errors"]["customer_email"]


def test_nested_field_messages_are_dotted(api):
    body = _problem(api.post("/api/customers", json={"company_name": "Acme Dots", "primary_contact": {
        "first_name": "A", "last_name": "B", "email": "not-an-email"}}), 422)
    assert "primary_contact.email" in body["errors"]


def test_not_found_and_out_of_range_ids_are_404(api):
    _problem(api.get("/api/tickets/999999999"), 404)
    _problem(api.get("/api/tickets/99999999999"), 404)
    _problem(api.get("/api/nothing-here"), 404)


def test_a_state_that_forbids_the_move_is_a_problem(api, session):
    ticket = f.make_ticket(session, status="closed")
    body = _problem(api.patch(f"/api/tickets/{ticket.ticket_id}", json={"status": "in_progress"}), 422)
    assert "status" in body["errors"]


def test_a_conflict_is_409(api, session):
    f.make_customer(session, company_name="Taken Name Inc")
    body = _problem(api.post("/api/customers", json={"company_name": "Taken Name Inc"}), 409)
    assert body["errors"]["company_name"]


def test_too_large_is_413(api):
    _problem(api.raw("POST", "/api/tickets", b'{"title": "' + b"x" * (1024 * 1024 + 10) + b'"}'), 413)


def test_wrong_method_is_405_problem(api):
    _problem(api.raw("DELETE", "/api/tickets", b""), 405)


def test_over_the_rate_limit_is_429_with_retry_after(app, api, monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_PER_MINUTE", 3)
    answers = [api.get("/api/customers?limit=1") for _ in range(5)]
    codes = [response.status_code for response in answers]
    assert 429 in codes, codes
    refused = answers[codes.index(429)]
    _problem(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_changes_are_audited_under_the_clients_name(app, session):
    client, _, token = make_client(session, "tickets:write", "tickets:read", name="n8n production")
    customer = f.make_customer(session)
    f.make_contact(session, customer=customer, email="someone@acme-audit.example")
    response = Api(app.test_client(), token).post("/api/tickets", json={
        "customer_email": "someone@acme-audit.example", "title": "Printer", "description": "Jammed",
        "category": "hardware"})
    assert response.status_code == 201
    event = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "ticket.created",
                                                       AuditEvent.row_id == response.get_json()["ticket_id"]))
    assert (event.actor_type, event.actor_id, event.actor_label) == ("api_client", client.client_id, "n8n production")


def test_cli_creates_a_client_printing_two_lines(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["api-client", "create", "--name", "cli test client", "--scopes",
                                 "tickets:read tickets:write"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("client_id=tsc_") and lines[1].startswith("client_secret=tss_") and len(lines) == 2
    client = session.scalar(sa.select(ApiClient).where(ApiClient.name == "cli test client"))
    assert client.scopes == ["tickets:read", "tickets:write"]
    assert client.secret_hash == api_clients.digest(lines[1].split("=", 1)[1])


def test_a_database_refusal_becomes_problem_json_naming_the_field(api, monkeypatch):
    """The unit of work wraps the API's views too: a CHECK the service did not foresee is a 422 with
    the field's sentence from services/integrity.py, never a 500."""
    from portal.services import crm

    monkeypatch.setattr(crm, "_email", lambda value, field: value)  # let a bad address reach the database
    body = _problem(api.post("/api/customers", json={"company_name": "Checked By The Database", "primary_contact": {
        "first_name": "A", "last_name": "B", "email": "not-an-email"}}), 422)
    assert body["errors"] == {"primary_contact_email": "Enter a valid email address, like name@example.com."}
