"""The permission matrix: every route of the app, for anonymous visitors, each employee role and
contacts with each flag combination. A route added without its row here fails the first test."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa

from portal.models import Account, Contact, Customer, ProjectPhase
from portal.services import auth
from tests import factories as f

EMPLOYEE_ROLES = ["technician", "senior_technician", "project_manager", "account_manager", "admin"]
WORKERS = ["technician", "senior_technician", "admin"]  # work tickets; the managers read them
SENIORS = ["senior_technician", "admin"]
APPROVERS = ["senior_technician", "project_manager", "admin"]
MANAGERS = ["project_manager", "admin"]
BILLERS = ["account_manager", "admin"]  # invoices (issue 11)
CRM = ["account_manager", "admin"]  # customers, contacts, contracts
CONTACT_KINDS = {
    "contact": {},  # the seed's default: may open tickets
    "contact_read_only_flags": {"can_create_tickets": False},
    "primary": {"is_primary_contact": True},
    "billing": {"is_billing_contact": True, "can_create_tickets": False},
    "sponsor": {"can_approve_projects": True},
    "primary_billing_sponsor": {"is_primary_contact": True, "is_billing_contact": True, "can_approve_projects": True},
    "suspended_customer": {"is_primary_contact": True},
}
PERSONAS = ["anonymous", *EMPLOYEE_ROLES, *CONTACT_KINDS]
CONTACTS = list(CONTACT_KINDS)
LOGIN = "login"  # a redirect to the sign-in page


def everyone(code):
    return {persona: code for persona in PERSONAS}


def signed_in(code, anonymous=LOGIN):
    return {"anonymous": anonymous, **{p: code for p in PERSONAS if p != "anonymous"}}


def staff_only(code, roles=EMPLOYEE_ROLES):
    return {"anonymous": LOGIN, **{r: (code if r in roles else 403) for r in EMPLOYEE_ROLES},
            **{c: 403 for c in CONTACTS}}


def contacts_only(code):
    return {"anonymous": LOGIN, **{r: 403 for r in EMPLOYEE_ROLES}, **{c: code for c in CONTACTS}}


INVOICE_READERS = ("primary", "billing", "primary_billing_sponsor", "suspended_customer")  # billing or primary


def invoice_readers(code):
    """The portal's invoices pages: billing and primary contacts; other contacts and all staff 403."""
    return {**contacts_only(403), **{c: code for c in INVOICE_READERS}}


