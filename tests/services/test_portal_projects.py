"""Projects for the customer: what sponsors and primary contacts see, and a sponsor's decision on a phase
(approve, or reject with a reason), which the project manager then acts on."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from portal.models import Account, AuditEvent, Project, ProjectPhase
from portal.services import auth, policy
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound
from portal.services.projects import (
    add_phase,
    change_phase_status,
    customer_approval_state,
    customer_project,
    customer_projects,
    decide_phase,
    project_manager_address,
    request_phase_approval,
)
from portal.services.tenancy import apply_contact_scope, clear_contact_scope
from tests import commands
from tests import factories as f

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def principal(session, person):
    account = session.scalar(sa.select(Account).where(Account.email == person.email))
    return auth.principal_for(session, account.account_id)


class World:
    """A customer with a sponsor, a project managed by a project manager and two phases sent for approval."""

    def __init__(self, session, **customer):
        self.session = session
        self.customer = f.make_customer(session, **customer)
        self.pm = f.make_staff(session, role="project_manager", first_name="Carla", last_name="Mendez")
        self.sponsor = f.make_contact_login(session, customer=self.customer, can_approve_projects=True,
                                            first_name="Ann", last_name="Sponsor")
        self.project = f.make_project(session, customer=self.customer, project_manager_id=self.pm.employee_id,
                                      project_name="Office move", budget_amount=D("20000.00"))
        self.design = self.phase("Design", "4000")
        self.build = self.phase("Build", "8000")

    def phase(self, name, budget, *, requires_approval=True, ask=True):
        pm = principal(self.session, self.pm)
        phase = add_phase(self.session, pm, self.project, commands.phase_plan(
            phase_name=name, budget_allocation=budget, start_date="2026-02-01", end_date="2026-03-01",
            deliverables=f"{name} deliverables", requires_approval=requires_approval))
        if ask:
            request_phase_approval(self.session, pm, phase, now=NOW - timedelta(days=1))
        return phase

    def as_sponsor(self):
        return principal(self.session, self.sponsor)

    def as_pm(self):
        return principal(self.session, self.pm)


@pytest.fixture
def world(session):
    return World(session)


def audit_actions(session, phase):
    return session.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.table_name == "project_phases", AuditEvent.row_id == phase.phase_id)
        .order_by(AuditEvent.event_id)).all()


# --- deciding ----------------------------------------------------------------------------------

def test_a_sponsor_approves_a_phase(session, world):
    decision = decide_phase(session, world.as_sponsor().at("203.0.113.7"), world.design.phase_id, approve=True,
                            reason=None, now=NOW)
    assert decision.approved and decision.decided_by == "Ann Sponsor" and decision.project.project_name == "Office move"
    phase = session.get(ProjectPhase, world.design.phase_id)
    assert phase.approved_at == NOW and phase.approved_by_contact_id == world.sponsor.contact_id
    assert phase.rejected_at is None and customer_approval_state(phase) == "approved"
    assert audit_actions(session, phase)[-1] == "phase.approved"
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "phase.approved",
                                                        AuditEvent.row_id == phase.phase_id)).one()
    assert event.actor_type == "contact" and event.actor_id == world.sponsor.contact_id
    assert str(event.ip_address) == "203.0.113.7"


def test_a_sponsor_rejects_a_phase_saying_why(session, world):
    decision = decide_phase(session, world.as_sponsor(), world.build, approve=False,
                            reason="  Too expensive: split the cabling into its own phase.\n", now=NOW)
    assert not decision.approved and decision.reason == "Too expensive: split the cabling into its own phase."
    phase = session.get(ProjectPhase, world.build.phase_id)
    assert phase.rejected_at == NOW and phase.rejected_by_contact_id == world.sponsor.contact_id
    assert phase.rejection_reason == decision.reason and phase.approved_at is None
    assert customer_approval_state(phase) == "rejected"
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "phase.rejected",
                                                        AuditEvent.row_id == phase.phase_id)).one()
    assert event.changes["rejection_reason"]["new"] == decision.reason


@pytest.mark.parametrize("reason, message", [
    (None, "Say why you reject the phase"), ("   \n ", "Say why you reject the phase"),
    ("x" * 2001, "at most 2,000 characters"),
])
def test_a_rejection_needs_a_reason_of_sensible_length(session, world, reason, message):
    with pytest.raises(Invalid, match=message) as refused:
        decide_phase(session, world.as_sponsor(), world.build.phase_id, approve=False, reason=reason, now=NOW)
    assert refused.value.field == "reason" and "reason" in refused.value.errors
    phase = session.get(ProjectPhase, world.build.phase_id)
    assert phase.rejected_at is None and "phase.rejected" not in audit_actions(session, phase)


def test_a_reason_of_exactly_2000_characters_is_fine(session, world):
    decision = decide_phase(session, world.as_sponsor(), world.build.phase_id, approve=False, reason="y" * 2000,
                            now=NOW)
    assert len(decision.reason) == 2000


def test_a_decided_phase_cannot_be_decided_again(session, world):
    colleague = f.make_contact_login(session, customer=world.customer, can_approve_projects=True,
                                     first_name="Bo", last_name="Other")
    decide_phase(session, world.as_sponsor(), world.design.phase_id, approve=True, reason=None, now=NOW)
    with pytest.raises(Conflict, match="Ann Sponsor approved this phase on 25 Nov 2026"):
        decide_phase(session, principal(session, colleague), world.design.phase_id, approve=False,
                     reason="No.", now=NOW + timedelta(minutes=1))
    with pytest.raises(Conflict, match="You approved this phase on 25 Nov 2026"):
        decide_phase(session, world.as_sponsor(), world.design.phase_id, approve=True, reason=None, now=NOW)

    decide_phase(session, principal(session, colleague), world.build.phase_id, approve=False, reason="Later.",
                 now=NOW)
    with pytest.raises(Conflict, match="Bo Other rejected this phase on 25 Nov 2026"):
        decide_phase(session, world.as_sponsor(), world.build.phase_id, approve=True, reason=None, now=NOW)
    assert audit_actions(session, world.design).count("phase.approved") == 1


def test_the_row_is_read_again_under_a_lock_not_trusted_from_the_caller(session, world):
    """A phase object loaded before another sponsor decided is not what decides: the locked row is."""
    stale = session.get(ProjectPhase, world.design.phase_id)
    statements = []
    engine = session.get_bind().engine
    listener = lambda conn, cursor, statement, *a: statements.append(statement)  # noqa: E731
    session.execute(sa.update(ProjectPhase).where(ProjectPhase.phase_id == stale.phase_id)
                    .values(rejected_at=NOW, rejection_reason="Changed my mind",
                            rejected_by_contact_id=world.sponsor.contact_id)
                    .execution_options(synchronize_session=False))
    assert stale.rejected_at is None  # the caller's copy is out of date
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        with pytest.raises(Conflict, match="You rejected this phase"):
            decide_phase(session, world.as_sponsor(), stale, approve=True, reason=None, now=NOW)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert any("FOR UPDATE OF project_phases" in s for s in statements)


def test_only_sponsors_decide(session, world):
    primary = f.make_contact_login(session, customer=world.customer, is_primary_contact=True)
    with pytest.raises(Forbidden, match="project sponsors"):
        decide_phase(session, principal(session, primary), world.design.phase_id, approve=True, reason=None, now=NOW)
    with pytest.raises(Forbidden):
        decide_phase(session, world.as_pm(), world.design.phase_id, approve=True, reason=None, now=NOW)
    assert session.get(ProjectPhase, world.design.phase_id).approved_at is None


def test_a_sponsor_of_a_suspended_customer_cannot_decide(session):
    world = World(session, account_status="suspended")
    sponsor = world.as_sponsor()
    assert sponsor.read_only
    with pytest.raises(Forbidden, match="suspended"):
        decide_phase(session, sponsor, world.design.phase_id, approve=True, reason=None, now=NOW)


def test_another_customers_phase_is_not_found(session, world):
    other = World(session)
    with pytest.raises(NotFound):
        decide_phase(session, other.as_sponsor(), world.design.phase_id, approve=True, reason=None, now=NOW)
    with pytest.raises(NotFound):  # the right phase, the wrong project in the URL
        decide_phase(session, world.as_sponsor(), world.design.phase_id, approve=True, reason=None, now=NOW,
                     project_id=other.project.project_id)
    with pytest.raises(NotFound):
        decide_phase(session, world.as_sponsor(), 2**31 - 1, approve=True, reason=None, now=NOW)
    assert session.get(ProjectPhase, world.design.phase_id).approved_at is None


def test_only_a_phase_sent_for_approval_and_still_planned_can_be_decided(session, world):
    sponsor = world.as_sponsor()
    free = world.phase("Handover", "500", requires_approval=False, ask=False)
    with pytest.raises(Invalid, match="does not need your approval"):
        decide_phase(session, sponsor, free.phase_id, approve=True, reason=None, now=NOW)
    unasked = world.phase("Training", "500", ask=False)
    assert customer_approval_state(unasked) == "not_requested"
    with pytest.raises(Invalid, match="has not asked for your approval"):
        decide_phase(session, sponsor, unasked.phase_id, approve=True, reason=None, now=NOW)
    change_phase_status(session, world.as_pm(), world.build, "cancelled")
    assert customer_approval_state(world.build) is None
    with pytest.raises(Invalid, match="This phase is cancelled"):
        decide_phase(session, sponsor, world.build.phase_id, approve=False, reason="No", now=NOW)


def test_the_manager_starts_an_approved_phase_and_not_a_rejected_one(session, world):
    sponsor = world.as_sponsor()
    decide_phase(session, sponsor, world.design.phase_id, approve=True, reason=None, now=NOW)
    decide_phase(session, sponsor, world.build.phase_id, approve=False, reason="Wait for the lease.", now=NOW)
    pm = world.as_pm()
    assert change_phase_status(session, pm, world.design, "active").phase_status == "active"
    with pytest.raises(Invalid, match="waits for the customer's approval"):
        change_phase_status(session, pm, world.build, "active")
    # Asked again, the sponsor may decide anew: the rejection is cleared.
    request_phase_approval(session, pm, world.build, now=NOW + timedelta(days=1))
    assert customer_approval_state(world.build) == "awaiting"
    decide_phase(session, sponsor, world.build.phase_id, approve=True, reason=None, now=NOW + timedelta(days=2))
    assert change_phase_status(session, pm, world.build, "active").phase_status == "active"


def test_the_decision_carries_what_the_project_managers_mail_needs(session, world):
    decision = decide_phase(session, world.as_sponsor(), world.design.phase_id, approve=True, reason=None, now=NOW)
    assert project_manager_address(session, decision.project) == ("Carla Mendez", world.pm.email)
    assert decision.company_name == world.customer.company_name and decision.decided_at == NOW
    unmanaged = f.make_project(session, customer=world.customer)
    assert project_manager_address(session, unmanaged) is None


# --- under row-level security, as the contact's requests run ------------------------------------

def test_a_sponsor_decides_under_row_level_security(session, world):
    """The contact's role has the grants and policies a decision needs (update, lock, audit)."""
    sponsor = world.as_sponsor()
    apply_contact_scope(session, world.customer.customer_id, world.sponsor.contact_id)
    try:
        approved = decide_phase(session, sponsor, world.design.phase_id, approve=True, reason=None, now=NOW)
        rejected = decide_phase(session, sponsor, world.build.phase_id, approve=False, reason="Over budget",
                                now=NOW)
        assert session.execute(sa.text("SELECT current_user")).scalar_one() == "portal_contact"
        # The manager's address is read for the mail only; the contact's scope holds before and after.
        assert project_manager_address(session, approved.project) == ("Carla Mendez", world.pm.email)
        assert session.execute(sa.text("SELECT current_user")).scalar_one() == "portal_contact"
        nested = session.begin_nested()
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            session.execute(sa.text("SELECT email FROM employees"))
        nested.rollback()
        view = customer_project(session, sponsor, world.project.project_id)
        assert {p.phase.phase_id: p.approval for p in view.phases} == {
            world.design.phase_id: "approved", world.build.phase_id: "rejected"}
        assert view.manager_name == "Carla Mendez"
    finally:
        clear_contact_scope(session)
    assert rejected.phase.rejection_reason == "Over budget"
    assert audit_actions(session, world.design)[-1] == "phase.approved"
    assert audit_actions(session, world.build)[-1] == "phase.rejected"


