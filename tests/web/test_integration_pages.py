"""The admin pages for automation: API clients (the secret shown once, revoking) and webhooks
(subscribing, refusals beside the field, deliveries with their attempts, resending)."""

from __future__ import annotations

import sqlalchemy as sa

from portal.models import ApiClient, WebhookAttempt, WebhookDelivery, WebhookSubscription
from portal.services import api_clients
from tests import factories as f


def _admin(browser, session):
    admin = f.make_staff(session, role="admin")
    browser.sign_in(admin.email)
    return admin


def test_an_admin_creates_a_client_sees_the_secret_once_and_revokes_it(browser, session):
    admin = _admin(browser, session)
    browser.get("/staff/api-clients")
    response = browser.post("/staff/api-clients", {"name": "n8n production", "scopes": ["tickets:read", "time:write"]})
    page = response.get_data(as_text=True)
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    client = session.scalar(sa.select(ApiClient).where(ApiClient.name == "n8n production"))
    secret = page.split("client_secret</dt><dd class=\"secret\">", 1)[1].split("<", 1)[0]
    assert client.secret_hash == api_clients.digest(secret) and client.scopes == ["tickets:read", "time:write"]
    assert secret not in browser.get("/staff/api-clients").get_data(as_text=True)  # never again
    assert client.created_by == admin.full_name
    revoked = browser.post(f"/staff/api-clients/{client.client_id}/revoke")
    assert revoked.status_code == 303
    session.refresh(client)
    assert client.revoked_at is not None


def test_a_client_without_a_name_or_scope_is_refused_beside_the_fields(browser, session):
    _admin(browser, session)
    browser.get("/staff/api-clients")
    response = browser.post("/staff/api-clients", {"name": "  "})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="client-name-error"' in page and 'id="client-scopes-error"' in page


def test_a_private_receiver_is_refused_beside_the_url(browser, session):
    _admin(browser, session)
    browser.get("/staff/webhooks")
    response = browser.post("/staff/webhooks", {"url": "http://127.0.0.1:9/x", "event_types": ["ticket.created"]})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "loopback" in page and 'id="webhook-url-error"' in page
    assert session.scalar(sa.select(sa.func.count()).select_from(WebhookSubscription)) == 0


def test_deliveries_show_their_attempts_and_body_and_can_be_resent(app, browser, session, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", True)
    _admin(browser, session)
    browser.get("/staff/webhooks")
    created = browser.post("/staff/webhooks", {"url": "http://127.0.0.1:9/hooks", "description": "n8n",
                                               "event_types": ["ticket.created", "invoice.paid"]})
    assert created.status_code == 201 and "whsec_" in created.get_data(as_text=True)
    subscription = session.scalar(sa.select(WebhookSubscription))
    delivery = WebhookDelivery(subscription_id=subscription.subscription_id, event_id=424242,
                               event_type="ticket.created", body='{"id":"evt_424242"}', status="dead", attempts=1,
                               last_response_status=503)
    session.add(delivery)
    session.flush()
    session.add(WebhookAttempt(delivery_id=delivery.delivery_id, attempt_number=1, started_at=delivery.created_at,
                               duration_ms=12, response_status=503))
    session.flush()
    page = browser.get(f"/staff/webhooks/{subscription.subscription_id}").get_data(as_text=True)
    assert "evt_424242" in page and "503 in 12 ms" in page and "Resend" in page
    resent = browser.post(f"/staff/webhooks/deliveries/{delivery.delivery_id}/resend")
    assert resent.status_code == 303
    session.refresh(delivery)
    assert delivery.status == "pending"
    rolled = browser.post(f"/staff/webhooks/{subscription.subscription_id}/secret")
    assert rolled.status_code == 200 and "whsec_" in rolled.get_data(as_text=True)


def test_the_menu_shows_the_admin_pages_to_admins_only(browser, session):
    _admin(browser, session)
    page = browser.get("/staff/").get_data(as_text=True)
    assert "/staff/api-clients" in page and "/staff/webhooks" in page
    tech = f.make_staff(session, role="technician")
    other = type(browser)(browser.client.application.test_client())
    other.sign_in(tech.email)
    assert "/staff/api-clients" not in other.get("/staff/").get_data(as_text=True)