# endpoint -> (method, path (may use {employee_id} {contact_id}), expected answer per persona)
MATRIX = {
    "main.home": ("GET", "/", everyone(302)),
    "main.healthz": ("GET", "/healthz", everyone(200)),
    # Public, for load balancers; no worker runs beside the test database, so it is never ready here.
    "main.readyz": ("GET", "/readyz", everyone(503)),
    "auth.login": ("GET", "/login", {"anonymous": 200, **{p: 302 for p in PERSONAS if p != "anonymous"}}),
    "auth.verify_second_factor": ("GET", "/login/verify", everyone(302)),
    "auth.logout": ("POST", "/logout", everyone(303)),
    "auth.forgot_password": ("GET", "/password/forgot", everyone(200)),
    # A signed-in person is told so (a GET signs nobody out); to others a bad link is a 404.
    "auth.reset_password": ("GET", "/password/reset/not-a-real-token", {**everyone(200), "anonymous": 404}),
    "auth.accept_invitation": ("GET", "/invitation/not-a-real-token", {**everyone(200), "anonymous": 404}),
    "account.change_password": ("GET", "/account/password", signed_in(200)),
    "account.two_factor": ("GET", "/account/two-factor", staff_only(200)),
    "account.enable_two_factor": ("POST", "/account/two-factor/enable", staff_only(422)),
    "account.disable_two_factor": ("POST", "/account/two-factor/disable", staff_only(422)),
    "portal.home": ("GET", "/portal/", contacts_only(200)),
    "portal.usage": ("GET", "/portal/usage", contacts_only(200)),
    "portal.profile": ("GET", "/portal/profile", contacts_only(200)),
    # An empty form misses the names (422); a suspended customer's portal is read-only (403).
    "portal.update_profile": ("POST", "/portal/profile", {**contacts_only(422), "suspended_customer": 403}),
    "staff.home": ("GET", "/staff/", staff_only(200)),
    "staff.people": ("GET", "/staff/people", staff_only(200, roles=["account_manager", "admin"])),
    "staff.invite_employee": ("POST", "/staff/people/employees/{employee_id}/invite",
                              staff_only(303, roles=["admin"])),
    "staff.invite_contact": ("POST", "/staff/people/contacts/{contact_id}/invite",
                             staff_only(303, roles=["account_manager", "admin"])),
    "staff.security_settings": ("GET", "/staff/security", staff_only(200, roles=["admin"])),
    "system.system_status": ("GET", "/staff/system/", staff_only(200, roles=["admin"])),
    "staff.show_customer": ("GET", "/staff/customers/{customer_id}", staff_only(200)),
    "staff.customer_filter_options": ("GET", "/staff/pickers/customer-filter?customer_q=a", staff_only(200)),
    "portal.show_ticket": ("GET", "/portal/tickets/{own_ticket_id}", contacts_only(200)),
    "portal.tickets": ("GET", "/portal/tickets", contacts_only(200)),
    "portal.new_ticket": ("GET", "/portal/tickets/new", {**contacts_only(200), "contact_read_only_flags": 403,
                                                        "billing": 403, "suspended_customer": 403}),
    # An empty reply: 422 with the reason; a suspended customer's portal is read-only (403).
    "portal.reply_to_ticket": ("POST", "/portal/tickets/{own_ticket_id}/replies",
                               {**contacts_only(422), "suspended_customer": 403}),
    # The ticket is not resolved yet: nobody rates it.
    "portal.rate_ticket": ("POST", "/portal/tickets/{own_ticket_id}/rating", contacts_only(403)),
    "portal.download_attachment": ("GET", "/portal/tickets/{own_ticket_id}/attachments/{own_attachment_id}",
                                   contacts_only(200)),
    "tickets.download_attachment": ("GET", "/staff/tickets/{ticket_id}/attachments/{attachment_id}", staff_only(200)),
    "portal.invoices": ("GET", "/portal/invoices", invoice_readers(200)),
    "portal.show_invoice": ("GET", "/portal/invoices/{own_invoice_id}", invoice_readers(200)),
    "portal.invoice_pdf": ("GET", "/portal/invoices/{own_invoice_id}/pdf", invoice_readers(200)),
    "tickets.queue": ("GET", "/staff/tickets/", staff_only(200)),
    "tickets.show_ticket": ("GET", "/staff/tickets/{ticket_id}", staff_only(200)),
    # Without the ticket's version the form is out of date (422), like the other ticket changes.
    "tickets.take_ticket": ("POST", "/staff/tickets/{ticket_id}/take", staff_only(422, roles=WORKERS)),
    # Nothing chosen: the queue again with the reason (422).
    "tickets.bulk_update_tickets": ("POST", "/staff/tickets/bulk", staff_only(422, roles=SENIORS)),
    "tickets.change_ticket_status": ("POST", "/staff/tickets/{ticket_id}/status", staff_only(422, roles=WORKERS)),
    # An empty form lacks the ticket version it was made from: 422 for everyone who works tickets.
    "tickets.assign_ticket": ("POST", "/staff/tickets/{ticket_id}/assign", staff_only(422, roles=WORKERS)),
    "tickets.update_ticket_details": ("POST", "/staff/tickets/{ticket_id}/details", staff_only(422, roles=WORKERS)),
    "tickets.add_ticket_comment": ("POST", "/staff/tickets/{ticket_id}/comments", staff_only(422, roles=WORKERS)),
    "tickets.log_ticket_time": ("POST", "/staff/tickets/{ticket_id}/time", staff_only(422, roles=WORKERS)),
    "tickets.new_ticket": ("GET", "/staff/tickets/new", staff_only(200, roles=WORKERS + ["account_manager"])),
    "tickets.customer_picker": ("GET", "/staff/tickets/pickers/customers?customer_q=a",
                                staff_only(200, roles=WORKERS + ["account_manager"])),
    "time.timesheet": ("GET", "/staff/timesheet", staff_only(200)),
    "time.work_picker": ("GET", "/staff/timesheet/work?work_q=a", staff_only(200)),
    "time.add_entry": ("POST", "/staff/timesheet/entries", staff_only(422)),
    # Someone else's entry: as good as missing.
    "time.update_time_entry": ("POST", "/staff/timesheet/entries/{entry_id}", staff_only(404)),
    "time.delete_time_entry": ("POST", "/staff/timesheet/entries/{entry_id}/delete", staff_only(404)),
    "time.approvals": ("GET", "/staff/approvals", staff_only(200, roles=APPROVERS)),
    "time.decide_entries": ("POST", "/staff/approvals", staff_only(422, roles=APPROVERS)),
    "projects.list_projects": ("GET", "/staff/projects/", staff_only(200)),
    "projects.new_project": ("GET", "/staff/projects/new", staff_only(200, roles=MANAGERS)),
    "projects.show_project": ("GET", "/staff/projects/{project_id}", staff_only(200)),
    # Another manager's project: only admins may change it (here, with an empty form: 422).
    "projects.update_project_details": ("POST", "/staff/projects/{project_id}", staff_only(422, roles=["admin"])),
    "projects.add_project_phase": ("POST", "/staff/projects/{project_id}/phases", staff_only(422, roles=["admin"])),
    "projects.update_project_phase": ("POST", "/staff/projects/{project_id}/phases/{phase_id}",
                                      staff_only(422, roles=["admin"])),
    "projects.change_project_phase_status": ("POST", "/staff/projects/{project_id}/phases/{phase_id}/status",
                                             staff_only(422, roles=["admin"])),
    # The customer has no sponsor to ask: refused with the reason (422).
    "projects.request_approval": ("POST", "/staff/projects/{project_id}/phases/{phase_id}/request-approval",
                                  staff_only(422, roles=["admin"])),
    # The company's projects: sponsors and primary contacts. Here {project_id} is another customer's (404).
    "portal.projects": ("GET", "/portal/projects", {**contacts_only(403), **dict.fromkeys(
        ["primary", "sponsor", "primary_billing_sponsor", "suspended_customer"], 200)}),
    "portal.show_project": ("GET", "/portal/projects/{project_id}", {**contacts_only(403), **dict.fromkeys(
        ["primary", "sponsor", "primary_billing_sponsor", "suspended_customer"], 404)}),
    # Only sponsors of active customers decide; here on another customer's phase (404).
    "portal.approve_phase": ("POST", "/portal/projects/{project_id}/phases/{phase_id}/approve",
                             {**contacts_only(403), **dict.fromkeys(["sponsor", "primary_billing_sponsor"], 404)}),
    "portal.reject_phase": ("POST", "/portal/projects/{project_id}/phases/{phase_id}/reject",
                            {**contacts_only(403), **dict.fromkeys(["sponsor", "primary_billing_sponsor"], 404)}),
    "tickets.contact_picker": ("GET", "/staff/tickets/pickers/contacts?customer_id={customer_id}",
                               staff_only(200, roles=WORKERS + ["account_manager"])),
    # Automation (admins): API clients and webhooks. An empty form is refused with the reasons (422);
    # a row that does not exist is a 404.
    "integrations.api_clients_page": ("GET", "/staff/api-clients", staff_only(200, roles=["admin"])),
    "integrations.create_api_client": ("POST", "/staff/api-clients", staff_only(422, roles=["admin"])),
    "integrations.revoke_api_client": ("POST", "/staff/api-clients/999999999/revoke", staff_only(404, roles=["admin"])),
    "integrations.webhooks_page": ("GET", "/staff/webhooks", staff_only(200, roles=["admin"])),
    "integrations.create_webhook": ("POST", "/staff/webhooks", staff_only(422, roles=["admin"])),
    "integrations.show_webhook": ("GET", "/staff/webhooks/999999999", staff_only(404, roles=["admin"])),
    "integrations.roll_webhook_secret": ("POST", "/staff/webhooks/999999999/secret", staff_only(404, roles=["admin"])),
    "integrations.set_webhook_active": ("POST", "/staff/webhooks/999999999/active", staff_only(404, roles=["admin"])),
    "integrations.resend_delivery": ("POST", "/staff/webhooks/deliveries/999999999/resend",
                                     staff_only(404, roles=["admin"])),
    # Employees: admins manage them, account managers read them (rates included); the audit log is the admins'.
    "admin.list_employees": ("GET", "/staff/admin/employees", staff_only(200, roles=["account_manager", "admin"])),
    "admin.new_employee": ("GET", "/staff/admin/employees/new", staff_only(200, roles=["admin"])),
    "admin.show_employee": ("GET", "/staff/admin/employees/{employee_id}",
                            staff_only(200, roles=["account_manager", "admin"])),
    # An empty form misses every field (422).
    "admin.update_employee": ("POST", "/staff/admin/employees/{employee_id}", staff_only(422, roles=["admin"])),
    "admin.invite_employee": ("POST", "/staff/admin/employees/{employee_id}/invite", staff_only(303, roles=["admin"])),
    # Nothing to hand over: refused with the reason (422).
    "admin.hand_over_work": ("POST", "/staff/admin/employees/{employee_id}/hand-over",
                             staff_only(422, roles=["admin"])),
    "admin.audit_log": ("GET", "/staff/admin/audit", staff_only(200, roles=["admin"])),
    "admin.export_audit_log": ("GET", "/staff/admin/audit.csv", staff_only(200, roles=["admin"])),
    # Billing (issue 11): account managers and admins. {own_invoice_id} is a sent invoice: a draft's
    # changes are refused on it (409), an empty form is refused with its reasons (422).
    "invoices.list_invoices": ("GET", "/staff/invoices/", staff_only(200, roles=BILLERS)),
    "invoices.new_invoice": ("GET", "/staff/invoices/new", staff_only(200, roles=BILLERS)),
    "invoices.generate_invoice": ("POST", "/staff/invoices/", staff_only(422, roles=BILLERS)),
    "invoices.show_invoice": ("GET", "/staff/invoices/{own_invoice_id}", staff_only(200, roles=BILLERS)),
    "invoices.add_line": ("POST", "/staff/invoices/{own_invoice_id}/lines", staff_only(422, roles=BILLERS)),
    "invoices.remove_line": ("POST", "/staff/invoices/{own_invoice_id}/lines/999999999/remove",
                             staff_only(409, roles=BILLERS)),
    "invoices.delete_invoice": ("POST", "/staff/invoices/{own_invoice_id}/delete", staff_only(409, roles=BILLERS)),
    "invoices.send_invoice": ("POST", "/staff/invoices/{own_invoice_id}/send", staff_only(409, roles=BILLERS)),
    "invoices.record_payment": ("POST", "/staff/invoices/{own_invoice_id}/payments", staff_only(422, roles=BILLERS)),
    "invoices.cancel_invoice": ("POST", "/staff/invoices/{own_invoice_id}/cancel", staff_only(303, roles=BILLERS)),
    "invoices.invoice_pdf": ("GET", "/staff/invoices/{own_invoice_id}/pdf", staff_only(200, roles=BILLERS)),
    "invoices.month_end": ("GET", "/staff/invoices/month-end", staff_only(200, roles=BILLERS)),
    "invoices.start_month_end": ("POST", "/staff/invoices/month-end", staff_only(422, roles=BILLERS)),
    "invoices.show_run": ("GET", "/staff/invoices/month-end/999999999", staff_only(404, roles=BILLERS)),
    "invoices.export_page": ("GET", "/staff/invoices/export", staff_only(200, roles=BILLERS)),
    # Customers, contacts, contracts: account managers and admins (technicians keep staff.show_customer).
    # {contact_id} is another customer's contact and contract 999999999 does not exist: 404 for them.
    "customers.list_customers": ("GET", "/staff/customers", staff_only(200, roles=CRM)),
    "customers.new_customer": ("GET", "/staff/customers/new", staff_only(200, roles=CRM)),
    "customers.edit_customer": ("GET", "/staff/customers/{customer_id}/edit", staff_only(200, roles=CRM)),
    # An empty form lacks the stamp of the customer it was made from: out of date (409).
    "customers.update_customer": ("POST", "/staff/customers/{customer_id}/edit", staff_only(409, roles=CRM)),
    "customers.list_contacts": ("GET", "/staff/customers/{customer_id}/contacts", staff_only(200, roles=CRM)),
    "customers.add_contact": ("POST", "/staff/customers/{customer_id}/contacts", staff_only(422, roles=CRM)),
    "customers.edit_contact": ("GET", "/staff/customers/{customer_id}/contacts/{contact_id}",
                               staff_only(404, roles=CRM)),
    "customers.update_contact": ("POST", "/staff/customers/{customer_id}/contacts/{contact_id}",
                                 staff_only(404, roles=CRM)),
    "customers.invite_contact": ("POST", "/staff/customers/{customer_id}/contacts/{contact_id}/invite",
                                 staff_only(404, roles=CRM)),
    "customers.list_contracts": ("GET", "/staff/customers/{customer_id}/contracts", staff_only(200, roles=CRM)),
    "customers.new_contract": ("GET", "/staff/customers/{customer_id}/contracts/new", staff_only(200, roles=CRM)),
    "customers.edit_contract": ("GET", "/staff/customers/{customer_id}/contracts/999999999",
                                staff_only(404, roles=CRM)),
    "customers.update_contract": ("POST", "/staff/customers/{customer_id}/contracts/999999999",
                                  staff_only(404, roles=CRM)),
    "customers.renewal_preview": ("GET", "/staff/customers/{customer_id}/contracts/999999999/renew",
                                  staff_only(404, roles=CRM)),
    "customers.renew_contract": ("POST", "/staff/customers/{customer_id}/contracts/999999999/renew",
                                 staff_only(404, roles=CRM)),
    # Mail in (issue 15): the unmatched mail list for account managers and admins; no such mail is a 404.
    "mail_in.unmatched_mail": ("GET", "/staff/mail/unmatched", staff_only(200, roles=["account_manager", "admin"])),
    "mail_in.attach_mail": ("POST", "/staff/mail/unmatched/999999/attach",
                            staff_only(404, roles=["account_manager", "admin"])),
    "mail_in.discard_mail": ("POST", "/staff/mail/unmatched/999999/discard",
                             staff_only(404, roles=["account_manager", "admin"])),
    # The holiday calendar, admins only; an empty form misses the date and name (422).
    "mail_in.holidays": ("GET", "/staff/admin/holidays", staff_only(200, roles=["admin"])),
    "mail_in.add_holiday": ("POST", "/staff/admin/holidays", staff_only(422, roles=["admin"])),
    "mail_in.prefill_holidays": ("POST", "/staff/admin/holidays/prefill", staff_only(422, roles=["admin"])),
    "mail_in.delete_holiday": ("POST", "/staff/admin/holidays/999999/delete", staff_only(404, roles=["admin"])),
}
# The reports: account managers and admins all; project managers budget burn; seniors utilization and SLA.
REPORT_OWNERS = ["account_manager", "admin"]
REPORT_ROLES = {"mrr": REPORT_OWNERS, "renewals": REPORT_OWNERS, "utilization": REPORT_OWNERS + ["senior_technician"],
                "sla": REPORT_OWNERS + ["senior_technician"], "profitability": REPORT_OWNERS,
                "overdue": REPORT_OWNERS, "budget-burn": REPORT_OWNERS + ["project_manager"]}
