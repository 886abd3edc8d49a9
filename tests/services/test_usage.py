"""Contract usage (services/usage.py): every number a contact sees, and that they agree with what
generate_invoice bills (services/invoicing.py), on the real database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import Account, LineItemType
from portal.services import auth
from portal.services.policy import Principal
from portal.services.reports.unbilled import refresh_unbilled
from portal.services.errors import Forbidden, Invalid
from portal.services.invoicing import InvoiceRequest, generate_invoice
from portal.services.tenancy import apply_contact_scope, clear_contact_scope
from portal.services.usage import PER_PAGE, contract_usage, parse_month
from tests import factories as f
from tests.conftest import count_queries

TODAY = date(2026, 6, 20)
SYSTEM = Principal.system("test")


def principal(session, person):
    account_id = session.scalar(sa.select(Account.account_id).where(Account.email == person.email))
    return auth.principal_for(session, account_id)


class World:
    """A customer with a contract (10 h a month, $150 an extra hour), its primary contact (who sees
    everything of the usage page), tickets, a project."""

    def __init__(self, session, *, contract=True, included=10):
        self.s = session
        self.customer = f.make_customer(session)
        self.contract = (f.make_contract(session, customer=self.customer, included_hours=included,
                                         hourly_rate_additional=D("150.00"), monthly_fee=D("1000.00"),
                                         start_date=date(2026, 1, 1), end_date=date(2026, 12, 31))
                         if contract else None)
        self.contact = f.make_contact_login(session, customer=self.customer, is_primary_contact=True)
        self.tech = f.make_employee(session)
        self.ticket = self.new_ticket()
        self.project = f.make_project(session, customer=self.customer, project_name="Office move")

    def new_ticket(self, **kw):
        return f.make_ticket(self.s, customer=self.customer, title="Printer offline",
                             contract_id=self.contract.contract_id if self.contract else None, **kw)

    def entry(self, day, hours, status="approved", ticket=None, project=None, billable=True, rate="100.00",
              description="Replaced the toner."):
        work = {"project": project} if project is not None else {"ticket": ticket or self.ticket}
        extra = {"rejection_reason": "Wrong ticket."} if status == "rejected" else {}
        return f.make_time_entry(self.s, employee=self.tech, work_date=day, hours_worked=D(hours),
                                 approval_status=status, is_billable=billable, billing_rate=D(rate),
                                 description=description, **work, **extra)

    def usage(self, **kw):
        kw.setdefault("today", TODAY)
        return contract_usage(self.s, principal(self.s, self.contact), **kw)

    def invoice(self, start, end, *, status="sent", fees=False):
        invoice = generate_invoice(self.s, SYSTEM, InvoiceRequest(self.customer.customer_id, start, end,
                                                                  include_monthly_fees=fees),
                                   invoice_date=end, tax_rate=D("0"))
        invoice.invoice_status = status
        self.s.flush()
        return invoice


def time_total(invoice) -> D:
    return sum((line.line_total for line in invoice.line_items if line.item_type == LineItemType.HOURLY_WORK), D(0))


# --- the month's numbers -------------------------------------------------------------------

def test_included_approved_pending_and_left(session):
    w = World(session)
    w.entry(date(2026, 6, 2), "3.00")
    w.entry(date(2026, 6, 9), "4.00", ticket=w.new_ticket())
    w.entry(date(2026, 6, 10), "2.00", status="pending")
    w.entry(date(2026, 6, 11), "5.00", status="rejected")  # never counted, never shown
    w.entry(date(2026, 6, 12), "1.00", billable=False)  # internal: no allowance, not billed
    w.entry(date(2026, 6, 15), "6.00", project=w.project)  # project work: its own rate, not the allowance
    w.entry(date(2026, 5, 29), "5.00")  # another month
    other = World(session)
    other.entry(date(2026, 6, 3), "9.00")  # another customer

    usage = w.usage()
    assert usage.contract.contract_id == w.contract.contract_id
    assert (usage.included, usage.approved, usage.pending, usage.left, usage.over) == (
        D(10), D("7.00"), D("2.00"), D("3.00"), D(0))
    assert usage.unbilled_count == 3 and usage.unbilled_hours == D("13.00")
    assert usage.estimate == D("600.00")  # 7 h included; 6 project hours at the entry's $100
    assert [(r.work_date.day, r.hours, r.estimate) for r in usage.rows] == [
        (2, D("3.00"), D(0)), (9, D("4.00"), D(0)), (15, D("6.00"), D("600.00"))]
    assert usage.rows[0].fully_included and not usage.rows[2].fully_included
    assert usage.rows[0].ticket_title == "Printer offline" and usage.rows[0].ticket_number
    assert usage.rows[2].project_name == "Office move" and usage.rows[2].ticket_number is None
    assert usage.other_months == [] and usage.other_months_at is None  # not counted by the worker yet
    counted = recount(session)
    usage = w.usage()
    assert usage.other_months == [(date(2026, 5, 1), D("5.00"))] and usage.other_months_at == counted


def recount(session):
    """What the worker's scan.unbilled_work does every five minutes; returns its time."""
    now = datetime(2026, 6, 20, 15, 0, tzinfo=UTC)
    refresh_unbilled(session, now)
    return now


