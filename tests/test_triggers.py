"""The seed's triggers, as corrected by the errata, and the one-billing-per-entry rule."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal as D

import psycopg
import pytest
import sqlalchemy as sa

from tests import factories as f


def _hours(session, ticket) -> D:
    session.expire(ticket)
    return ticket.actual_hours


class TestTicketHours:
    def test_only_approved_hours_count(self, session):
        ticket = f.make_ticket(session)
        f.make_time_entry(session, ticket=ticket, hours_worked=D("1.50"), approval_status="approved")
        pending = f.make_time_entry(session, ticket=ticket, hours_worked=D("2.00"))
        assert _hours(session, ticket) == D("1.50")
        pending.approval_status = "approved"
        session.flush()
        assert _hours(session, ticket) == D("3.50")
        pending.approval_status = "rejected"
        session.flush()
        assert _hours(session, ticket) == D("1.50")

    def test_hours_changed_and_entry_deleted(self, session):
        ticket = f.make_ticket(session)
        entry = f.make_time_entry(session, ticket=ticket, hours_worked=D("1.00"), approval_status="approved")
        entry.hours_worked = D("2.25")
        session.flush()
        assert _hours(session, ticket) == D("2.25")
        session.delete(entry)
        session.flush()
        assert _hours(session, ticket) == D("0")

    def test_entry_moved_between_tickets_recomputes_both(self, session):
        """Errata 5: the seed's trigger left the old ticket with stale hours."""
        a = f.make_ticket(session)
        b = f.make_ticket(session, customer=a.customer)
        entry = f.make_time_entry(session, ticket=a, hours_worked=D("3.00"), approval_status="approved")
        f.make_time_entry(session, ticket=b, hours_worked=D("1.00"), approval_status="approved")
        entry.ticket_id = b.ticket_id
        session.flush()
        assert _hours(session, a) == D("0")
        assert _hours(session, b) == D("4.00")

    def test_entry_moved_from_ticket_to_project(self, session):
        ticket = f.make_ticket(session)
        project = f.make_project(session, customer=ticket.customer)
        entry = f.make_time_entry(session, ticket=ticket, hours_worked=D("2.00"), approval_status="approved")
        entry.ticket_id = None
        entry.project_id = project.project_id
        session.flush()
        assert _hours(session, ticket) == D("0")

    def test_project_entries_are_skipped(self, session):
        project = f.make_project(session)
        f.make_time_entry(session, project=project, approval_status="approved")  # no ticket: no error


class TestFirstResponse:
    """The seed's set_first_response, as changed by migrations 0003 and 0011: assignment is no
    response (the first public staff reply is, in services/tickets.py), nor is waiting on the
    customer; reaching resolved without one records it then (the resolution notes reach the customer)."""

    def test_assignment_is_not_a_response(self, session):
        ticket = f.make_ticket(session, created_at=datetime(2026, 1, 1, tzinfo=UTC))
        ticket.status = "assigned"
        session.flush()
        session.refresh(ticket)
        assert ticket.first_response_at is None

    def test_waiting_on_the_customer_is_not_a_response(self, session):
        ticket = f.make_ticket(session, created_at=datetime(2026, 1, 1, tzinfo=UTC), status="in_progress")
        ticket.status = "waiting_customer"
        session.flush()
        session.refresh(ticket)
        assert ticket.first_response_at is None

    @pytest.mark.parametrize("status", ["resolved"])
    def test_resolved_without_a_response_records_one_once(self, session, status):
        ticket = f.make_ticket(session, created_at=datetime(2026, 1, 1, tzinfo=UTC), status="in_progress")
        ticket.status = status
        session.flush()
        session.refresh(ticket)
        first = ticket.first_response_at
        assert first is not None
        ticket.status = "in_progress"
        session.flush()
        ticket.status = status
        session.flush()
        session.refresh(ticket)
        assert ticket.first_response_at == first

    def test_existing_first_response_is_kept(self, session):
        answered = datetime(2026, 1, 1, 10, tzinfo=UTC)
        ticket = f.make_ticket(session, created_at=datetime(2026, 1, 1, tzinfo=UTC), first_response_at=answered,
                               status="in_progress")
        ticket.status = "resolved"
        session.flush()
        session.refresh(ticket)
        assert ticket.first_response_at == answered