MATRIX["reports.index"] = ("GET", "/staff/reports/", staff_only(
    200, roles=REPORT_OWNERS + ["senior_technician", "project_manager"]))
for _report, _roles in REPORT_ROLES.items():
    MATRIX[f"reports.{_report.replace('-', '_')}"] = ("GET", f"/staff/reports/{_report}", staff_only(200, roles=_roles))
    MATRIX[f"reports.{_report.replace('-', '_')}_csv"] = ("GET", f"/staff/reports/{_report}.csv",
                                                          staff_only(200, roles=_roles))
NOT_IN_MATRIX = {"static"}  # public files: CSS, JS, htmx
# The REST API (/api) answers bearer tokens, not sessions: its own matrix of scopes is
# tests/api/test_scopes.py (every api.* route, without a token, with the wrong scope, with the right one).
API_ENDPOINTS = "api."


def test_every_route_is_in_the_matrix(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()
                 if not rule.endpoint.startswith(API_ENDPOINTS)} - NOT_IN_MATRIX
    assert endpoints == set(MATRIX), "add the new route's row to MATRIX"
    for endpoint, (method, _, expected) in MATRIX.items():
        assert set(expected) == set(PERSONAS), endpoint
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
        assert method in rule.methods, endpoint


def _persona(session, name):
    if name == "anonymous":
        return None
    if name in EMPLOYEE_ROLES:
        return f.make_staff(session, role=name)
    customer = f.make_customer(session, account_status="suspended" if name == "suspended_customer" else "active")
    return f.make_contact_login(session, customer=customer, **CONTACT_KINDS[name])


