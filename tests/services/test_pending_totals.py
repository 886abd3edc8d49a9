"""pending_time_totals: the pending time per author and project, kept by triggers (migration 0025), and
the approvals' totals read from it agreeing with the entries themselves for every role."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import Account, PendingTimeTotal
from portal.models.time_entries import PENDING_TIME_TOTALS
from portal.services import auth
from portal.services.timesheets import ApprovalFilters, decide, pending_approvals
from tests import factories as f


def kept(session):
    return {(r.employee_id, r.project_id): (r.entries, r.hours, r.value)
            for r in session.scalars(sa.select(PendingTimeTotal))}


def truth(session):
    return {(r.employee_id, r.project_id): (r.entries, r.hours, r.value)
            for r in session.execute(sa.text(PENDING_TIME_TOTALS))}


def principal(session, person):
    account = session.scalar(sa.select(Account).where(Account.email == person.email))
    return auth.principal_for(session, account.account_id)


@pytest.fixture
def work(session):
    """Two authors' pending and approved time on tickets and on two projects of two managers."""
    manager, other_manager = f.make_staff(session, role="project_manager"), f.make_staff(session, role="project_manager")
    tech, senior = f.make_staff(session), f.make_staff(session, role="senior_technician")
    admin = f.make_staff(session, role="admin")
    ticket = f.make_ticket(session)
    mine = f.make_project(session, project_manager_id=manager.employee_id)
    theirs = f.make_project(session, project_manager_id=other_manager.employee_id)
    for author in (tech, senior, manager):
        for hours, rate in (("1.25", "95.00"), ("2.50", "120.50")):
            f.make_time_entry(session, employee=author, ticket=ticket, hours_worked=D(hours), billing_rate=D(rate))
            f.make_time_entry(session, employee=author, project=mine, hours_worked=D(hours), billing_rate=D(rate))
        f.make_time_entry(session, employee=author, project=theirs, hours_worked=D("3.00"))
        f.make_time_entry(session, employee=author, ticket=ticket, approval_status="approved",
                          approved_by_employee_id=admin.employee_id, hours_worked=D("7.00"))
    f.make_time_entry(session, employee=admin, ticket=ticket, hours_worked=D("0.75"))  # never one's own to decide
    return dict(manager=manager, tech=tech, senior=senior, admin=admin, ticket=ticket, mine=mine, theirs=theirs)


def test_the_totals_follow_inserts_edits_moves_decisions_and_deletes(session, work):
    assert kept(session) == truth(session) and len(kept(session)) == 10  # 3 authors x (tickets, 2 projects), admin
    session.execute(sa.text("UPDATE time_entries SET hours_worked = hours_worked / 2, billing_rate = billing_rate + 1 "
                            "WHERE employee_id = :t"), {"t": work["tech"].employee_id})
    assert kept(session) == truth(session)
    # Moved from a project to the ticket: one group loses it, the other gains it.
    session.execute(sa.text("UPDATE time_entries SET project_id = NULL, ticket_id = :k WHERE project_id = :p"),
                    {"k": work["ticket"].ticket_id, "p": work["theirs"].project_id})
    assert kept(session) == truth(session)
    assert not any(project == work["theirs"].project_id for _, project in kept(session))  # emptied groups go
    session.execute(sa.text("UPDATE time_entries SET approval_status = 'approved', approved_at = now(), "
                            "approved_by_employee_id = :a WHERE employee_id = :s"),
                    {"a": work["admin"].employee_id, "s": work["senior"].employee_id})
    assert kept(session) == truth(session)
    session.execute(sa.text("UPDATE time_entries SET approval_status = 'rejected', rejection_reason = 'Wrong ticket', "
                            "rejected_at = now(), rejected_by_employee_id = :a WHERE employee_id = :t AND project_id = :p"),
                    {"a": work["admin"].employee_id, "t": work["tech"].employee_id, "p": work["mine"].project_id})
    assert kept(session) == truth(session)
    session.execute(sa.text("UPDATE time_entries SET approval_status = 'pending', approved_at = NULL, "
                            "approved_by_employee_id = NULL WHERE employee_id = :s AND hours_worked = 7"),
                    {"s": work["senior"].employee_id})  # sent back to pending
    assert kept(session) == truth(session)
    session.execute(sa.text("DELETE FROM time_entries WHERE employee_id = :m"), {"m": work["manager"].employee_id})
    assert kept(session) == truth(session)
    assert all(entries > 0 for entries, _, _ in kept(session).values())
    session.execute(sa.text("DELETE FROM time_entries"))
    assert kept(session) == {}


def test_totals_out_of_step_with_the_entries_stop_the_change(session, work):
    """Written with triggers off and not rebuilt, the totals would go wrong silently: a group that would
    fall below nothing is an error instead."""
    session.execute(sa.text("DELETE FROM pending_time_totals WHERE employee_id = :t"), {"t": work["tech"].employee_id})
    with pytest.raises(sa.exc.DBAPIError, match="out of step"):
        with session.begin_nested():
            session.execute(sa.text("DELETE FROM time_entries WHERE employee_id = :t"), {"t": work["tech"].employee_id})


def test_the_homes_team_figure_is_the_pending_support_time_summed(session, work):
    from portal.services import clock
    from portal.services.dashboards import role_home

    home = role_home(session, principal(session, work["senior"]), clock.today(), clock.now())
    entries, hours = session.execute(sa.text(
        "SELECT count(*), sum(hours_worked) FROM time_entries WHERE approval_status = 'pending' "
        "AND ticket_id IS NOT NULL")).one()
    assert home.awaiting_approval == (entries, hours) and entries == 7


@pytest.mark.parametrize("role", ["admin", "senior_technician", "project_manager", "technician"])
def test_approvals_totals_from_the_kept_rows_equal_the_entries_summed(session, work, role):
    person = {"admin": work["admin"], "senior_technician": work["senior"], "project_manager": work["manager"],
              "technician": work["tech"]}[role]
    who = principal(session, person)
    page = pending_approvals(session, who, ApprovalFilters())
    # The same sums over the entries themselves: a filter that leaves every entry takes the entries' path.
    summed = pending_approvals(session, who, ApprovalFilters(week=date(2026, 6, 2)))  # every entry's week
    assert (page.count, page.hours, page.value) == (summed.count, summed.hours, summed.value)
    expected = {"admin": 15, "senior_technician": 5, "project_manager": 4, "technician": 0}[role]
    assert page.count == expected and len(page.entries) == expected
    assert page.hours == sum((e.hours_worked for e in page.entries), D(0))
    assert page.value == sum((e.hours_worked * e.billing_rate for e in page.entries), D(0))


def test_a_decision_moves_the_totals(session, work):
    senior = principal(session, work["senior"])
    before = pending_approvals(session, senior, ApprovalFilters())
    first = before.entries[0]
    decide(session, senior, [first.entry_id], approve=True)
    after = pending_approvals(session, senior, ApprovalFilters())
    assert after.count == before.count - 1
    assert after.hours == before.hours - first.hours_worked
    assert after.value == before.value - first.hours_worked * first.billing_rate
    assert kept(session) == truth(session)