class TestInvoiceTotals:
    def test_lines_sum_and_discounts_subtract(self, session):
        """Errata 6: the seed's trigger added discount lines to the bill."""
        invoice = f.make_invoice(session)
        f.make_line(session, invoice, item_type="monthly_fee", unit_price=D("1200.00"), line_total=D("1200.00"))
        f.make_line(session, invoice, item_type="hourly_work", quantity=D("2.5"), unit_price=D("125.00"),
                    line_total=D("312.50"))
        f.make_line(session, invoice, item_type="discount", unit_price=D("100.00"), line_total=D("100.00"))
        session.refresh(invoice)
        assert invoice.subtotal == D("1412.50")
        assert invoice.total_amount == D("1412.50")

    def test_tax_comes_from_the_rate_rounded_half_up(self, session):
        invoice = f.make_invoice(session, tax_rate=D("0.0825"))
        f.make_line(session, invoice, quantity=D("1"), unit_price=D("100.10"), line_total=D("100.10"))
        session.refresh(invoice)
        # 100.10 * 0.0825 = 8.25825 -> 8.26
        assert (invoice.subtotal, invoice.tax_amount, invoice.total_amount) == (D("100.10"), D("8.26"), D("108.36"))
        invoice.tax_rate = D("0.10")
        session.flush()
        session.refresh(invoice)
        assert (invoice.tax_amount, invoice.total_amount) == (D("10.01"), D("110.11"))

    def test_half_cent_rounds_up(self, session):
        invoice = f.make_invoice(session, tax_rate=D("0.05"))
        f.make_line(session, invoice, unit_price=D("0.10"), line_total=D("0.10"))  # tax 0.005
        session.refresh(invoice)
        assert invoice.tax_amount == D("0.01")

    def test_changed_and_deleted_lines(self, session):
        invoice = f.make_invoice(session)
        line = f.make_line(session, invoice, unit_price=D("50.00"), line_total=D("50.00"))
        line.quantity, line.line_total = D("3"), D("150.00")
        session.flush()
        session.refresh(invoice)
        assert invoice.subtotal == D("150.00")
        session.delete(line)
        session.flush()
        session.refresh(invoice)
        assert invoice.subtotal == D("0")

    def test_line_moved_to_another_invoice_recomputes_both(self, session):
        first = f.make_invoice(session)
        second = f.make_invoice(session, customer=first.customer)
        line = f.make_line(session, first, unit_price=D("70.00"), line_total=D("70.00"))
        line.invoice_id = second.invoice_id
        session.flush()
        session.refresh(first)
        session.refresh(second)
        assert (first.subtotal, second.subtotal) == (D("0"), D("70.00"))

    def test_totals_cannot_be_written_by_hand(self, session):
        invoice = f.make_invoice(session, tax_rate=D("0.10"))
        f.make_line(session, invoice, unit_price=D("10.00"), line_total=D("10.00"))
        session.execute(sa.text("UPDATE invoices SET tax_amount = 99, total_amount = 109 WHERE invoice_id = :i"),
                        {"i": invoice.invoice_id})
        session.refresh(invoice)
        assert (invoice.tax_amount, invoice.total_amount) == (D("1.00"), D("11.00"))


