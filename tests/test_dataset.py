"""`flask generate --scale small`: the whole generated data set keeps every rule the triggers and
foreign keys would have kept, looks like a support desk, and the same seed gives the same rows."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.models import TicketStatus
from portal.services import dataset
from portal.services.sla import compute_sla

TODAY = date(2026, 11, 25)
HASH = "pbkdf2:sha256:1000$salt$0000"


def _generate(session, seed=3):
    return dataset.generate_dataset(session, dataset.SCALES["small"], seed=seed, today=TODAY, password_hash=HASH,
                                    tax_rate=Decimal("0.0825"))


def _fingerprint(session) -> str:
    digest = hashlib.sha256()
    for table, key in (("customers", "customer_id"), ("contacts", "contact_id"), ("support_tickets", "ticket_id"),
                       ("ticket_comments", "comment_id"), ("time_entries", "entry_id"), ("projects", "project_id"),
                       ("invoices", "invoice_id"), ("invoice_line_items", "line_item_id")):
        rows = session.execute(sa.text(
            f"SELECT md5(string_agg(t::text, '|' ORDER BY {key})) FROM (SELECT * FROM {table}) t")).scalar()
        digest.update((rows or "").encode())
    return digest.hexdigest()


def test_small_data_set_holds_every_rule(session):
    counts = _generate(session)
    scale = dataset.SCALES["small"]
    assert counts["customers"] == scale.customers and counts["contacts"] == scale.contacts
    assert counts["employees"] == scale.employees and counts["accounts"] == scale.contacts + scale.employees
    assert counts["support_tickets"] == scale.tickets and counts["time_entries"] == scale.entries
    assert counts["projects"] == scale.projects and counts["invoices"] > 0
    # What the loader checks itself, asked again here (it would have raised): derived columns, foreign keys.
    assert dataset.check_dataset(session, today=TODAY) == []
    # A broken row is caught: the checks can fail.
    session.execute(sa.text("SET LOCAL session_replication_role = replica"))
    session.execute(sa.text("UPDATE support_tickets SET actual_hours = actual_hours + 1 WHERE ticket_id = 1"))
    session.execute(sa.text("UPDATE time_entries SET employee_id = 999999 WHERE entry_id = 1"))
    problems = dataset.check_dataset(session, today=TODAY)
    session.execute(sa.text("SET LOCAL session_replication_role = DEFAULT"))
    assert any("actual_hours" in p for p in problems)
    assert any("time_entries_employee_id_fkey" in p for p in problems)


def test_small_data_set_looks_like_a_support_desk(session):
    _generate(session)
    tickets = session.execute(sa.text("""
        SELECT t.*, k.response_time_hours, k.resolution_time_hours,
               (SELECT count(*) FROM ticket_comments c WHERE c.ticket_id = t.ticket_id) AS comments
        FROM support_tickets t LEFT JOIN service_contracts k ON k.contract_id = t.contract_id""")).mappings().all()
    statuses = Counter(t["status"] for t in tickets)
    assert set(statuses) == {s.value for s in TicketStatus}
    assert 0.85 < statuses["closed"] / len(tickets) < 0.99
    by_customer = Counter(t["customer_id"] for t in tickets)
    assert by_customer.most_common(1)[0] == (1, int(len(tickets) * 0.4))  # the one very large customer
    assert max(t["comments"] for t in tickets) == 6 and min(t["comments"] for t in tickets) == 0
    for t in tickets:
        times = [t["assigned_at"], t["first_response_at"], t["resolved_at"], t["closed_at"]]
        reached = [x for x in times if x is not None]
        assert reached == sorted(reached) and all(t["created_at"] <= x for x in reached)
        clock = compute_sla(created_at=t["created_at"], status=TicketStatus(t["status"]),
                            first_response_at=t["first_response_at"], response_hours=t["response_time_hours"],
                            resolution_hours=t["resolution_time_hours"], changes=())
        assert (t["response_due_at"], t["resolution_due_at"], t["sla_due_at"], t["sla_at_risk_at"]) == (
            clock.response_due_at, clock.resolution_due_at, clock.sla_due_at, clock.sla_at_risk_at)
    # Recent time waits for approval; old time is decided; invoices bill past months only.
    pending = session.execute(sa.text(
        "SELECT min(work_date), count(*) FROM time_entries WHERE approval_status = 'pending'")).one()
    assert pending.count > 0 and (TODAY - pending.min).days <= 11
    assert session.scalar(sa.text("SELECT max(invoice_date) FROM invoices")) == TODAY.replace(day=1)
    assert session.scalar(sa.text("SELECT count(DISTINCT invoice_status) FROM invoices")) >= 3
    # Numbers continue after the generated ones.
    assert session.scalar(sa.text("SELECT last_value FROM ticket_number_seq")) >= max(
        int(t["ticket_number"].rsplit("-", 1)[1]) for t in tickets)


def test_same_seed_same_rows(session):
    with session.begin_nested() as first:
        _generate(session, seed=5)
        one = _fingerprint(session)
        first.rollback()
    with session.begin_nested() as second:
        _generate(session, seed=5)
        two = _fingerprint(session)
        second.rollback()
    with session.begin_nested() as third:
        _generate(session, seed=6)
        other = _fingerprint(session)
        third.rollback()
    assert one == two != other


def test_refuses_a_database_with_customers(session):
    from tests import factories as f

    f.make_customer(session)
    with pytest.raises(ValueError, match="empty"):
        _generate(session)


def test_the_generated_history_is_billed_as_billing_would_and_summarised_for_the_reports(session):
    """Every past month is billed by billing's rules: planning any customer's past month again finds
    nothing (no entry, no fee month left); report_time_month holds the approved hours."""
    from portal.services import invoicing, policy

    _generate(session)
    system = policy.Principal.system("test")
    customers = session.scalars(sa.text(
        "SELECT DISTINCT customer_id FROM invoices ORDER BY customer_id LIMIT 12")).all()
    month = date(2026, 9, 1)
    for customer_id in customers:
        plan = invoicing.plan_invoice(session, system, invoicing.InvoiceRequest(
            customer_id=customer_id, period_start=month, period_end=date(2026, 9, 30), include_monthly_fees=True),
            tax_rate=Decimal("0.0825"))
        assert plan.lines == [], (customer_id, plan.lines[:2])
    assert session.scalar(sa.text("SELECT count(*) FROM report_time_month")) > 0
    assert session.scalar(sa.text("SELECT count(*) FROM invoices WHERE period_start IS NULL")) == 0