def test_row_level_security_refuses_deciding_for_a_colleague_or_another_customer(session, world):
    """The second line of defence, should a query forget its filter."""
    other = World(session)
    colleague = f.make_contact(session, customer=world.customer, can_approve_projects=True)
    apply_contact_scope(session, world.customer.customer_id, world.sponsor.contact_id)
    try:
        changed = session.execute(sa.text("UPDATE project_phases SET approved_at = now() WHERE phase_id = :p"),
                                  {"p": other.design.phase_id}).rowcount
        assert changed == 0
        nested = session.begin_nested()
        with pytest.raises(sa.exc.ProgrammingError, match="row-level security|by the sponsor who makes it"):
            session.execute(sa.text("UPDATE project_phases SET approved_at = now(), approved_by_contact_id = :c"
                                    " WHERE phase_id = :p"), {"c": colleague.contact_id, "p": world.design.phase_id})
        nested.rollback()
    finally:
        clear_contact_scope(session)


# --- what the customer sees ---------------------------------------------------------------------

def test_sponsors_and_primary_contacts_see_their_companys_projects_only(session, world):
    other = World(session)
    listing = customer_projects(session, world.as_sponsor(), 1)
    assert [r.project.project_id for r in listing.rows] == [world.project.project_id]
    assert listing.awaiting == 2 and listing.rows[0].awaiting == 2 and listing.total == 1
    assert [p.phase.phase_name for p in listing.rows[0].phases] == ["Design", "Build"]
    primary = f.make_contact_login(session, customer=world.customer, is_primary_contact=True)
    assert customer_projects(session, principal(session, primary), 1).total == 1
    with pytest.raises(NotFound):
        customer_project(session, world.as_sponsor(), other.project.project_id)
    for person in (f.make_contact_login(session, customer=world.customer, is_billing_contact=True), world.pm):
        with pytest.raises(Forbidden):
            customer_projects(session, principal(session, person), 1)
        with pytest.raises(Forbidden):
            customer_project(session, principal(session, person), world.project.project_id)