def _sign_in_quickly(browser, session, person) -> None:
    """Put the person's login in the session cookie (the sign-in form has tests of its own)."""
    account = session.scalar(sa.select(Account).where(Account.email == person.email))
    token = auth.start_login_session(session, account, ip=None, user_agent="matrix test")
    with browser.client.session_transaction() as cookie:
        cookie["login_session"] = token
        cookie["_user_id"] = f"{account.account_id}.{account.session_version}"
        cookie["_fresh"] = True
        cookie["last_seen"] = time.time()
        cookie["csrf_token"] = "matrix-test-csrf-secret"
    browser.get("/account/password")  # a page every signed-in person may open: picks up the CSRF token


def _own_invoice(session, person, customer):
    """A sent invoice of the contact's customer (of some customer, for staff and anonymous)."""
    owner = session.get(Customer, person.customer_id) if isinstance(person, Contact) else customer
    invoice = f.make_invoice(session, customer=owner, invoice_status="sent")
    f.make_line(session, invoice)
    return invoice


CASES = [(endpoint, persona) for endpoint in MATRIX for persona in PERSONAS]


@pytest.mark.parametrize("endpoint, persona", CASES, ids=[f"{e}-{p}" for e, p in CASES])
def test_route_answers_each_persona(app, browser, session, endpoint, persona):
    method, path, expected = MATRIX[endpoint]
    person = _persona(session, persona)
    if person is not None:
        _sign_in_quickly(browser, session, person)
    else:
        browser.get("/login")
    customer = f.make_customer(session)
    project = f.make_project(session, customer=customer)
    phase = ProjectPhase(project_id=project.project_id, phase_name="Phase", budget_allocation=1,
                         start_date=project.start_date, end_date=project.planned_end_date)
    session.add(phase)
    session.flush()
    own = (f.make_ticket(session, customer=session.get(Customer, person.customer_id), contact_id=person.contact_id)
           if isinstance(person, Contact) else f.make_ticket(session))
    ticket = f.make_ticket(session, customer=customer)
    url = path.format(employee_id=f.make_employee(session).employee_id, contact_id=f.make_contact(session).contact_id,
                      customer_id=customer.customer_id, ticket_id=ticket.ticket_id,
                      attachment_id=f.make_attachment(session, ticket).attachment_id,
                      own_attachment_id=f.make_attachment(session, own).attachment_id,
                      own_ticket_id=own.ticket_id, entry_id=f.make_time_entry(session).entry_id,
                      project_id=project.project_id, phase_id=phase.phase_id,
                      own_invoice_id=_own_invoice(session, person, customer).invoice_id)
    response = browser.client.get(url) if method == "GET" else browser.post(url)
    want = expected[persona]
    if want == LOGIN:
        assert response.status_code == 302 and "/login" in response.headers["Location"], response.status_code
    else:
        assert response.status_code == want, response.get_data(as_text=True)[:300]


