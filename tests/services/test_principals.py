"""Every service that changes data asks the policy itself: a principal the policy refuses is refused
by the service, whatever surface called it (a page, the API, a job). Each write service is tried
with a principal of each kind the policy says no to, including an API client without scopes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import Account, ProjectPhase
from portal.services import (
    attachments,
    auth,
    contracts,
    crm,
    invoicing,
    people,
    policy,
    projects,
    tickets,
    timesheets,
)
from portal.services.errors import Forbidden, NotFound
from tests import commands
from tests import factories as f

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
NO_SCOPES = policy.Principal.api_client(9999, "automation without scopes", set())


def _principal(session, person):
    account_id = session.scalar(sa.select(Account.account_id).where(Account.email == person.email))
    return auth.principal_for(session, account_id)


class World:
    def __init__(self, session):
        self.s = session
        self.customer = f.make_customer(session)
        self.contact = f.make_contact_login(session, customer=self.customer, can_create_tickets=False)
        self.colleague = f.make_contact_login(session, customer=self.customer)
        self.tech = f.make_staff(session)
        self.pm = f.make_staff(session, role="project_manager")
        self.account_manager = f.make_staff(session, role="account_manager")
        self.ticket = f.make_ticket(session, customer=self.customer, contact_id=self.colleague.contact_id,
                                    status="resolved", resolved_at=NOW, first_response_at=NOW,
                                    assigned_employee_id=f.make_staff(session).employee_id)
        self.project = f.make_project(session, customer=self.customer, project_manager_id=self.pm.employee_id)
        self.phase = ProjectPhase(project_id=self.project.project_id, phase_name="Rollout", budget_allocation=100,
                                  start_date=self.project.start_date, end_date=self.project.planned_end_date,
                                  requires_approval=True, approval_requested_at=NOW)
        session.add(self.phase)
        self.entry = f.make_time_entry(session, ticket=self.ticket)
        session.flush()

    def p(self, person):
        return _principal(self.s, person)


# service name -> (how to call it with a principal, the principals the policy refuses)
CASES = {
    "tickets.open_ticket": (
        lambda w, who: tickets.open_ticket(w.s, who, commands.new_ticket(
            title="x", description="y", category="hardware", customer_id=w.customer.customer_id), now=NOW),
        lambda w: [w.p(w.contact), w.p(w.pm), NO_SCOPES]),
    "tickets.change_status": (
        lambda w, who: tickets.change_status(w.s, who, w.ticket, "closed", expected_version=None, now=NOW),
        lambda w: [w.p(w.tech), w.p(w.account_manager), w.p(w.colleague), NO_SCOPES]),
    "tickets.assign": (
        lambda w, who: tickets.assign(w.s, who, w.ticket, w.tech.employee_id, expected_version=None, now=NOW),
        lambda w: [w.p(w.tech), w.p(w.pm), w.p(w.contact), NO_SCOPES]),
    "tickets.update_details": (
        lambda w, who: tickets.update_details(w.s, who, w.ticket, priority="high", expected_version=None, now=NOW),
        lambda w: [w.p(w.tech), w.p(w.pm), w.p(w.colleague), NO_SCOPES]),
    "tickets.add_comment": (
        lambda w, who: tickets.add_comment(w.s, who, w.ticket, "Hello", now=NOW),
        lambda w: [w.p(w.tech), w.p(w.account_manager), w.p(w.contact), NO_SCOPES]),
    "tickets.bulk_update": (
        lambda w, who: tickets.bulk_update(w.s, who, [w.ticket.ticket_id], "priority", "high", now=NOW),
        lambda w: [w.p(w.tech), w.p(w.pm), w.p(w.colleague), NO_SCOPES]),
    "tickets.rate_ticket": (
        lambda w, who: tickets.rate_ticket(w.s, who, w.ticket, 5, None, now=NOW),
        lambda w: [w.p(w.contact), w.p(w.tech), NO_SCOPES]),
    "tickets.close_resolved": (
        lambda w, who: tickets.close_resolved(w.s, who, now=NOW + timedelta(days=30)),
        lambda w: [w.p(w.tech), w.p(w.account_manager), w.p(w.colleague), NO_SCOPES]),
    "attachments.open_ticket_with_files": (
        lambda w, who: attachments.open_ticket_with_files(w.s, attachments.Storage("/nonexistent"), who,
                                                          commands.new_ticket(title="x", description="y",
                                                                              category="hardware"), []),
        lambda w: [w.p(w.contact), NO_SCOPES]),
    "timesheets.log_time": (
        lambda w, who: timesheets.log_time(w.s, who, commands.time_entry(
            work_date=NOW.date().isoformat(), hours="1", description="x", project_id=w.project.project_id),
            now=NOW),
        lambda w: [w.p(w.contact), NO_SCOPES]),
    "timesheets.update_entry": (
        lambda w, who: timesheets.update_entry(w.s, who, w.entry.entry_id, commands.time_entry(
            work_date=NOW.date().isoformat(), hours="1", description="x"), now=NOW),
        lambda w: [w.p(w.tech), w.p(w.contact), NO_SCOPES]),
    "timesheets.delete_entry": (
        lambda w, who: timesheets.delete_entry(w.s, who, w.entry.entry_id),
        lambda w: [w.p(w.tech), w.p(w.contact), NO_SCOPES]),
    "timesheets.decide": (
        lambda w, who: timesheets.decide(w.s, who, [w.entry.entry_id], approve=True, now=NOW),
        lambda w: [w.p(w.tech), w.p(w.pm), w.p(w.account_manager), w.p(w.contact), NO_SCOPES]),
    "projects.create_project": (
        lambda w, who: projects.create_project(w.s, who, commands.project_plan(
            project_name="P", customer_id=str(w.customer.customer_id), budget_amount="100",
            start_date="2026-12-01", planned_end_date="2026-12-31"), now=NOW),
        lambda w: [w.p(w.tech), w.p(w.account_manager), w.p(w.contact), NO_SCOPES]),
    "projects.update_project": (
        lambda w, who: projects.update_project(w.s, who, w.project, commands.project_plan(
            project_name="P", budget_amount="100", start_date=w.project.start_date.isoformat(),
            planned_end_date=w.project.planned_end_date.isoformat()), now=NOW),
        lambda w: [w.p(f.make_staff(w.s, role="project_manager")), w.p(w.tech), NO_SCOPES]),
    "projects.add_phase": (
        lambda w, who: projects.add_phase(w.s, who, w.project, commands.phase_plan(
            phase_name="Q", budget_allocation="1", start_date=w.project.start_date.isoformat(),
            end_date=w.project.start_date.isoformat())),
        lambda w: [w.p(w.tech), w.p(w.contact), NO_SCOPES]),
    "projects.update_phase": (
        lambda w, who: projects.update_phase(w.s, who, w.phase, commands.phase_plan(
            phase_name="Q", budget_allocation="1", start_date=w.project.start_date.isoformat(),
            end_date=w.project.start_date.isoformat())),
        lambda w: [w.p(w.tech), w.p(w.contact), NO_SCOPES]),
    "projects.change_phase_status": (
        lambda w, who: projects.change_phase_status(w.s, who, w.phase, "cancelled"),
        lambda w: [w.p(w.tech), w.p(w.contact), NO_SCOPES]),
    "projects.request_phase_approval": (
        lambda w, who: projects.request_phase_approval(w.s, who, w.phase, now=NOW),
        lambda w: [w.p(w.tech), w.p(w.account_manager), NO_SCOPES]),
    "projects.decide_phase": (
        lambda w, who: projects.decide_phase(w.s, who, w.phase.phase_id, approve=True, reason=None, now=NOW),
        lambda w: [w.p(w.contact), w.p(w.pm), NO_SCOPES]),
    "people.update_contact_profile": (
        lambda w, who: people.update_contact_profile(w.s, who, commands.profile(
            first_name="A", last_name="B", communication_preference="email")),
        lambda w: [w.p(w.tech), NO_SCOPES]),
    "auth.invite": (
        lambda w, who: auth.invite(w.s, who, contact_id=f.make_contact(w.s, customer=w.customer).contact_id),
        lambda w: [w.p(w.tech), w.p(w.pm), w.p(w.contact), NO_SCOPES]),
    "auth.set_two_factor_requirement": (
        lambda w, who: auth.set_two_factor_requirement(w.s, who, True),
        lambda w: [w.p(w.tech), w.p(w.account_manager), w.p(w.contact), NO_SCOPES]),
    "auth.change_password": (
        lambda w, who: auth.change_password(w.s, who, f.PASSWORD, "a brand new passphrase", now=NOW),
        lambda w: [w.p(f.make_contact_login(w.s, customer=f.make_customer(w.s, account_status="suspended"))),
                   NO_SCOPES]),
    "auth.start_two_factor": (
        lambda w, who: auth.start_two_factor(w.s, who),
        lambda w: [w.p(w.contact), NO_SCOPES]),
    "invoicing.generate_invoice": (
        lambda w, who: invoicing.generate_invoice(
            w.s, who, invoicing.InvoiceRequest(w.customer.customer_id, date(2026, 11, 1), date(2026, 11, 30)),
            invoice_date=date(2026, 12, 1), tax_rate=D("0")),
        lambda w: [w.p(w.tech), w.p(w.pm), w.p(w.contact), NO_SCOPES]),
    "invoicing.mark_overdue": (
        lambda w, who: invoicing.mark_overdue(w.s, who, today=date(2026, 12, 31)),
        lambda w: [w.p(w.tech), w.p(w.account_manager), w.p(w.contact), NO_SCOPES]),
    "contracts.notify_expiring": (
        lambda w, who: contracts.notify_expiring(w.s, who, today=date(2026, 12, 31)),
        lambda w: [w.p(w.tech), w.p(w.account_manager), w.p(w.contact), NO_SCOPES]),
}

# The CRM (customers, contacts, contracts): account managers and admins; clients with customers:write
# for customers only (no scope changes contracts).
CUSTOMERS_ONLY = policy.Principal.api_client(9998, "automation for customers", {"customers:write"})
CASES.update({
    "crm.create_customer": (
        lambda w, who: crm.create_customer(w.s, who, crm.NewCustomer(company_name="Refused Co")),
        lambda w: [w.p(w.tech), w.p(w.pm), w.p(w.contact), NO_SCOPES]),
    "crm.update_customer": (
        lambda w, who: crm.update_customer(w.s, who, w.customer, {"industry": "Refused"}),
        lambda w: [w.p(w.tech), w.p(w.contact), NO_SCOPES]),
    "crm.add_customer": (
        lambda w, who: crm.add_customer(w.s, who, crm.CustomerDetailsForm(company_name="Refused Co")),
        lambda w: [w.p(w.tech), w.p(w.pm), w.p(w.contact), NO_SCOPES]),
    "crm.add_contact": (
        lambda w, who: crm.add_contact(w.s, who, w.customer.customer_id, crm.ContactDetails(
            first_name="A", last_name="B", email="refused@example.com", communication_preference="email")),
        lambda w: [w.p(w.tech), w.p(w.contact), NO_SCOPES]),
    "crm.add_contact_from_mail": (
        lambda w, who: crm.add_contact_from_mail(w.s, who, w.customer, email="refused@example.com",
                                                 first_name="A", last_name="B"),
        lambda w: [w.p(w.tech), w.p(w.contact), NO_SCOPES]),
    "crm.update_contact": (
        lambda w, who: crm.update_contact(w.s, who, w.customer.customer_id, w.colleague.contact_id,
                                          crm.ContactDetails.of(w.colleague), expected_updated_at=None),
        lambda w: [w.p(w.tech), w.p(w.colleague), NO_SCOPES]),
    "contracts.create_contract": (
        lambda w, who: contracts.create_contract(w.s, who, w.customer.customer_id, contracts.ContractTerms()),
        lambda w: [w.p(w.tech), w.p(w.pm), w.p(w.contact), NO_SCOPES, CUSTOMERS_ONLY]),
    "contracts.update_contract": (
        lambda w, who: contracts.update_contract(w.s, who, w.customer.customer_id, f.make_contract(
            w.s, customer=w.customer).contract_id, contracts.ContractTerms(), expected_updated_at=None),
        lambda w: [w.p(w.tech), w.p(w.contact), NO_SCOPES, CUSTOMERS_ONLY]),
    "contracts.renew_contract": (
        lambda w, who: contracts.renew_contract(w.s, who, w.customer.customer_id, f.make_contract(
            w.s, customer=w.customer).contract_id, expected_updated_at=None),
        lambda w: [w.p(w.tech), w.p(w.contact), NO_SCOPES, CUSTOMERS_ONLY]),
})


@pytest.mark.parametrize("service", sorted(CASES))
def test_each_write_service_refuses_whom_the_policy_refuses(session, service):
    call, refused = CASES[service]
    world = World(session)
    for who in refused(world):
        nested = session.begin_nested()
        try:
            with pytest.raises((Forbidden, NotFound)):
                call(world, who)
        finally:
            nested.rollback()


def test_every_write_service_of_the_seam_is_in_the_table():
    """A new write service needs its row here (the services that change data, by their verbs)."""
    import inspect

    verbs = ("open_", "change_", "assign", "update_", "add_", "bulk_", "rate_", "close_", "log_", "delete_",
             "decide", "create_", "request_", "invite", "set_", "start_", "generate_", "mark_", "notify_")
    found = set()
    for module in (attachments, auth, contracts, crm, invoicing, people, projects, tickets, timesheets):
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not name.startswith("_") and name.startswith(verbs):
                parameters = list(inspect.signature(function).parameters)
                if parameters[:2] == ["session", "principal"] or parameters[1:3] == ["storage", "principal"]:
                    found.add(f"{module.__name__.rsplit('.', 1)[1]}.{name}")
    assert found - set(CASES) == set()