class TestBilledOnce:
    def test_an_entry_cannot_be_on_two_lines(self, session):
        entry = f.make_time_entry(session, approval_status="approved")
        first = f.make_invoice(session)
        second = f.make_invoice(session)
        f.make_line(session, first, time_entry_id=entry.entry_id, item_type="hourly_work")
        nested = session.begin_nested()
        with pytest.raises(sa.exc.IntegrityError) as caught:
            f.make_line(session, second, time_entry_id=entry.entry_id, item_type="hourly_work")
        nested.rollback()
        assert caught.value.orig.diag.constraint_name == "idx_line_items_time_entry"

    def test_lines_without_entry_are_not_limited(self, session):
        invoice = f.make_invoice(session)
        f.make_line(session, invoice)
        f.make_line(session, invoice)

    def test_two_invoice_runs_at_the_same_moment(self, pg, app):
        """Two transactions bill the same entry at once: one wins, the other is refused."""
        name = pg.create_database("techserv_race")
        try:
            from tests.test_migrations import migrate_database

            migrate_database(pg, name)
            url = pg.libpq_url_for(name)
            with psycopg.connect(url, autocommit=True) as conn:
                customer = conn.execute("INSERT INTO customers (company_name) VALUES ('Race Co') "
                                        "RETURNING customer_id").fetchone()[0]
                employee = conn.execute(
                    "INSERT INTO employees (employee_number, first_name, last_name, email, role, hire_date,"
                    " hourly_rate_internal, hourly_rate_client) VALUES ('R1', 'A', 'B', 'r@x.com',"
                    " 'technician', '2020-01-01', 50, 100) RETURNING employee_id").fetchone()[0]
                project = conn.execute(
                    "INSERT INTO projects (project_number, customer_id, project_name, budget_amount, start_date,"
                    " planned_end_date) VALUES ('P1', %s, 'P', 1000, '2026-01-01', '2026-02-01')"
                    " RETURNING project_id", (customer,)).fetchone()[0]
                entry = conn.execute(
                    "INSERT INTO time_entries (employee_id, customer_id, project_id, work_date, hours_worked,"
                    " description, work_category, billing_rate, approval_status) VALUES"
                    " (%s, %s, %s, '2026-01-05', 2, 'w', 'project', 100, 'approved') RETURNING entry_id",
                    (employee, customer, project)).fetchone()[0]
                invoices = [conn.execute(
                    "INSERT INTO invoices (invoice_number, customer_id, invoice_date, due_date) VALUES"
                    " (%s, %s, '2026-02-01', '2026-03-01') RETURNING invoice_id", (f"I{i}", customer)).fetchone()[0]
                    for i in range(2)]

            barrier = threading.Barrier(2)
            outcomes: list[str] = []

            def bill(invoice_id: int) -> None:
                with psycopg.connect(url) as conn:
                    barrier.wait()
                    try:
                        conn.execute(
                            "INSERT INTO invoice_line_items (invoice_id, time_entry_id, description, quantity,"
                            " unit_price, line_total, item_type) VALUES (%s, %s, 'w', 2, 100, 200, 'hourly_work')",
                            (invoice_id, entry))
                        conn.commit()
                        outcomes.append("billed")
                    except psycopg.errors.UniqueViolation:
                        conn.rollback()
                        outcomes.append("refused")

            threads = [threading.Thread(target=bill, args=(i,)) for i in invoices]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert sorted(outcomes) == ["billed", "refused"]
            with psycopg.connect(url) as conn:
                totals = conn.execute("SELECT subtotal FROM invoices ORDER BY subtotal").fetchall()
            assert [t[0] for t in totals] == [D("0"), D("200.00")]
        finally:
            pg.drop_database(name)


def test_audit_events_are_append_only(session):
    from portal.models import AuditEvent
    from portal.services import audit
    from portal.services.actors import Actor

    audit.record(session, Actor.system("test"), "test.event")
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "test.event")).one()
    for statement in ("UPDATE audit_events SET action = 'x' WHERE event_id = :i",
                      "DELETE FROM audit_events WHERE event_id = :i"):
        nested = session.begin_nested()
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            session.execute(sa.text(statement), {"i": event.event_id})
        nested.rollback()