# Every /portal route that takes an id: how to make the signed-in contact's own row and another
# customer's: (path of own, path of theirs) for a GET that answers 200 on one's own row, or
# (own, theirs, method, expected code on own) otherwise.
def _tickets(session, own_customer, contact, other_customer):
    own = f.make_ticket(session, customer=own_customer, contact_id=contact.contact_id)
    theirs = f.make_ticket(session, customer=other_customer)
    return f"/portal/tickets/{own.ticket_id}", f"/portal/tickets/{theirs.ticket_id}"


def _invoices(session, own_customer, contact, other_customer):
    own = f.make_invoice(session, customer=own_customer, invoice_status="sent")
    theirs = f.make_invoice(session, customer=other_customer, invoice_status="sent")
    return f"/portal/invoices/{own.invoice_id}", f"/portal/invoices/{theirs.invoice_id}"


def _invoice_pdfs(session, own_customer, contact, other_customer):
    own, theirs = _invoices(session, own_customer, contact, other_customer)
    return f"{own}/pdf", f"{theirs}/pdf"


CROSS_TENANT = {"portal.show_ticket": _tickets, "portal.show_invoice": _invoices, "portal.invoice_pdf": _invoice_pdfs}


def _projects(session, own_customer, contact, other_customer):
    own = f.make_project(session, customer=own_customer)
    theirs = f.make_project(session, customer=other_customer)
    return f"/portal/projects/{own.project_id}", f"/portal/projects/{theirs.project_id}"