def test_other_months_are_those_not_yet_on_an_invoice_the_customer_received(session):
    w = World(session)
    for day in (date(2026, 3, 10), date(2026, 4, 10), date(2026, 5, 10), date(2026, 6, 10)):
        w.entry(day, "2.00")
    w.entry(date(2026, 2, 10), "1.00", status="pending")  # not approved: not waiting for an invoice
    w.entry(date(2026, 1, 10), "1.00", billable=False)  # internal work is never invoiced
    other = World(session)
    other.entry(date(2026, 4, 20), "7.00")  # another customer's
    w.invoice(date(2026, 3, 1), date(2026, 3, 31))  # sent: March is invoiced
    w.invoice(date(2026, 4, 1), date(2026, 4, 30), status="draft")  # a draft is not an invoice yet
    recount(session)
    assert w.usage().other_months == [(date(2026, 5, 1), D("2.00")), (date(2026, 4, 1), D("2.00"))]
    assert [m for m, _ in w.usage(month="2026-05").other_months] == [date(2026, 6, 1), date(2026, 4, 1)]
    assert other.usage().other_months == [(date(2026, 4, 1), D("7.00"))]


def test_use_over_the_allowance_is_billed_at_the_contract_rate(session):
    w = World(session)
    w.entry(date(2026, 6, 2), "8.00")
    w.entry(date(2026, 6, 3), "4.00")
    w.entry(date(2026, 6, 4), "1.00", status="pending")

    usage = w.usage()
    assert (usage.approved, usage.left, usage.over, usage.pending) == (D("12.00"), D(0), D("2.00"), D("1.00"))
    assert usage.over_pending == D("1.00")
    assert usage.estimate == D("300.00")
    crossing = usage.rows[1]
    assert (crossing.included, crossing.estimate, crossing.fully_included) == (D("2.00"), D("300.00"), False)
    assert [part for part, *_ in usage.bar] == ["approved", "over", "pending"]
    assert usage.included_mark == D("76.92")  # 10 of 13 h


def test_month_boundaries(session):
    w = World(session)
    w.entry(date(2026, 5, 31), "1.00")
    w.entry(date(2026, 6, 1), "2.00")
    w.entry(date(2026, 6, 30), "3.00")
    w.entry(date(2026, 7, 1), "4.00")

    june = w.usage(today=date(2026, 7, 15), month="2026-06")
    assert june.approved == D("5.00") and june.unbilled_hours == D("5.00")
    may = w.usage(today=date(2026, 7, 15), month="2026-05")
    assert may.approved == D("1.00") and may.month == date(2026, 5, 1)
    recount(session)
    july = w.usage(today=date(2026, 7, 15))
    assert july.approved == D("4.00") and july.is_current_month and july.next_month is None
    assert june.next_month == date(2026, 7, 1) and june.previous_month == date(2026, 5, 1)
    assert [m for m, _ in july.other_months] == [date(2026, 6, 1), date(2026, 5, 1)]


