"""The staff queue (services/queue.py): sort, filters, search, counts, paging, the query string,
and a fixed number of SQL statements whatever the number of tickets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from portal.models import Account, SupportTicket, TicketComment, TicketStatus
from portal.services import auth, queue
from portal.services.queue import QueueFilters, staff_queue
from portal.services.sla import sla_state, sla_state_condition
from tests import factories as f

S = TicketStatus
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def principal(session, person):
    account_id = session.scalar(sa.select(Account.account_id).where(Account.email == person.email))
    return auth.principal_for(session, account_id)


def numbers(page):
    return [row.ticket.ticket_number for row in page.rows]


def sla_ticket(session, customer, number, *, status=S.IN_PROGRESS, due=None, at_risk=None, sla=True, **kw):
    """A ticket with a stored SLA clock: `due`/`at_risk` are offsets from NOW (None: no next deadline)."""
    created = NOW - 48 * H
    values = dict(ticket_number=number, status=status, created_at=created, last_activity_at=created)
    if sla:
        values.update(response_due_at=created + 4 * H, resolution_due_at=created + 72 * H,
                      sla_due_at=NOW + due if due is not None else None,
                      sla_at_risk_at=NOW + at_risk if at_risk is not None else None)
    if status in (S.RESOLVED, S.CLOSED):
        values.update(resolved_at=NOW - H, resolution_notes="Fixed.")
    if status == S.CLOSED:
        values["closed_at"] = NOW - H / 2
    values.update(kw)
    return f.make_ticket(session, customer, **values)


@pytest.fixture
def me(session):
    employee = f.make_staff(session)
    return employee, principal(session, employee)


@pytest.fixture
def world(session, me):
    """One customer's queue: one ticket per SLA state, a resolved and a closed one, plus another customer's."""
    employee, _ = me
    colleague = f.make_employee(session, first_name="Dana", last_name="Colleague")
    customer = f.make_customer(session, company_name="Queue Test Co")
    t = {
        "breached": sla_ticket(session, customer, "TKT-Q-BREACH", due=-H, at_risk=-3 * H, priority="critical",
                               category="network", assigned_employee_id=employee.employee_id,
                               title="VPN tunnel down", description="Branch office cannot connect."),
        "at_risk": sla_ticket(session, customer, "TKT-Q-ATRISK", status=S.ASSIGNED, due=H, at_risk=-H,
                              priority="high", category="hardware", assigned_employee_id=colleague.employee_id,
                              title="Laptop screen flickers", description="Only on battery."),
        "ok": sla_ticket(session, customer, "TKT-Q-OK", status=S.OPEN, due=10 * H, at_risk=5 * H, priority="low",
                         category="software", title="Excel add-in missing", description="After the update."),
        "paused": sla_ticket(session, customer, "TKT-Q-PAUSED", status=S.WAITING_CUSTOMER,
                             assigned_employee_id=employee.employee_id, category="email",
                             title="Mailbox full", description="Asked which folders to archive."),
        "none": sla_ticket(session, customer, "TKT-Q-NONE", status=S.OPEN, sla=False, category="software",
                           title="Font request", description="A new corporate font."),
        "resolved": sla_ticket(session, customer, "TKT-Q-RESOLVED", status=S.RESOLVED,
                               assigned_employee_id=colleague.employee_id, category="backup",
                               title="Backup job failed", description="Disk was full."),
        "closed": sla_ticket(session, customer, "TKT-Q-CLOSED", status=S.CLOSED, due=-5 * H, at_risk=-6 * H,
                             title="Old closed VPN issue", description="VPN tunnel down last year."),
    }
    elsewhere = sla_ticket(session, f.make_customer(session), "TKT-Q-ELSEWHERE", due=-2 * H, at_risk=-4 * H,
                           title="VPN tunnel down too", description="Another customer's.")
    return customer, t, elsewhere


def mine(customer, **kw) -> QueueFilters:
    return QueueFilters(customer_id=customer.customer_id, **kw)


class TestSortAndRows:
    def test_default_sort_by_sla_due_nulls_last_closed_never(self, session, me, world):
        customer, t, _ = world
        page = staff_queue(session, me[1], mine(customer), now=NOW)
        # Due times first (soonest first), then the tickets without one, by id.
        assert numbers(page) == ["TKT-Q-BREACH", "TKT-Q-ATRISK", "TKT-Q-OK",
                                 "TKT-Q-PAUSED", "TKT-Q-NONE", "TKT-Q-RESOLVED"]
        assert page.total == 6 and (page.page, page.pages) == (1, 1)
        assert [row.sla for row in page.rows] == ["breached", "at_risk", "ok", "paused", None, "met"]
        assert {row.company_name for row in page.rows} == {"Queue Test Co"}
        by_number = {row.ticket.ticket_number: row for row in page.rows}
        assert by_number["TKT-Q-ATRISK"].assignee_name == "Dana Colleague"
        assert by_number["TKT-Q-OK"].assignee_name is None

    def test_whole_queue_never_shows_closed_and_spans_customers(self, session, me, world):
        customer, t, elsewhere = world
        page = staff_queue(session, me[1], QueueFilters(), now=NOW)
        assert "TKT-Q-CLOSED" not in numbers(page)
        assert numbers(page)[:2] == ["TKT-Q-ELSEWHERE", "TKT-Q-BREACH"]  # due 2 h ago before due 1 h ago

    @pytest.mark.parametrize("sort, expected", [
        ("priority", ["TKT-Q-BREACH", "TKT-Q-ATRISK", "TKT-Q-PAUSED", "TKT-Q-NONE", "TKT-Q-RESOLVED",
                      "TKT-Q-OK"]),
        ("activity", ["TKT-Q-ATRISK", "TKT-Q-OK", "TKT-Q-BREACH", "TKT-Q-RESOLVED", "TKT-Q-NONE",
                      "TKT-Q-PAUSED"]),
    ])
    def test_other_sorts(self, session, me, world, sort, expected):
        customer, t, _ = world
        for offset, key in enumerate(["PAUSED", "NONE", "RESOLVED", "BREACH", "OK", "ATRISK"]):
            ticket = next(x for x in t.values() if x.ticket_number == f"TKT-Q-{key}")
            ticket.last_activity_at = NOW - timedelta(minutes=60 - offset)
        session.flush()
        assert numbers(staff_queue(session, me[1], mine(customer, sort=sort), now=NOW)) == expected

    def test_oldest_first(self, session, me, world):
        customer, t, _ = world
        t["ok"].created_at = NOW - 100 * H
        session.flush()
        assert numbers(staff_queue(session, me[1], mine(customer, sort="age"), now=NOW))[0] == "TKT-Q-OK"


class TestFilters:
    @pytest.mark.parametrize("filters, expected", [
        ({"status": "open"}, {"TKT-Q-OK", "TKT-Q-NONE"}),
        ({"status": "waiting_customer"}, {"TKT-Q-PAUSED"}),
        ({"status": "resolved"}, {"TKT-Q-RESOLVED"}),
        ({"priority": "critical"}, {"TKT-Q-BREACH"}),
        ({"priority": "medium"}, {"TKT-Q-PAUSED", "TKT-Q-NONE", "TKT-Q-RESOLVED"}),
        ({"category": "software"}, {"TKT-Q-OK", "TKT-Q-NONE"}),
        ({"category": "security"}, set()),
        ({"assignee": "me"}, {"TKT-Q-BREACH", "TKT-Q-PAUSED"}),
        ({"assignee": "unassigned"}, {"TKT-Q-OK", "TKT-Q-NONE"}),
        ({"sla": "breached"}, {"TKT-Q-BREACH"}),
        ({"sla": "at_risk"}, {"TKT-Q-ATRISK"}),
        ({"sla": "ok"}, {"TKT-Q-OK"}),
        ({"sla": "paused"}, {"TKT-Q-PAUSED"}),
        ({"sla": "none"}, {"TKT-Q-NONE"}),
        ({"status": "open", "category": "software", "sla": "none", "assignee": "unassigned"}, {"TKT-Q-NONE"}),
        ({"assignee": "me", "sla": "ok"}, set()),
    ])
    def test_filters_return_the_right_tickets(self, session, me, world, filters, expected):
        customer, _, _ = world
        page = staff_queue(session, me[1], mine(customer, **filters), now=NOW)
        assert set(numbers(page)) == expected
        assert page.total == len(expected)

    def test_customer_filter(self, session, me, world):
        customer, _, elsewhere = world
        page = staff_queue(session, me[1], QueueFilters(customer_id=elsewhere.customer_id), now=NOW)
        assert numbers(page) == ["TKT-Q-ELSEWHERE"]

    def test_sla_filter_agrees_with_the_state_shown(self, session, me, world):
        customer, _, _ = world
        for state in queue.SLA_STATES:
            page = staff_queue(session, me[1], mine(customer, sla=state), now=NOW)
            assert {row.sla for row in page.rows} <= {None if state == "none" else state}
            assert page.total == 1

    def test_sla_condition_boundaries_match_sla_state(self, session, world):
        """The SQL conditions use the same boundaries as sla_state: at risk from the at-risk time,
        breached from the due time."""
        customer, t, _ = world
        ticket = t["ok"]  # due NOW+10h, at risk from NOW+5h
        for now, state in [(NOW + 5 * H - timedelta(microseconds=1), "ok"), (NOW + 5 * H, "at_risk"),
                           (NOW + 10 * H - timedelta(microseconds=1), "at_risk"), (NOW + 10 * H, "breached")]:
            assert sla_state(ticket, now) == state
            matching = {s for s in ("breached", "at_risk", "ok") if session.scalar(
                sa.select(sa.func.count()).select_from(SupportTicket).where(
                    SupportTicket.ticket_id == ticket.ticket_id, sla_state_condition(s, now)))}
            assert matching == {state}


class TestSearch:
    def test_finds_a_word_only_in_a_public_reply(self, session, me, world):
        customer, t, _ = world
        session.add(TicketComment(ticket_id=t["ok"].ticket_id, author_employee_id=me[0].employee_id,
                                  body="The culprit was the kumquat plugin."))
        session.flush()
        page = staff_queue(session, me[1], QueueFilters(q="kumquat"), now=NOW)
        assert numbers(page) == ["TKT-Q-OK"]

    def test_finds_a_word_only_in_an_internal_note(self, session, me, world):
        customer, t, _ = world
        session.add(TicketComment(ticket_id=t["paused"].ticket_id, author_employee_id=me[0].employee_id,
                                  body="Between us: the platypus firmware again.", is_internal=True))
        session.flush()
        assert numbers(staff_queue(session, me[1], QueueFilters(q="platypus"), now=NOW)) == ["TKT-Q-PAUSED"]
        # English stemming, as typed in a search box.
        assert numbers(staff_queue(session, me[1], QueueFilters(q="firmwares"), now=NOW)) == ["TKT-Q-PAUSED"]

    def test_finds_title_and_description_words_never_closed(self, session, me, world):
        customer, _, _ = world
        page = staff_queue(session, me[1], mine(customer, q="vpn tunnel"), now=NOW)
        assert numbers(page) == ["TKT-Q-BREACH"]  # the closed one mentions it too
        assert numbers(staff_queue(session, me[1], mine(customer, q="battery"), now=NOW)) == ["TKT-Q-ATRISK"]
        assert numbers(staff_queue(session, me[1], mine(customer, q="nothinglikethis"), now=NOW)) == []

    def test_web_search_syntax_does_not_break(self, session, me, world):
        customer, _, _ = world
        for q in ['"tunnel down" -laptop', "vpn OR excel", "((", "the", "'; DROP TABLE support_tickets; --", "&|!"]:
            staff_queue(session, me[1], mine(customer, q=q), now=NOW)
        assert set(numbers(staff_queue(session, me[1], mine(customer, q="vpn OR excel"), now=NOW))) \
            == {"TKT-Q-BREACH", "TKT-Q-OK"}

    def test_ticket_number_search(self, session, me, world):
        customer, _, _ = world
        ticket = sla_ticket(session, customer, "TKT-2026-987654", due=3 * H, at_risk=2 * H)
        other = sla_ticket(session, customer, "TKT-2026-987655", due=3 * H, at_risk=2 * H)
        for q in ("TKT-2026-987654", "  tkt-2026-987654 "):
            page = staff_queue(session, me[1], QueueFilters.from_args({"q": q}), now=NOW)
            assert [row.ticket.ticket_id for row in page.rows] == [ticket.ticket_id]
        assert other.ticket_id not in [row.ticket.ticket_id for row in page.rows]

    def test_number_search_never_shows_a_closed_ticket(self, session, me, world):
        customer, _, _ = world
        sla_ticket(session, customer, "TKT-2025-000777", status=S.CLOSED)
        assert staff_queue(session, me[1], QueueFilters(q="TKT-2025-000777"), now=NOW).total == 0


class TestCounts:
    def test_counts_per_status_and_sla_state(self, session, me, world):
        customer, _, _ = world
        page = staff_queue(session, me[1], mine(customer), now=NOW)
        assert page.status_counts == {"open": 2, "assigned": 1, "in_progress": 1, "waiting_customer": 1,
                                      "resolved": 1}
        assert page.sla_counts == {"breached": 1, "at_risk": 1, "ok": 1, "paused": 1, "none": 1}
        assert sum(page.status_counts.values()) == page.total

    def test_status_counts_ignore_the_status_filter_sla_counts_the_sla_filter(self, session, me, world):
        customer, _, _ = world
        page = staff_queue(session, me[1], mine(customer, status="open", sla="none"), now=NOW)
        assert numbers(page) == ["TKT-Q-NONE"]
        # Status tabs: every status under the SLA filter; SLA tabs: every state under the status filter.
        assert page.status_counts == {"open": 1, "assigned": 0, "in_progress": 0, "waiting_customer": 0,
                                      "resolved": 0}
        assert page.sla_counts == {"breached": 0, "at_risk": 0, "ok": 1, "paused": 0, "none": 1}

    def test_counts_follow_the_other_filters(self, session, me, world):
        customer, _, _ = world
        page = staff_queue(session, me[1], mine(customer, assignee="me"), now=NOW)
        assert page.status_counts["in_progress"] == 1 and page.status_counts["waiting_customer"] == 1
        assert page.status_counts["open"] == 0
        assert page.sla_counts == {"breached": 1, "at_risk": 0, "ok": 0, "paused": 1, "none": 0}

    def test_empty_queue(self, session, me):
        customer = f.make_customer(session)
        page = staff_queue(session, me[1], mine(customer), now=NOW)
        assert (page.rows, page.total, page.page, page.pages) == ([], 0, 1, 1)
        assert set(page.status_counts.values()) == {0} and set(page.sla_counts.values()) == {0}
        assert "closed" not in page.status_counts


class TestPaging:
    def test_pages(self, session, me):
        customer = f.make_customer(session)
        made = [sla_ticket(session, customer, f"TKT-P-{i:03d}", due=i * H, at_risk=(i - 1) * H) for i in range(1, 8)]
        expected = [t.ticket_number for t in made]
        first = staff_queue(session, me[1], mine(customer), now=NOW, per_page=3)
        assert (first.total, first.page, first.pages) == (7, 1, 3)
        assert numbers(first) == expected[:3]
        second = staff_queue(session, me[1], mine(customer, page=2), now=NOW, per_page=3)
        assert numbers(second) == expected[3:6]
        last = staff_queue(session, me[1], mine(customer, page=3), now=NOW, per_page=3)
        assert numbers(last) == expected[6:]
        beyond = staff_queue(session, me[1], mine(customer, page=99), now=NOW, per_page=3)
        assert beyond.page == 3 and numbers(beyond) == expected[6:]  # past the end: the last page
        assert staff_queue(session, me[1], mine(customer), now=NOW).pages == 1  # 25 a page by default


class TestFromArgs:
    def test_defaults(self):
        assert QueueFilters.from_args(MultiDict()) == QueueFilters()
        assert QueueFilters.from_args({}) == QueueFilters()

    def test_good_values_are_kept(self):
        args = MultiDict({"status": "waiting_customer", "priority": "high", "category": "email", "customer_id": "12",
                          "assignee": "me", "sla": "at_risk", "q": "  vpn  ", "sort": "age", "page": "3"})
        assert QueueFilters.from_args(args) == QueueFilters(
            status="waiting_customer", priority="high", category="email", customer_id=12, assignee="me",
            sla="at_risk", q="vpn", sort="age", page=3)

    @pytest.mark.parametrize("args", [
        {"status": "bogus"}, {"status": "closed"}, {"status": ""}, {"priority": "urgent"}, {"category": "furniture"},
        {"customer_id": "abc"}, {"customer_id": "-3"}, {"customer_id": "0"}, {"customer_id": "1.5"},
        {"assignee": "everyone"}, {"sla": "met"}, {"sla": "late"}, {"sort": "random"}, {"sort": "ticket_id; --"},
        {"page": "-5"}, {"page": "abc"}, {"page": "0"}, {"page": ""}, {"page": "2.0"}, {"page": "1e3"},
    ])
    def test_garbage_falls_back_to_the_default(self, args):
        assert QueueFilters.from_args(MultiDict(args)) == QueueFilters()

    def test_page_is_capped_and_search_trimmed(self):
        filters = QueueFilters.from_args(MultiDict({"page": "999999999999", "q": "x" * 500}))
        assert filters.page == 10_000 and filters.q == "x" * 200

    def test_garbage_runs_without_error(self, session, me, world):
        customer, _, _ = world
        args = MultiDict({"status": "bogus", "page": "-5", "sort": "nope", "sla": "nope",
                          "customer_id": str(customer.customer_id), "assignee": "???", "q": "   "})
        page = staff_queue(session, me[1], QueueFilters.from_args(args), now=NOW)
        assert page.total == 6 and page.page == 1
        page = staff_queue(session, me[1], QueueFilters.from_args(MultiDict({"page": "abc", "customer_id": "x"})),
                           now=NOW)
        assert page.page == 1

    def test_largest_customer_id_finds_nothing(self, session, me, world):
        filters = QueueFilters.from_args(MultiDict({"customer_id": "2147483647"}))
        assert staff_queue(session, me[1], filters, now=NOW).total == 0

    @pytest.mark.parametrize("raw", ["2147483648", "99999999999999999999"])
    def test_customer_id_out_of_integer_range_is_ignored(self, session, me, world, raw):
        filters = QueueFilters.from_args(MultiDict({"customer_id": raw}))
        page = staff_queue(session, me[1], filters, now=NOW)
        assert filters.customer_id is None or page.total == 0

    def test_as_args_keeps_only_what_differs(self):
        filters = QueueFilters(status="open", page=2)
        assert filters.as_args() == {"status": "open", "page": 2}
        assert filters.as_args(page=1) == {"status": "open"}
        assert QueueFilters.from_args(MultiDict({k: str(v) for k, v in filters.as_args().items()})) == filters


class TestQueryCount:
    @staticmethod
    def statements(session, run) -> list[str]:
        engine = session.get_bind().engine
        seen: list[str] = []

        def count(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            run()
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        return seen

    def test_the_same_number_of_statements_for_3_and_60_tickets(self, session, me):
        counts = {}
        for size in (3, 60):
            customer = f.make_customer(session)
            assignees = [f.make_employee(session) for _ in range(3)]
            for i in range(size):
                sla_ticket(session, customer, f"TKT-N{size}-{i:04d}", status=[S.OPEN, S.ASSIGNED, S.IN_PROGRESS][i % 3],
                           due=(i - 5) * H, at_risk=(i - 6) * H,
                           assigned_employee_id=assignees[i % 3].employee_id if i % 2 else None)
            session.flush()
            filters = mine(customer)
            statements = self.statements(session, lambda: [
                (row.ticket.ticket_number, row.company_name, row.assignee_name, row.sla)
                for row in staff_queue(session, me[1], filters, now=NOW).rows])
            counts[size] = len(statements)
            assert all(s.lstrip().upper().startswith("SELECT") for s in statements)
        assert counts[3] == counts[60] == 2  # every count in one pass (FILTER aggregates), then the rows