def _phase_decision(action, code_on_own):
    """A phase awaiting approval in each company: an empty form cannot reject it (422). For approve, one's own
    is approved already (409): a request that commits would leave this harness's connection in the
    contact's role (SET LOCAL outlives a released savepoint) and spoil the next request of the test."""
    def build(session, own_customer, contact, other_customer):
        urls = []
        for customer in (own_customer, other_customer):
            project = f.make_project(session, customer=customer)
            decided = action == "approve" and customer is own_customer
            phase = ProjectPhase(project_id=project.project_id, phase_name="Phase", budget_allocation=1,
                                 start_date=project.start_date, end_date=project.planned_end_date,
                                 requires_approval=True, approval_requested_at=sa.func.now(),
                                 approved_at=sa.func.now() if decided else None,
                                 approved_by_contact_id=contact.contact_id if decided else None)
            session.add(phase)
            session.flush()
            urls.append(f"/portal/projects/{project.project_id}/phases/{phase.phase_id}/{action}")
        return urls[0], urls[1], "POST", code_on_own
    return build


CROSS_TENANT.update({"portal.show_project": _projects, "portal.approve_phase": _phase_decision("approve", 409),
                     "portal.reject_phase": _phase_decision("reject", 422)})


def _reply(session, own_customer, contact, other_customer):
    own, theirs = _tickets(session, own_customer, contact, other_customer)
    return f"{own}/replies", f"{theirs}/replies", "POST", 422  # an empty reply: refused with the reason


