"""The worker's scheduled scans: each does its work once; run twice, the second run changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.models import AuditEvent, ContractExpiryNotice, Invoice, SupportTicket
from portal.services import contracts, invoicing, statements, tickets
from portal.services.contracts import expiry_stage
from portal.services.policy import Principal
from tests import factories as f

SCHEDULER = Principal.system("scheduler")
NOW = datetime(2026, 11, 30, 15, tzinfo=UTC)
TODAY = date(2026, 11, 30)


def _events(session, action: str) -> list[AuditEvent]:
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.event_id)))


def _jobs(session) -> list[tuple[str, dict]]:
    return [tuple(row) for row in session.execute(sa.text("SELECT task_name, args FROM procrastinate_jobs ORDER BY id"))]


def test_resolved_tickets_close_once(session):
    old = f.make_ticket(session, status="resolved", created_at=NOW - timedelta(days=9),
                        resolved_at=NOW - timedelta(days=8), first_response_at=NOW - timedelta(days=9))
    recent = f.make_ticket(session, status="resolved", resolved_at=NOW - timedelta(days=2),
                           first_response_at=NOW - timedelta(days=3), created_at=NOW - timedelta(days=3))
    assert tickets.close_resolved(session, SCHEDULER, now=NOW) == 1
    events = len(_events(session, "ticket.status_changed"))
    assert tickets.close_resolved(session, SCHEDULER, now=NOW) == 0
    assert len(_events(session, "ticket.status_changed")) == events == 1
    session.expire_all()
    assert session.get(SupportTicket, old.ticket_id).status == "closed"
    assert session.get(SupportTicket, recent.ticket_id).status == "resolved"


def test_late_sent_invoices_turn_overdue_once_each_with_the_seeds_payload(session):
    late = f.make_invoice(session, invoice_status="sent", invoice_date=date(2026, 10, 1), due_date=date(2026, 10, 31))
    due_today = f.make_invoice(session, invoice_status="sent", invoice_date=date(2026, 11, 1), due_date=TODAY)
    paid = f.make_invoice(session, invoice_status="paid", invoice_date=date(2026, 10, 1), due_date=date(2026, 10, 31))
    assert statements.is_late(late, TODAY) and not statements.is_late(due_today, TODAY)
    assert invoicing.mark_overdue(session, SCHEDULER, today=TODAY) == 1
    assert invoicing.mark_overdue(session, SCHEDULER, today=TODAY) == 0
    [event] = _events(session, "invoice.overdue")
    assert (event.table_name, event.row_id, event.actor_type) == ("invoices", late.invoice_id, "system")
    assert event.changes == {"invoice_status": {"old": "sent", "new": "overdue"}}
    session.expire_all()
    assert [session.get(Invoice, i.invoice_id).invoice_status for i in (late, due_today, paid)] == \
        ["overdue", "sent", "paid"]


@pytest.mark.parametrize("days_left, stage", [(91, None), (90, 90), (61, 90), (60, 60), (31, 60), (30, 30),
                                              (0, 30), (-1, None)])
def test_the_stage_a_contract_is_due(days_left, stage):
    assert expiry_stage(days_left) == stage


def test_contracts_expiring_are_announced_once_per_stage(session):
    customer = f.make_customer(session)
    contract = f.make_contract(session, customer, contract_status="active", start_date=date(2026, 1, 1),
                               end_date=TODAY + timedelta(days=90))
    f.make_contract(session, f.make_customer(session), contract_status="draft", start_date=date(2026, 1, 1),
                    end_date=TODAY + timedelta(days=90))  # not active: nobody to remind
    assert contracts.notify_expiring(session, SCHEDULER, today=TODAY) == 1
    assert contracts.notify_expiring(session, SCHEDULER, today=TODAY) == 0  # the same day again
    assert contracts.notify_expiring(session, SCHEDULER, today=TODAY + timedelta(days=10)) == 0  # still stage 90
    assert contracts.notify_expiring(session, SCHEDULER, today=TODAY + timedelta(days=40)) == 1  # 50 days: 60
    # The worker was down for a month: only the most urgent stage reached, never a stale one.
    assert contracts.notify_expiring(session, SCHEDULER, today=TODAY + timedelta(days=85)) == 1  # 5 days: 30
    assert contracts.notify_expiring(session, SCHEDULER, today=TODAY + timedelta(days=86)) == 0
    stages = [e.changes["days_until_expiration"]["new"] for e in _events(session, "contract.expiring")]
    assert stages == [90, 50, 5]
    assert sorted(n.days_before for n in session.scalars(
        sa.select(ContractExpiryNotice).where(ContractExpiryNotice.contract_id == contract.contract_id))) == [30, 60, 90]


def test_the_scheduled_task_bodies_are_idempotent(app, session):
    """The worker's own task bodies (as it runs them: one transaction each), each run twice."""
    from portal.jobs.runner import TASK_BODIES, run_in_app
    import portal.jobs.tasks  # noqa: F401

    f.make_ticket(session, status="resolved", created_at=NOW - timedelta(days=30),
                  resolved_at=NOW - timedelta(days=20), first_response_at=NOW - timedelta(days=29))
    f.make_invoice(session, invoice_status="sent", invoice_date=date(2020, 1, 1), due_date=date(2020, 1, 31))
    f.make_contract(session, contract_status="active", start_date=date(2025, 1, 1),
                    end_date=datetime.now(UTC).date() + timedelta(days=20))
    for name in ("scan.close_resolved", "scan.overdue_invoices", "scan.expiring_contracts"):
        assert run_in_app(app, TASK_BODIES[name], {"timestamp": 0}) == 1, name
        assert run_in_app(app, TASK_BODIES[name], {"timestamp": 0}) == 0, name
