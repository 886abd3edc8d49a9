"""Business hours in the SLA clock (services/sla.py): covered time, holidays, pauses, daylight saving,
24x7 unchanged, and the SQL twin the contact guard uses agreeing with Python to the microsecond."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from portal.models import Account, Holiday, TicketCategory, TicketStatus
from portal.services import auth, tickets
from portal.services.sla import TWENTY_FOUR_SEVEN, Coverage, add_covered, compute_sla, covered_between, refresh_sla
from tests import factories as f

S = TicketStatus
DENVER = ZoneInfo("America/Denver")
H = timedelta(hours=1)
WEEKDAYS = frozenset({1, 2, 3, 4, 5})


def denver(y, m, d, hh, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=DENVER)


def eight_to_six(*holidays: date) -> Coverage:
    return Coverage(WEEKDAYS, time(8), time(18), DENVER, frozenset(holidays))


def test_friday_1730_plus_4_hours_on_8x5_is_due_monday_1130():
    start = denver(2026, 6, 5, 17, 30)  # a Friday
    assert add_covered(start, 4 * H, eight_to_six()) == denver(2026, 6, 8, 11, 30)
    c = compute_sla(created_at=start, status=S.OPEN, first_response_at=None, response_hours=4,
                    resolution_hours=20, changes=[(start, S.OPEN)], coverage=eight_to_six())
    assert c.response_due_at == denver(2026, 6, 8, 11, 30)
    # Resolution: 0.5 h on Friday, 10 h Monday, 9.5 h Tuesday.
    assert c.resolution_due_at == denver(2026, 6, 9, 17, 30)
    assert c.sla_due_at == c.response_due_at
    assert c.sla_at_risk_at == denver(2026, 6, 8, 10, 30)  # 3 of the 4 covered hours used


def test_opened_outside_hours_starts_counting_at_the_next_opening():
    assert add_covered(denver(2026, 6, 6, 12), 1 * H, eight_to_six()) == denver(2026, 6, 8, 9)  # Saturday
    assert add_covered(denver(2026, 6, 8, 6), 1 * H, eight_to_six()) == denver(2026, 6, 8, 9)  # before 08:00
    assert add_covered(denver(2026, 6, 8, 18), 1 * H, eight_to_six()) == denver(2026, 6, 9, 9)  # at closing


def test_holidays_are_skipped():
    start = denver(2026, 6, 5, 17, 30)
    assert add_covered(start, 4 * H, eight_to_six(date(2026, 6, 8))) == denver(2026, 6, 9, 11, 30)
    # Two holidays in a row, then the weekend.
    assert add_covered(denver(2026, 12, 23, 17), 2 * H,
                       eight_to_six(date(2026, 12, 24), date(2026, 12, 25))) == denver(2026, 12, 28, 9)
    assert covered_between(denver(2026, 6, 5, 8), denver(2026, 6, 9, 8), eight_to_six(date(2026, 6, 8))) == 10 * H


def test_a_wait_on_the_customer_pauses_the_covered_clock():
    created = denver(2026, 6, 8, 9)  # Monday
    log = [(created, S.OPEN), (created + H, S.IN_PROGRESS),
           (denver(2026, 6, 8, 10), S.WAITING_CUSTOMER), (denver(2026, 6, 9, 9), S.IN_PROGRESS)]
    c = compute_sla(created_at=created, status=S.IN_PROGRESS, first_response_at=created + H, response_hours=4,
                    resolution_hours=16, changes=log, coverage=eight_to_six())
    # 16 h + the pause's covered 9 h (Mon 10-18, Tue 8-9) = 25 h: Mon 9 h, Tue 10 h, Wed 6 h.
    assert c.resolution_due_at == denver(2026, 6, 10, 14)
    # The night in the pause counted nothing: the wall-clock wait was 23 h.
    assert c.sla_due_at == c.resolution_due_at


def test_daylight_saving_ends_on_the_weekend():
    # Denver leaves daylight saving on Sunday 1 November 2026: Friday is UTC-6, Monday UTC-7.
    start = denver(2026, 10, 30, 17, 30)
    due = add_covered(start, 4 * H, eight_to_six())
    assert due == denver(2026, 11, 2, 11, 30)
    assert due.astimezone(UTC) == datetime(2026, 11, 2, 18, 30, tzinfo=UTC)
    # A covered day is ten real hours on both sides of the change.
    assert covered_between(denver(2026, 3, 9, 0), denver(2026, 3, 10, 0), eight_to_six()) == 10 * H
    assert covered_between(denver(2026, 11, 2, 0), denver(2026, 11, 3, 0), eight_to_six()) == 10 * H


def test_daylight_saving_starts_on_the_weekend():
    start = denver(2026, 3, 6, 17, 30)  # Friday, UTC-7; Monday 9 March is UTC-6
    assert add_covered(start, 4 * H, eight_to_six()).astimezone(UTC) == datetime(2026, 3, 9, 17, 30, tzinfo=UTC)


def test_24x7_is_unchanged_real_hours_across_daylight_saving():
    start = denver(2026, 10, 31, 22)
    assert add_covered(start, 4 * H, TWENTY_FOUR_SEVEN) == start.astimezone(UTC) + 4 * H
    assert add_covered(start, 4 * H, TWENTY_FOUR_SEVEN).astimezone(DENVER).hour == 1  # 3 wall-clock hours later
    created = datetime(2026, 6, 1, 9, tzinfo=UTC)
    log = [(created, S.OPEN), (created + 2 * H, S.WAITING_CUSTOMER), (created + 5 * H, S.IN_PROGRESS)]
    c = compute_sla(created_at=created, status=S.IN_PROGRESS, first_response_at=created + H, response_hours=4,
                    resolution_hours=24, changes=log)
    assert c.response_due_at == created + 4 * H
    assert c.resolution_due_at == created + 27 * H
    assert c.sla_at_risk_at == c.resolution_due_at - 6 * H


def test_coverage_describes_itself():
    assert TWENTY_FOUR_SEVEN.describe() == "24x7"
    assert eight_to_six().describe() == "Mon-Fri 08:00-18:00 America/Denver"


# --- in the database -------------------------------------------------------------------------------

@pytest.fixture
def eight_by_five(session):
    customer = f.make_customer(session, timezone="America/Denver")
    contract = f.make_contract(session, customer, response_time_hours=4, resolution_time_hours=20,
                               coverage_days=[1, 2, 3, 4, 5], coverage_start=time(8), coverage_end=time(18))
    session.add(Holiday(day=date(2026, 6, 15), name="Test holiday"))
    session.flush()
    return customer, contract


def test_a_ticket_opened_friday_evening_in_the_service(session, eight_by_five):
    customer, contract = eight_by_five
    contact = f.make_contact(session, customer)
    staff = f.make_staff(session, role="admin")
    account = session.scalar(sa.select(Account).where(Account.email == staff.email))
    ticket = tickets.open_ticket(session, auth.principal_for(session, account.account_id),
                                 tickets.NewTicket(title="Printer", description="Jammed", category=TicketCategory.HARDWARE,
                                                   customer_id=customer.customer_id, contact_id=contact.contact_id),
                                 now=denver(2026, 6, 5, 17, 30))
    assert ticket.contract_id == contract.contract_id
    assert ticket.response_due_at == denver(2026, 6, 8, 11, 30)
    # Friday 12 June 17:30: Monday the 15th is the holiday.
    ticket.created_at = denver(2026, 6, 12, 17, 30)
    refresh_sla(session, ticket)
    assert ticket.response_due_at == denver(2026, 6, 16, 11, 30)


def test_the_sql_twin_agrees_with_python(session, eight_by_five):
    """sla_covered_end / sla_covered_seconds (the contact guard's) give Python's answers exactly."""
    _, contract = eight_by_five
    coverage = eight_to_six(date(2026, 6, 15))
    rng = random.Random(20)
    base = datetime(2026, 2, 20, tzinfo=UTC)
    for _ in range(60):
        start = base + timedelta(minutes=rng.randrange(0, 60 * 24 * 300), microseconds=rng.randrange(10 ** 6))
        seconds = rng.choice([0, 900, 3600, 4 * 3600, 27000, 20 * 3600, 72 * 3600]) + rng.randrange(0, 3) * 0.25
        end = start + timedelta(hours=rng.randrange(0, 200), minutes=rng.randrange(60))
        sql_end, sql_seconds = session.execute(
            sa.text("SELECT sla_covered_end(CAST(:k AS integer), :s, CAST(:n AS numeric)),"
                    " sla_covered_seconds(CAST(:k AS integer), :s, :e)"),
            {"k": contract.contract_id, "s": start, "n": seconds, "e": end}).one()
        assert sql_end == add_covered(start, timedelta(seconds=seconds), coverage), (start, seconds)
        assert timedelta(seconds=float(sql_seconds)) == covered_between(start, end, coverage), (start, end)


def test_a_time_zone_must_be_a_real_one(session):
    nested = session.begin_nested()
    with pytest.raises(sa.exc.IntegrityError, match="chk_customer_time_zone"):
        f.make_customer(session, timezone="Mars/Olympus_Mons")
    nested.rollback()


def test_coverage_needs_a_window(session):
    customer = f.make_customer(session)
    for bad in ({"coverage_days": [1, 2], "coverage_start": time(18), "coverage_end": time(8)},
                {"coverage_days": [1, 8], "coverage_start": time(8), "coverage_end": time(18)},
                {"coverage_days": [1], "coverage_start": None, "coverage_end": time(18)}):
        nested = session.begin_nested()
        with pytest.raises(sa.exc.IntegrityError, match="chk_contract_coverage"):
            f.make_contract(session, customer, **bad)
        nested.rollback()


def test_a_contacts_reply_on_a_business_hours_ticket_passes_the_database_guard(session, eight_by_five):
    """The guard recomputes the deadlines a contact's transaction writes, in covered time: the service's pass."""
    from portal.models import TicketStatusChange
    from tests.test_row_level_security import as_contact_of

    customer, contract = eight_by_five
    contact = f.make_contact_login(session, customer)
    created = denver(2026, 6, 5, 17, 30)
    ticket = f.make_ticket(session, customer, contact_id=contact.contact_id, contract_id=contract.contract_id,
                           status="waiting_customer", created_at=created, first_response_at=created + H)
    for at, to in ((created, S.OPEN), (denver(2026, 6, 8, 9), S.WAITING_CUSTOMER)):
        session.add(TicketStatusChange(ticket_id=ticket.ticket_id, to_status=to, changed_at=at, actor_type="employee"))
    session.flush()
    refresh_sla(session, ticket)
    session.flush()
    account = session.scalar(sa.select(Account).where(Account.email == contact.email))
    principal = auth.principal_for(session, account.account_id)
    with as_contact_of(session, customer.customer_id, contact.contact_id):
        tickets.add_comment(session, principal, ticket, "Here is the log you asked for.", now=denver(2026, 6, 9, 9))
        session.flush()
    assert ticket.status == S.IN_PROGRESS
    # 20 h + the pause's covered 10 h (Mon 9-18, Tue 8-9) from Friday 17:30: Fri 0.5, Mon 10, Tue 10, Wed 9.5.
    assert ticket.resolution_due_at == denver(2026, 6, 10, 17, 30)
    with as_contact_of(session, customer.customer_id, contact.contact_id):
        nested = session.begin_nested()
        with pytest.raises(sa.exc.DBAPIError, match="SLA deadlines are computed"):
            session.execute(sa.text("UPDATE support_tickets SET sla_due_at = sla_due_at + interval '1 day'"
                                    " WHERE ticket_id = :t"), {"t": ticket.ticket_id})
        nested.rollback()
