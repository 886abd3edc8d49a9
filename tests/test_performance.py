"""Performance groundwork (docs/performance.md): the ticket generator makes rows the schema and the
SLA rules accept, and the staff queue is planned on its index with a fixed number of queries.

The million-ticket measurements are in docs/performance.md; these tests stay small (a few
thousand tickets, seconds) and check what those measurements rely on.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from portal.models import Employee, TicketStatus
from portal.services import generate, policy
from portal.services.queue import QueueFilters, staff_queue
from portal.services.seed import load_demo_data
from portal.services.sla import compute_sla, coverage_of

NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
COUNT = 4000


@pytest.fixture
def generated(session):
    """The demo data plus COUNT generated tickets; returns the ids of the generated ones (first, last)."""
    load_demo_data(session, password="correct horse battery", tax_rate=Decimal("0"), today=NOW.date())
    before = session.scalar(sa.text("SELECT max(ticket_id) FROM support_tickets"))
    assert generate.generate_tickets(session, COUNT, now=NOW, seed=7) == COUNT
    after = session.scalar(sa.text("SELECT max(ticket_id) FROM support_tickets"))
    assert after - before == COUNT
    return before + 1, after


def _rows(session, ids, sql, **params):
    return session.execute(sa.text(sql), {"first": ids[0], "last": ids[1], **params}).mappings().all()


def test_generated_tickets_pass_the_constraints_and_look_like_a_support_desk(session, generated):
    rows = _rows(session, generated, """
        SELECT t.*, c.response_time_hours, c.resolution_time_hours, c.customer_id AS contract_customer,
               c.start_date, c.end_date, k.customer_id AS contact_customer
        FROM support_tickets t
        LEFT JOIN service_contracts c ON c.contract_id = t.contract_id
        LEFT JOIN contacts k ON k.contact_id = t.contact_id
        WHERE t.ticket_id BETWEEN :first AND :last""")
    assert len(rows) == COUNT
    statuses = Counter(row["status"] for row in rows)
    # About 97 % closed, the rest in every other status (the model: generate.WORKING / STALE).
    assert 0.95 < statuses["closed"] / COUNT < 0.99
    assert set(statuses) == {s.value for s in TicketStatus}
    assert len({row["category"] for row in rows}) == 7 and len({row["priority"] for row in rows}) == 4
    assert len({row["customer_id"] for row in rows}) == 5
    assert len({row["assigned_employee_id"] for row in rows if row["assigned_employee_id"]}) >= 4
    first_day = NOW - timedelta(days=365 * generate.YEARS + 7)
    for row in rows:
        created, status = row["created_at"], TicketStatus(row["status"])
        assert first_day <= created <= NOW
        # chk_ticket_timestamps holds (the insert proved it), and the life cycle is in order.
        times = [row["assigned_at"], row["first_response_at"], row["resolved_at"], row["closed_at"]]
        reached = [t for t in times if t is not None]
        assert reached == sorted(reached) and all(created <= t <= NOW for t in reached)
        assert row["last_activity_at"] == max([created, *reached])
        assert (row["assigned_employee_id"] is None) == (status == TicketStatus.OPEN) == (row["assigned_at"] is None)
        assert (row["resolved_at"] is not None) == (status in (TicketStatus.RESOLVED, TicketStatus.CLOSED))
        assert (row["closed_at"] is not None) == (status == TicketStatus.CLOSED)
        if status in (TicketStatus.IN_PROGRESS, TicketStatus.WAITING_CUSTOMER, TicketStatus.RESOLVED,
                      TicketStatus.CLOSED):
            assert row["first_response_at"] is not None
        assert row["contact_customer"] == row["customer_id"]
        if row["contract_id"] is not None:
            assert row["contract_customer"] == row["customer_id"]
            assert row["start_date"] <= created.astimezone(UTC).date() <= row["end_date"]
        # The stored SLA clock is services/sla.py's for a ticket that never paused.
        clock = compute_sla(created_at=created, status=status, first_response_at=row["first_response_at"],
                            response_hours=row["response_time_hours"], resolution_hours=row["resolution_time_hours"],
                            changes=[(created, TicketStatus.OPEN)],
                            coverage=coverage_of(session, row["contract_id"], since=created.date()))
        assert (row["response_due_at"], row["resolution_due_at"], row["sla_due_at"], row["sla_at_risk_at"]) == (
            clock.response_due_at, clock.resolution_due_at, clock.sla_due_at, clock.sla_at_risk_at), row["ticket_number"]
    # Tickets before the first contract (early 2024) have no SLA; later ones all do.
    assert any(row["contract_id"] is None for row in rows)
    assert sum(row["contract_id"] is not None for row in rows) > 0.9 * COUNT


def test_generated_ticket_numbers_are_unique_by_year_and_the_sequence_moves_past_them(session, generated):
    rows = _rows(session, generated, """
        SELECT ticket_number, extract(year FROM created_at AT TIME ZONE 'UTC')::int AS year
        FROM support_tickets WHERE ticket_id BETWEEN :first AND :last ORDER BY ticket_id""")
    numbers = [row["ticket_number"] for row in rows]
    assert all(re.fullmatch(r"TKT-\d{4}-\d{6}", n) for n in numbers)
    assert all(n[4:8] == str(row["year"]) for n, row in zip(numbers, rows))
    everyone = session.scalars(sa.text("SELECT ticket_number FROM support_tickets")).all()
    assert len(everyone) == len(set(everyone))
    # Within a year, in creation order.
    for year in {row["year"] for row in rows}:
        serials = [int(n[-6:]) for n, row in zip(numbers, rows) if row["year"] == year]
        assert serials == sorted(serials) and serials[-1] - serials[0] == len(serials) - 1
    largest = max(int(n[-6:]) for n in everyone)
    assert session.scalar(sa.text("SELECT nextval('ticket_number_seq')")) > largest


def test_generated_search_vectors_and_status_log_are_what_the_triggers_would_write(session, generated):
    differing = _rows(session, generated, """
        SELECT count(*) AS n FROM support_tickets t WHERE t.ticket_id BETWEEN :first AND :last
          AND t.search_vector IS DISTINCT FROM ticket_search_document(t.ticket_id, t.ticket_number, t.title,
                                                                       t.description)""")[0]["n"]
    assert differing == 0
    # The search trigger is back on for everyone else.
    enabled = session.scalar(sa.text(
        "SELECT tgenabled FROM pg_trigger WHERE tgname = 'trg_ticket_search' AND tgrelid = 'support_tickets'::regclass"))
    assert enabled == "O"
    log = _rows(session, generated, """
        SELECT count(*) AS n, count(*) FILTER (WHERE s.to_status = 'open' AND s.from_status IS NULL
                                                 AND s.changed_at = t.created_at AND s.actor_id = t.contact_id) AS opening
        FROM ticket_status_changes s JOIN support_tickets t USING (ticket_id)
        WHERE t.ticket_id BETWEEN :first AND :last""")[0]
    assert log["n"] == log["opening"] == COUNT
    found = session.scalar(sa.text(
        "SELECT count(*) FROM support_tickets WHERE search_vector @@ websearch_to_tsquery('english', 'printer')"))
    assert 0.02 * COUNT < found < 0.12 * COUNT


def _admin(session) -> policy.Principal:
    admin = session.scalar(sa.select(Employee).where(Employee.employee_number == "EMP005"))
    return policy.Principal(account_id=0, email=admin.email, name=admin.full_name, employee_id=admin.employee_id,
                            role=admin.role)


def _statements(session, call) -> list[tuple[str, dict]]:
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(connection, "before_cursor_execute", record)
    return seen


def test_the_default_queue_reads_its_index_in_two_queries(session, generated):
    admin = _admin(session)
    statements = _statements(session, lambda: staff_queue(session, admin, QueueFilters(), now=NOW))
    assert len(statements) == 2  # every count in one pass (FILTER aggregates), then the rows
    rows_sql, params = next((s, p) for s, p in statements if "ORDER BY" in s)
    # Plain EXPLAIN, nothing forced: already at 4,000 tickets (~280 pages, ~120 open) the planner
    # costs the ordered index scan with LIMIT at a third of the best alternative (a bitmap scan of
    # the open tickets and a sort), so this is no tie-break; at a million it is the only cheap plan.
    plan = "\n".join(row[0] for row in session.connection().exec_driver_sql("EXPLAIN " + rows_sql, params))
    assert re.search(r"Index (Only )?Scan using idx_tickets_queue on support_tickets", plan), plan
    # The index gives the page's order: the one Sort orders the 25 chosen rows, above the Limit that chose them.
    assert plan.count("Sort  (") <= 1 and "Limit" in plan.split("idx_tickets_queue")[0], plan


def test_every_queue_view_runs_the_same_two_queries(session, generated):
    admin = _admin(session)
    views = [QueueFilters(page=3), QueueFilters(assignee="me", sort="priority"), QueueFilters(status="in_progress"),
             QueueFilters(sla="breached", sort="age"), QueueFilters(q="printer", sort="activity"),
             QueueFilters(customer_id=3, priority="high"), QueueFilters(q="TKT-2026-000001")]
    for filters in views:
        statements = _statements(session, lambda filters=filters: staff_queue(session, admin, filters, now=NOW))
        queries = [s for s, _ in statements if not s.startswith("SET LOCAL")]
        settings = [s for s, _ in statements if s.startswith("SET LOCAL")]
        assert len(queries) == 2, filters
        # A word search reads the GIN index: index scans off for its two queries, then back as they were.
        words = filters.q == "printer"
        assert settings == (["SET LOCAL enable_indexscan = off", "SET LOCAL enable_indexscan TO DEFAULT"]
                            if words else []), filters
    assert session.scalar(sa.text("SHOW enable_indexscan")) == "on"


def test_a_word_search_of_the_queue_reads_the_search_index(session, generated):
    admin = _admin(session)
    statements = _statements(session, lambda: staff_queue(session, admin, QueueFilters(q="printer"), now=NOW))
    counts_sql, params = next((s, p) for s, p in statements if "count(*)" in s)
    connection = session.connection()
    connection.exec_driver_sql("SET LOCAL enable_indexscan = off")
    plan = "\n".join(row[0] for row in connection.exec_driver_sql("EXPLAIN " + counts_sql, params))
    connection.exec_driver_sql("SET LOCAL enable_indexscan TO DEFAULT")
    assert "idx_tickets_open_search" in plan, plan


def test_generate_needs_the_demo_data_and_refuses_numbers_that_would_not_fit(session, monkeypatch):
    with pytest.raises(ValueError, match="load the demo data first"):
        generate.generate_tickets(session, 10, now=NOW)
    load_demo_data(session, password="correct horse battery", tax_rate=Decimal("0"), today=NOW.date())
    monkeypatch.setattr(generate, "MAX_NUMBER", 50)
    with pytest.raises(ValueError, match="would pass TKT-YYYY-50"):
        generate.generate_tickets(session, 1000, now=NOW)
    assert generate.generate_tickets(session, 0, now=NOW) == 0


def test_flask_generate_is_a_command(app):
    result = app.test_cli_runner().invoke(args=["generate", "--help"])
    assert result.exit_code == 0 and "--tickets" in result.output