def test_each_month_has_its_own_allowance(session):
    w = World(session, included=4)
    w.entry(date(2026, 5, 20), "6.00")
    w.entry(date(2026, 6, 2), "3.00")
    usage = w.usage()
    assert (usage.approved, usage.left, usage.over, usage.estimate) == (D("3.00"), D("1.00"), D(0), D(0))
    may = w.usage(month="2026-05")
    assert (may.over, may.estimate) == (D("2.00"), D("300.00"))


# --- what is invoiced already --------------------------------------------------------------

def test_invoiced_entries_leave_the_list_and_keep_their_share_of_the_allowance(session):
    w = World(session)
    w.entry(date(2026, 6, 2), "8.00")
    w.invoice(date(2026, 6, 1), date(2026, 6, 10))  # a mid-month invoice, sent
    later = w.entry(date(2026, 6, 12), "4.00")

    usage = w.usage()
    assert usage.approved == D("12.00") and usage.over == D("2.00")
    assert [r.entry_id for r in usage.rows] == [later.entry_id]
    assert usage.estimate == D("300.00")  # 2 h left of the allowance, 2 h at $150
    # ... and the next invoice bills exactly that: the allowance is not granted twice in one month.
    assert time_total(w.invoice(date(2026, 6, 11), date(2026, 6, 20))) == usage.estimate


def test_a_draft_is_not_a_bill_yet_its_work_still_shows_with_what_the_draft_charges(session):
    w = World(session)
    w.entry(date(2026, 6, 2), "8.00")
    w.entry(date(2026, 6, 5), "3.50")
    w.entry(date(2026, 6, 6), "2.00", project=w.project, rate="120.00")
    draft = w.invoice(date(2026, 6, 1), date(2026, 6, 20), status="draft")

    usage = w.usage()
    assert usage.unbilled_count == 3
    assert usage.estimate == time_total(draft) == D("465.00")  # 1.5 h x $150 + 2 h x $120


def test_the_same_numbers_under_the_contacts_row_level_security(session):
    w = World(session)
    w.entry(date(2026, 6, 2), "8.00")
    w.invoice(date(2026, 6, 1), date(2026, 6, 5))
    w.entry(date(2026, 6, 8), "3.50")
    w.entry(date(2026, 6, 9), "1.00", status="pending")
    w.invoice(date(2026, 6, 6), date(2026, 6, 10), status="draft")  # invisible to contacts: still unbilled
    World(session).entry(date(2026, 6, 3), "9.00")
    as_staff_session = w.usage()
    who = principal(session, w.contact)
    apply_contact_scope(session, who.customer_id, who.contact_id)
    try:
        scoped = contract_usage(session, who, today=TODAY)
    finally:
        clear_contact_scope(session)
    assert scoped == as_staff_session
    assert (scoped.approved, scoped.pending, scoped.unbilled_count, scoped.estimate) == (
        D("11.50"), D("1.00"), 1, D("225.00"))


def test_a_cancelled_invoice_frees_its_entries(session):
    """Issue 11: a cancelled invoice's lines stay on it for the record but are not live any more, so
    its entries are "not yet invoiced" again, use the allowance afresh, and bill on the next invoice."""
    w = World(session)
    entry = w.entry(date(2026, 6, 2), "12.00")
    invoice = w.invoice(date(2026, 6, 1), date(2026, 6, 10))
    assert w.usage().unbilled_count == 0
    invoice.invoice_status = "cancelled"
    session.flush()
    usage = w.usage()
    assert [r.entry_id for r in usage.rows] == [entry.entry_id] and usage.approved == D("12.00")
    # The cancelled invoice uses none of the allowance: the new one bills 2 h over, as the estimate says.
    assert usage.estimate == D("300.00")
    assert time_total(w.invoice(date(2026, 6, 1), date(2026, 6, 20))) == usage.estimate
    session.refresh(invoice)
    assert invoice.invoice_status == "cancelled" and [line.live for line in invoice.line_items] == [False]


