"""Webhooks: subscriptions, the envelope and its signature, the README's receiver on a real
delivery, retries and the dead letter, secret rolls, SSRF refusals, disabling, resending."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from portal.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from portal.services import policy, webhooks
from portal.services.errors import Invalid
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def admin(session):
    staff = f.make_staff(session, role="admin")
    return policy.Principal(account_id=None, email=staff.email, name=staff.full_name, employee_id=staff.employee_id,
                            role="admin")


def _settings(app):
    return webhooks.Settings.from_config(app.config)


def _subscribe(app, session, admin, url, *events):
    subscription, secret = webhooks.subscribe(session, admin, url, list(events) or ["ticket.created"],
                                              settings=_settings(app))
    session.flush()
    return subscription, secret


def _open_ticket(api, session):
    customer = f.make_customer(session)
    contact = f.make_contact(session, customer=customer)
    response = api.post("/api/tickets", json={"customer_email": contact.email, "title": "Down", "description": "d",
                                              "category": "email", "priority": "critical"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _verify(secret: str, headers: dict, body: bytes) -> bool:
    timestamp = headers["X-TechServ-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, part.strip()) for part in headers["X-TechServ-Signature"].split(","))


def test_ticket_created_is_delivered_signed_in_an_envelope(app, api, session, admin, receiver, run_jobs):
    _, secret = _subscribe(app, session, admin, receiver.url, "ticket.created", "ticket.assigned")
    ticket = _open_ticket(api, session)
    run_jobs()
    [(headers, body)] = receiver.requests
    event = json.loads(body)
    assert set(event) == {"id", "type", "created_at", "data"} and event["type"] == "ticket.created"
    # The seed's payload fields.
    assert {"ticket_id", "customer_id", "priority", "assigned_employee_id"} <= set(event["data"])
    assert event["data"]["ticket_id"] == ticket["ticket_id"] and event["data"]["priority"] == "critical"
    assert headers["X-TechServ-Event-Id"] == event["id"] and headers["X-TechServ-Event-Type"] == "ticket.created"
    assert _verify(secret, headers, body) and not _verify("whsec_wrong", headers, body)
    delivery = session.scalar(sa.select(WebhookDelivery))
    assert (delivery.status, delivery.attempts, delivery.body) == ("delivered", 1, body.decode())


def test_a_rolled_back_change_sends_nothing(app, session, admin, receiver):
    from portal.services import events

    _subscribe(app, session, admin, receiver.url, "ticket.created")
    before = session.scalar(sa.text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'webhook.deliver'"))
    nested = session.begin_nested()
    events.emit(session, policy.Principal.system("t"), "ticket.created", ("support_tickets", 1), {"ticket_id": 1})
    nested.rollback()
    after = session.scalar(sa.text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'webhook.deliver'"))
    assert after == before


def test_the_readmes_receiver_verifies_a_real_delivery(app, api, session, admin, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", True)
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- receiver:start -->\n```python\n(.*?)```\n<!-- receiver:end -->", readme, re.S).group(1)
    assert len(code.strip().splitlines()) <= 16
    namespace: dict = {"__name__": "__main__"}
    exec(compile(code, "README receiver", "exec"), namespace)  # exactly the README's code
    server = make_server("127.0.0.1", 0, namespace["app"], threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        subscription, secret = _subscribe(app, session, admin, f"http://127.0.0.1:{server.server_port}/hooks",
                                          "ticket.created")
        namespace["SECRET"] = secret
        _open_ticket(api, session)
        from tests.conftest import run_due_jobs

        run_due_jobs(app, session)
        delivery = session.scalar(sa.select(WebhookDelivery).where(
            WebhookDelivery.subscription_id == subscription.subscription_id))
        assert (delivery.status, delivery.last_response_status) == ("delivered", 204)
        # With the wrong secret the same code refuses (400): the delivery is not marked delivered.
        namespace["SECRET"] = "whsec_not-the-secret"
        _open_ticket(api, session)
        run_due_jobs(app, session)
        refused = session.scalars(sa.select(WebhookDelivery).where(
            WebhookDelivery.subscription_id == subscription.subscription_id)
            .order_by(WebhookDelivery.delivery_id)).all()[-1]
        assert (refused.status, refused.last_response_status) == ("pending", 400)
    finally:
        server.shutdown()


def test_a_receiver_down_for_the_whole_backoff_ends_dead(app, api, session, admin, receiver, run_jobs, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", [0, 0, 0])  # the schedule, shortened by configuration
    receiver.status = 503
    _subscribe(app, session, admin, receiver.url, "ticket.created")
    _open_ticket(api, session)
    run_jobs()
    delivery = session.scalar(sa.select(WebhookDelivery))
    assert (delivery.status, delivery.attempts, delivery.last_response_status) == ("dead", 4, 503)
    attempts = session.scalars(sa.select(WebhookAttempt.attempt_number).where(
        WebhookAttempt.delivery_id == delivery.delivery_id).order_by(WebhookAttempt.attempt_number)).all()
    assert attempts == [1, 2, 3, 4] and len(receiver.requests) == 4
    # An admin resends it: a fifth attempt, and the receiver is back.
    receiver.status = 200
    webhooks.resend(session, admin, delivery.delivery_id)
    run_jobs()
    session.refresh(delivery)
    assert (delivery.status, delivery.attempts) == ("delivered", 5)


def test_the_default_backoff_is_exponential_for_24_hours():
    from portal.config import default_retry_schedule

    waits = default_retry_schedule()
    assert waits[:4] == [30, 60, 120, 240] and max(waits) == 4 * 3600
    assert sum(waits[:-1]) < 24 * 3600 <= sum(waits)


def test_a_subscription_failing_for_days_is_disabled_and_the_admins_emailed(app, api, session, admin, receiver,
                                                                            run_jobs, outbox, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_DISABLE_AFTER_HOURS", 0)
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", [3600])
    receiver.status = 500
    subscription, _ = _subscribe(app, session, admin, receiver.url, "ticket.created")
    _open_ticket(api, session)
    run_jobs()
    session.refresh(subscription)
    assert not subscription.is_active and "failed since" in subscription.disabled_reason
    assert any(mail.to == admin.email and "Webhook disabled" in mail.subject for mail in outbox)


def test_a_rolled_secret_signs_beside_the_old_one_during_the_overlap(app, api, session, admin, receiver, run_jobs):
    subscription, old = _subscribe(app, session, admin, receiver.url, "ticket.created")
    new = webhooks.roll_secret(session, admin, subscription.subscription_id, settings=_settings(app))
    _open_ticket(api, session)
    run_jobs()
    [(headers, body)] = receiver.requests
    assert _verify(new, headers, body) and _verify(old, headers, body)
    assert len(headers["X-TechServ-Signature"].split(",")) == 2


@pytest.mark.parametrize("url", ["http://127.0.0.1/hook", "http://localhost:8080/x", "http://10.1.2.3/x",
                                 "http://169.254.169.254/latest", "http://[::1]/x", "http://192.168.0.5/x",
                                 "ftp://example.com/x", "http://user:pw@example.com/x"])
def test_private_loopback_and_link_local_receivers_are_refused_at_subscription(app, session, admin, url):
    with pytest.raises(Invalid) as refused:
        webhooks.subscribe(session, admin, url, ["ticket.created"], settings=webhooks.Settings(allow_private=False))
    assert refused.value.field == "url"


def test_a_private_address_is_refused_at_delivery_too(app, api, session, admin, receiver, run_jobs, monkeypatch):
    _subscribe(app, session, admin, receiver.url, "ticket.created")  # allowed by the configuration now
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", False)
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", [])
    _open_ticket(api, session)
    run_jobs()
    delivery = session.scalar(sa.select(WebhookDelivery))
    assert delivery.status == "dead" and "loopback" in delivery.last_error and receiver.requests == []


def test_approvals_emit_one_event_per_entry_in_a_few_statements(app, session, admin, receiver, run_jobs):
    from portal.services.timesheets import decide

    _subscribe(app, session, admin, receiver.url, "time_entry.approved")
    entries = [f.make_time_entry(session) for _ in range(3)]
    decide(session, admin, [e.entry_id for e in entries], approve=True)
    run_jobs()
    delivered = receiver.events()
    assert sorted(e["data"]["entry_id"] for e in delivered) == sorted(e.entry_id for e in entries)
    assert {e["type"] for e in delivered} == {"time_entry.approved"}
    assert all(e["data"]["approved_by_employee_id"] == admin.employee_id for e in delivered)
    assert len({e["id"] for e in delivered}) == 3


def test_phase_decisions_are_delivered_as_phase_decided(app, session, admin, receiver, run_jobs):
    from portal.services import events

    _subscribe(app, session, admin, receiver.url, "phase.decided")
    events.emit(session, policy.Principal.system("t"), "phase.rejected", ("project_phases", 7),
                {"phase_id": 7, "project_id": 3, "customer_id": 1, "decision": "rejected"})
    run_jobs()
    [event] = receiver.events()
    assert event["type"] == "phase.decided" and event["data"]["decision"] == "rejected"


def test_only_admins_subscribe(app, session):
    tech = f.make_staff(session, role="technician")
    who = policy.Principal(account_id=None, email="", name="T", employee_id=tech.employee_id, role="technician")
    from portal.services.errors import Forbidden

    with pytest.raises(Forbidden):
        webhooks.subscribe(session, who, "https://example.com/x", ["ticket.created"], settings=webhooks.Settings())


def test_a_disabled_subscription_gets_nothing_new(app, api, session, admin, receiver, run_jobs):
    subscription, _ = _subscribe(app, session, admin, receiver.url, "ticket.created")
    webhooks.set_active(session, admin, subscription.subscription_id, False)
    _open_ticket(api, session)
    run_jobs()
    assert receiver.requests == []
    assert session.scalar(sa.select(sa.func.count()).select_from(WebhookSubscription)
                          .where(WebhookSubscription.is_active.is_(False))) >= 1


def test_a_redirect_is_not_followed_and_counts_as_a_failure(app, api, session, admin, receiver, run_jobs, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", [])
    receiver.status = 302
    _subscribe(app, session, admin, receiver.url, "ticket.created")
    _open_ticket(api, session)
    run_jobs()
    delivery = session.scalar(sa.select(WebhookDelivery))
    assert (delivery.status, delivery.last_response_status) == ("dead", 302) and len(receiver.requests) == 1


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(app, api, session, admin, receiver, run_jobs,
                                                                monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT_SECONDS", 1)
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", [])
    receiver.delay = 3
    _subscribe(app, session, admin, receiver.url, "ticket.created")
    _open_ticket(api, session)
    run_jobs()
    delivery = session.scalar(sa.select(WebhookDelivery))
    assert delivery.status == "dead" and "1 s" in delivery.last_error