def _rating(session, own_customer, contact, other_customer):
    own, theirs = _tickets(session, own_customer, contact, other_customer)
    return f"{own}/rating", f"{theirs}/rating", "POST", 403  # not resolved yet


def _attachment(session, own_customer, contact, other_customer):
    own = f.make_ticket(session, customer=own_customer, contact_id=contact.contact_id)
    theirs = f.make_ticket(session, customer=other_customer)
    mine, other = f.make_attachment(session, own, contact=contact), f.make_attachment(session, theirs)
    return (f"/portal/tickets/{own.ticket_id}/attachments/{mine.attachment_id}",
            f"/portal/tickets/{theirs.ticket_id}/attachments/{other.attachment_id}")


CROSS_TENANT.update({"portal.reply_to_ticket": _reply, "portal.rate_ticket": _rating,
                     "portal.download_attachment": _attachment})


def test_every_portal_route_with_an_id_has_a_cross_tenant_case(app):
    with_ids = {rule.endpoint for rule in app.url_map.iter_rules()
                if rule.rule.startswith("/portal") and rule.arguments}
    assert with_ids == set(CROSS_TENANT)


@pytest.mark.parametrize("endpoint", sorted(CROSS_TENANT))
def test_another_customers_row_is_a_404(browser, session, endpoint):
    a, b = f.make_customer(session), f.make_customer(session)
    contact = f.make_contact_login(session, customer=a, is_primary_contact=True, is_billing_contact=True,
                                   can_approve_projects=True)
    own, theirs, *code = CROSS_TENANT[endpoint](session, a, contact, b)
    _sign_in_quickly(browser, session, contact)
    method = browser.client.get if not code or code[0] != "POST" else browser.post
    assert method(own).status_code == (code[1] if code else 200)
    assert method(theirs).status_code == 404
    missing = re.sub(r"/\d+", "/999999999", theirs)
    assert method(missing).status_code == 404


def test_a_colleagues_ticket_is_a_404_unless_primary(browser, session):
    customer = f.make_customer(session)
    contact = f.make_contact_login(session, customer=customer)
    colleague = f.make_contact(session, customer=customer)
    ticket = f.make_ticket(session, customer=customer, contact_id=colleague.contact_id)
    _sign_in_quickly(browser, session, contact)
    assert browser.client.get(f"/portal/tickets/{ticket.ticket_id}").status_code == 404