def test_the_estimate_agrees_with_the_invoice_for_a_mixed_month(session):
    w = World(session, included=5)
    second = f.make_contract(session, customer=w.customer, included_hours=2, hourly_rate_additional=D("90.00"),
                             start_date=date(2025, 1, 1), end_date=date(2025, 12, 31), contract_status="expired")
    old_ticket = w.new_ticket()
    old_ticket.contract_id = second.contract_id  # the contract on the work date prices it, not the ticket's
    w.entry(date(2026, 6, 1), "1.25")
    w.entry(date(2026, 6, 1), "2.50", ticket=old_ticket)
    w.entry(date(2026, 6, 3), "3.75")
    w.entry(date(2026, 6, 4), "0.50", project=w.project, rate="175.00")
    w.entry(date(2026, 6, 8), "6.00", ticket=w.new_ticket())
    w.entry(date(2026, 6, 9), "2.00", status="pending")
    for day in range(10, 16):
        w.entry(date(2026, 6, day), "1.00", project=w.project, rate="80.00")
    usage = w.usage()
    invoice = w.invoice(date(2026, 6, 1), date(2026, 6, 30))
    assert usage.estimate == time_total(invoice) > 0
    estimates = {r.entry_id: r.estimate for r in usage.rows}
    assert estimates == {line.time_entry_id: line.line_total for line in invoice.line_items}


# --- no contract, validation, pages, who -----------------------------------------------------

def test_without_a_contract_everything_is_billed_at_the_entrys_rate(session):
    w = World(session, contract=False)
    w.entry(date(2026, 6, 2), "2.00", rate="110.00")
    w.entry(date(2026, 6, 3), "1.00", status="pending")
    usage = w.usage()
    assert usage.contract is None
    assert (usage.included, usage.approved, usage.pending, usage.left, usage.over) == (
        D(0), D("2.00"), D("1.00"), D(0), D(0))
    assert usage.estimate == D("220.00") and usage.unbilled_count == 1
    assert [part for part, *_ in usage.bar] == ["approved", "pending"]


def test_the_contract_shown_is_the_one_active_on_the_day(session):
    w = World(session)
    w.contract.end_date = date(2026, 6, 15)
    session.flush()
    assert w.usage().contract is None  # expired before today: no contract now
    assert w.usage(month="2026-05").contract.contract_id == w.contract.contract_id
    assert w.usage(today=date(2026, 6, 10)).contract.contract_id == w.contract.contract_id


@pytest.mark.parametrize("value, message", [
    ("2026-13", "for example"), ("0000-01", "for example"), ("June", "for example"), ("2026-6", "for example"), ("20266-01", "for example"),
    ("2026-07", "no usage yet for July 2026"), ("9999-12", "no usage yet"), ("1999-12", "from January 2000"),
    ("0000-00", "for example"),
])
def test_a_bad_month_is_refused_with_a_message(value, message):
    with pytest.raises(Invalid) as error:
        parse_month(value, today=TODAY)
    assert error.value.field == "month" and message in error.value.message


def test_good_months(session):
    assert parse_month(None, today=TODAY) == parse_month(" ", today=TODAY) == date(2026, 6, 1)
    assert parse_month("2026-06", today=TODAY) == date(2026, 6, 1)
    assert parse_month("2000-01", today=TODAY) == date(2000, 1, 1)
    assert World(session).usage(month="2000-01").previous_month is None


def test_the_list_is_paginated(session):
    w = World(session)
    for n in range(PER_PAGE + 10):
        w.entry(date(2026, 6, 1 + n % 19), "0.25")
    first = w.usage()
    assert (first.page, first.pages, len(first.rows), first.unbilled_count) == (1, 2, PER_PAGE, PER_PAGE + 10)
    assert len(w.usage(page=2).rows) == 10
    assert w.usage(page=10**12).page == 2 and w.usage(page=-3).page == 1 and w.usage(page=None).page == 1
    both = first.rows + w.usage(page=2).rows
    assert [(r.work_date, r.entry_id) for r in both] == sorted((r.work_date, r.entry_id) for r in both)
    assert len({r.entry_id for r in both}) == PER_PAGE + 10


def test_a_fixed_number_of_queries_whatever_the_number_of_entries(session):
    def queries(count):
        w = World(session)
        for n in range(count):
            w.entry(date(2026, 6, 1 + n % 19), "0.50", ticket=w.new_ticket() if n % 3 else None)
            if n % 4 == 0:
                w.entry(date(2026, 6, 1 + n % 19), "1.00", project=w.project)
        who = principal(session, w.contact)
        return count_queries(session, lambda: contract_usage(session, who, today=TODAY))

    # contracts, the month's sums, its work not yet invoiced, the page of it, the other months
    assert queries(3) == queries(60) == 5