def test_open_projects_come_first_and_cancelled_ones_last(session, world):
    customer = world.customer
    for name, status in [("Done", "completed"), ("Dropped", "cancelled"), ("Paused", "on_hold"),
                         ("Running", "active")]:
        f.make_project(session, customer=customer, project_name=name, project_status=status)
    names = [r.project.project_name for r in customer_projects(session, world.as_sponsor(), 1).rows]
    assert names == ["Running", "Office move", "Paused", "Done", "Dropped"]


def test_projects_come_twenty_a_page(session, world):
    for n in range(44):
        f.make_project(session, customer=world.customer, project_name=f"P{n:02d}",
                       start_date=date(2025, 1, 1) + timedelta(days=n))
    sponsor = world.as_sponsor()
    first, last = customer_projects(session, sponsor, 1), customer_projects(session, sponsor, 3)
    assert (first.total, first.pages, len(first.rows), len(last.rows)) == (45, 3, 20, 5)
    assert customer_projects(session, sponsor, 99).page == 3 and customer_projects(session, sponsor, -4).page == 1
    assert first.awaiting == 2  # over every page, not just this one


def test_the_project_page_reads_the_manager_by_name_only(session, world):
    view = customer_project(session, world.as_sponsor(), world.project.project_id)
    assert view.manager_name == "Carla Mendez" and view.awaiting == 2 and view.budget_used == 0
    session.execute(sa.update(Project).where(Project.project_id == world.project.project_id)
                    .values(actual_cost=D("5000.00")))
    assert customer_project(session, world.as_sponsor(), world.project.project_id).budget_used == 25