def test_only_contacts_have_contract_usage(session):
    staff = f.make_staff(session, role="admin")
    with pytest.raises(Forbidden):
        contract_usage(session, principal(session, staff), today=TODAY)


def test_the_bar_never_draws_pending_hours_twice(session):
    w = World(session)
    w.entry(date(2026, 6, 2), "2.00")
    w.entry(date(2026, 6, 3), "3.00", status="pending")
    usage = w.usage()
    parts = {part: (start, width) for part, start, width in usage.bar}
    assert set(parts) == {"approved", "pending", "left"}
    assert sum(width for _, width in parts.values()) <= 100
    assert parts["left"][0] == parts["pending"][0] + parts["pending"][1]


# --- who sees what (policy.usage_view) -------------------------------------------------------

PERSONAS = {  # flags -> (sees money, the entries listed)
    "plain contact": ({}, False, {"own"}),
    "billing contact": ({"is_billing_contact": True}, True, {"own"}),
    "sponsor": ({"can_approve_projects": True}, False, {"own", "project"}),
    "primary contact": ({"is_primary_contact": True}, True, {"own", "colleague", "project"}),
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_contact_sees_the_hours_and_only_what_its_flags_allow(session, persona):
    flags, money, listed = PERSONAS[persona]
    w = World(session)
    me = f.make_contact_login(session, customer=w.customer, **flags)
    colleague = f.make_contact_login(session, customer=w.customer)

    def ticket_of(contact, title):
        return f.make_ticket(session, customer=w.customer, contract_id=w.contract.contract_id,
                             contact_id=contact.contact_id, title=title)

    entries = {"own": w.entry(date(2026, 6, 2), "3.00", ticket=ticket_of(me, "My printer")),
               "colleague": w.entry(date(2026, 6, 3), "4.00", ticket=ticket_of(colleague, "Colleague's laptop")),
               "project": w.entry(date(2026, 6, 4), "6.00", project=w.project)}
    w.entry(date(2026, 6, 5), "1.00", status="pending", ticket=ticket_of(colleague, "Colleague's phone"))
    who = principal(session, me)

    usage = contract_usage(session, who, today=TODAY)
    assert (usage.included, usage.approved, usage.pending, usage.left, usage.over) == (
        D(10), D("7.00"), D("1.00"), D("3.00"), D(0))  # the hours: the same for everyone
    assert (usage.unbilled_count, usage.unbilled_hours) == (3, D("13.00"))
    assert {r.entry_id for r in usage.rows} == {entries[name].entry_id for name in listed}
    assert usage.listed_count == len(listed) and usage.lists_everything == (persona == "primary contact")
    if money:
        assert usage.estimate == D("600.00")  # the 7 support hours are included; 6 project hours at $100
        assert (usage.contract.monthly_fee, usage.contract.hourly_rate_additional) == (D("1000.00"), D("150.00"))
        assert all(r.estimate is not None for r in usage.rows)
    else:
        assert usage.estimate is None
        assert (usage.contract.monthly_fee, usage.contract.hourly_rate_additional) == (None, None)
        assert all(r.estimate is None for r in usage.rows)
    assert count_queries(session, lambda: contract_usage(session, who, today=TODAY)) == 5


def test_the_listing_condition_is_in_the_query(session):
    """A plain contact's page of entries is asked for with the condition in its SQL, not filtered after loading."""
    from sqlalchemy import event

    w = World(session)
    me = f.make_contact_login(session, customer=w.customer)
    mine = f.make_ticket(session, customer=w.customer, contract_id=w.contract.contract_id, contact_id=me.contact_id)
    w.entry(date(2026, 6, 2), "1.00", ticket=mine)
    w.entry(date(2026, 6, 3), "1.00")  # the primary contact's ticket
    statements = []
    engine = session.get_bind().engine
    listener = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        usage = contract_usage(session, principal(session, me), today=TODAY)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    [page_query] = [s for s in statements if "ticket_number" in s]
    assert "support_tickets.contact_id = " in page_query and "LIMIT" in page_query
    assert [r.ticket_id for r in usage.rows] == [mine.ticket_id] and usage.unbilled_count == 2