# --- two sponsors at the same moment -------------------------------------------------------------

def test_two_sponsors_deciding_at_once_cannot_both_win(pg, app):
    """Real concurrent transactions on a database of their own: the row lock makes the second wait, then refuse."""
    from tests.test_migrations import migrate_database

    name = pg.create_database("techserv_phase_race")
    engine = sa.create_engine(pg.url_for(name))
    try:
        migrate_database(pg, name)
        with orm.Session(engine) as setup:
            world = World(setup)
            second = f.make_contact_login(setup, customer=world.customer, can_approve_projects=True,
                                          first_name="Bo", last_name="Other")
            sponsors = [world.as_sponsor(), principal(setup, second)]
            phase_id, customer_id = world.design.phase_id, world.customer.customer_id
            setup.commit()

        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def decide(who: policy.Principal, approve: bool) -> None:
            with orm.Session(engine) as s:
                apply_contact_scope(s, customer_id, who.contact_id)
                barrier.wait()
                try:
                    decide_phase(s, who, phase_id, approve=approve, reason="Not now", now=datetime.now(UTC))
                    time.sleep(0.3)  # hold the lock while the other tries
                    s.commit()
                    outcomes[who.name] = "won"
                except Conflict as refused:
                    s.rollback()
                    outcomes[who.name] = refused.message

        threads = [threading.Thread(target=decide, args=(who, approve))
                   for who, approve in zip(sponsors, (True, False))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(outcomes) == 2 and list(outcomes.values()).count("won") == 1, outcomes
        winner = next(n for n, o in outcomes.items() if o == "won")
        loser_message = next(o for o in outcomes.values() if o != "won")
        assert loser_message.startswith(f"{winner} ")
        with orm.Session(engine) as s:
            phase = s.get(ProjectPhase, phase_id)
            assert (phase.approved_at is None) != (phase.rejected_at is None)  # exactly one decision
            decisions = s.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
                AuditEvent.action.in_(["phase.approved", "phase.rejected"])))
            assert decisions == 1
    finally:
        engine.dispose()
        pg.drop_database(name)


@pytest.mark.parametrize("status", ["cancelled", "completed"])
def test_phases_of_a_cancelled_or_completed_project_are_decided_by_nobody(session, world, status):
    world.project.project_status = status
    if status == "completed":
        world.project.actual_end_date = world.project.planned_end_date
    session.flush()
    with pytest.raises(Invalid, match=f"This project is {status}"):
        decide_phase(session, world.as_sponsor(), world.design.phase_id, approve=True, reason=None, now=NOW)
    view = customer_project(session, world.as_sponsor(), world.project.project_id)
    assert [p.approval for p in view.phases] == [None, None]
    assert customer_projects(session, world.as_sponsor()).awaiting == 0


def test_the_services_queue_the_emails_the_worker_sends(session, world, outbox):
    outbox.settle()
    outbox.clear()  # the world's own requests for approval
    world.phase("Handover", "1000")  # asks the sponsors
    [asked] = outbox
    assert asked.to == world.sponsor.email and "Handover" in asked.subject
    decision = decide_phase(session, world.as_sponsor(), world.design.phase_id, approve=False, reason="Too early",
                            now=NOW)
    told = outbox[-1]
    assert decision.manager_told and told.to == world.pm.email and "Too early" in told.body
