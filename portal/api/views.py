"""The REST API's endpoints: parse (schemas), call the same services as the pages, answer JSON.

No view commits (the unit of work does, once), runs a query of its own or holds a rule.
"""

from __future__ import annotations

from apiflask import APIBlueprint
from pathlib import Path

from flask import Response, current_app

from portal.api import schemas as s
from portal.api.core import (
    CONTACT,
    CONTRACT,
    CUSTOMER,
    INVOICE,
    TIME_ENTRY,
    authenticate,
    check_if_match,
    columns,
    etag_of,
    idempotent,
    invoice_json,
    page_answer,
    principal,
    project_json,
    require_scope,
    ticket_json,
)
from portal.api.oauth import token_response
from portal.api.openapi import openapi_spec
from portal.extensions import db
from portal.services import clock, crm, invoicing, listings, reports, tickets, timesheets
from portal.services.tickets import UNCHANGED, NewTicket
from portal.services.timesheets import NewTimeEntry

bp = APIBlueprint("api", __name__, url_prefix="/api", tag="TechServ API")
bp.before_request(authenticate)

ERRORS = {400: "Malformed JSON", 401: "No valid access token", 403: "A scope or right is missing",
          404: "No such row", 409: "A state that forbids the change, or a stale If-Match", 413: "Body over 1 MB",
          422: "Invalid values (a message per field)", 429: "Over the client's rate limit (Retry-After)"}


def _filters(query: dict, names) -> dict:
    return {name: query.get(name) for name in names if query.get(name) is not None}


def _list(name: str, query: dict, serialize, *, load: tuple | None = None):
    resource = listings.RESOURCES[name]
    page = listings.list_rows(db.session, principal(), name, filters=_filters(query, resource.filters),
                              updated_since=query.get("updated_since"), cursor=query.get("cursor"),
                              limit=query.get("limit", 50), load=load)
    return page_answer(page, [serialize(row) for row in page.rows], query)


# --- OAuth and the documents ----------------------------------------------------------------------

@bp.post("/oauth/token")
@bp.doc(summary="Get an access token (OAuth 2.0 client credentials)",
        description="Form-encoded `grant_type=client_credentials` with the client id and secret as HTTP Basic "
                    "credentials (or `client_id` and `client_secret` form fields); `scope` optional (space "
                    "separated, at most the client's). The token expires after `expires_in` seconds.",
        security=[], responses={200: "A bearer token", 400: "A malformed request", 401: "Wrong client credentials"})
@bp.output(s.TokenOut)
def issue_token():
    return token_response()


@bp.get("/openapi.json")
@bp.doc(hide=True)
def openapi_document():
    return openapi_spec(current_app)


@bp.get("/docs")
@bp.doc(hide=True)
def docs():
    """The reference: a static page (static/api/docs.html) with its script and styles as files (CSP)."""
    page = Path(current_app.static_folder, "api", "docs.html").read_text(encoding="utf-8")
    return Response(page, mimetype="text/html")


# --- customers, contacts, contracts ---------------------------------------------------------------

def _customer_json(details: crm.CustomerDetails) -> dict:
    data = columns(details.customer, CUSTOMER)
    if details.contacts is not None:
        data["contacts"] = [columns(contact, CONTACT) for contact in details.contacts]
    if details.contracts is not None:
        data["contracts"] = [columns(contract, CONTRACT) for contract in details.contracts]
    return data


@bp.get("/customers")
@require_scope("customers:read")
@bp.input(s.CustomerListQuery, location="query", arg_name="query")
@bp.output(s.CustomerPage)
@bp.doc(summary="List customers", responses=ERRORS)
def list_customers(query):
    return _list("customers", query, lambda row: columns(row, CUSTOMER))


@bp.post("/customers")
@require_scope("customers:write")
@idempotent
@bp.input(s.NewCustomerIn, arg_name="body")
@bp.output(s.CustomerOut, status_code=201)
@bp.doc(summary="Create a customer with its primary contact", responses=ERRORS)
def create_customer(body):
    contact = body.pop("primary_contact", None)
    customer = crm.create_customer(db.session, principal(), crm.NewCustomer(
        primary_contact=crm.NewContact(**contact) if contact else None, **body))
    details = crm.customer_details(db.session, principal(), customer.customer_id, {"contacts"})
    return _customer_json(details), 201, {"ETag": etag_of(customer),
                                          "Location": f"/api/customers/{customer.customer_id}"}


@bp.get("/customers/<int:customer_id>")
@require_scope("customers:read")
@bp.input(s.IncludeQuery, location="query", arg_name="query")
@bp.output(s.CustomerOut)
@bp.doc(summary="Get a customer (include=contracts,contacts)", responses=ERRORS)
def get_customer(customer_id, query):
    include = {part.strip() for part in (query.get("include") or "").split(",") if part.strip()}
    details = crm.customer_details(db.session, principal(), customer_id, include)
    return _customer_json(details), 200, {"ETag": etag_of(details.customer)}


@bp.patch("/customers/<int:customer_id>")
@require_scope("customers:write")
@bp.input(s.CustomerPatchIn, arg_name="body")
@bp.output(s.CustomerOut)
@bp.doc(summary="Update a customer (If-Match with its ETag refuses a stale change)", responses=ERRORS)
def update_customer(customer_id, body):
    customer = crm.visible_customer(db.session, principal(), customer_id, lock=True)
    check_if_match(customer)
    customer = crm.update_customer(db.session, principal(), customer, body)
    return _customer_json(crm.CustomerDetails(customer)), 200, {"ETag": etag_of(customer)}


@bp.get("/contacts")
@require_scope("customers:read")
@bp.input(s.ContactListQuery, location="query", arg_name="query")
@bp.output(s.ContactPage)
@bp.doc(summary="List contacts", responses=ERRORS)
def list_contacts(query):
    return _list("contacts", query, lambda row: columns(row, CONTACT))


@bp.get("/contacts/<int:contact_id>")
@require_scope("customers:read")
@bp.output(s.ContactOut)
@bp.doc(summary="Get a contact", responses=ERRORS)
def get_contact(contact_id):
    contact = listings.get_row(db.session, principal(), "contacts", contact_id)
    return columns(contact, CONTACT), 200, {"ETag": etag_of(contact)}


@bp.get("/contracts")
@require_scope("contracts:read")
@bp.input(s.ContractListQuery, location="query", arg_name="query")
@bp.output(s.ContractPage)
@bp.doc(summary="List service contracts", responses=ERRORS)
def list_contracts(query):
    return _list("contracts", query, lambda row: columns(row, CONTRACT))


@bp.get("/contracts/<int:contract_id>")
@require_scope("contracts:read")
@bp.output(s.ContractOut)
@bp.doc(summary="Get a service contract", responses=ERRORS)
def get_contract(contract_id):
    contract = listings.get_row(db.session, principal(), "contracts", contract_id)
    return columns(contract, CONTRACT), 200, {"ETag": etag_of(contract)}


# --- tickets ----------------------------------------------------------------------------------------

@bp.get("/tickets")
@require_scope("tickets:read")
@bp.input(s.TicketListQuery, location="query", arg_name="query")
@bp.output(s.TicketPage)
@bp.doc(summary="List tickets", responses=ERRORS)
def list_tickets(query):
    return _list("tickets", query, ticket_json)


@bp.post("/tickets")
@require_scope("tickets:write")
@idempotent
@bp.input(s.NewTicketIn, arg_name="body")
@bp.output(s.TicketOut, status_code=201)
@bp.doc(summary="Open a ticket (from email automation: the customer is found by customer_email)",
        responses=ERRORS)
def create_ticket(body):
    if body.get("customer_email"):
        customer_id, contact_id = crm.customer_for_email(db.session, principal(), body["customer_email"])
    else:
        customer_id, contact_id = body.get("customer_id"), body.get("contact_id")
    ticket = tickets.open_ticket(db.session, principal(), NewTicket(
        title=body["title"], description=body["description"], category=body["category"],
        priority=body.get("priority"), customer_id=customer_id, contact_id=contact_id))
    return ticket_json(ticket, []), 201, {"ETag": etag_of(ticket), "Location": f"/api/tickets/{ticket.ticket_id}"}


@bp.get("/tickets/sla-alerts")
@require_scope("tickets:read")
@bp.input(s.SlaQuery, location="query", arg_name="query")
@bp.output(s.SlaAlertsOut)
@bp.doc(summary="Unresolved tickets whose SLA deadline falls within `days` days (or has passed)",
        responses=ERRORS)
def sla_alerts(query):
    rows = listings.sla_alerts(db.session, principal(), days=query["days"], now=clock.now())
    return {"days": query["days"], "data": [ticket_json(row) for row in rows]}


@bp.get("/tickets/<int:ticket_id>")
@require_scope("tickets:read")
@bp.output(s.TicketOut)
@bp.doc(summary="Get a ticket with its conversation (internal notes with tickets:internal)", responses=ERRORS)
def get_ticket(ticket_id):
    ticket = tickets.visible_ticket(db.session, principal(), ticket_id)
    return (ticket_json(ticket, listings.ticket_comments(db.session, principal(), ticket_id)), 200,
            {"ETag": etag_of(ticket)})


@bp.patch("/tickets/<int:ticket_id>")
@require_scope("tickets:write")
@bp.input(s.TicketPatchIn, arg_name="body")
@bp.output(s.TicketOut)
@bp.doc(summary="Change a ticket: assignment, priority, estimate, then status (the pages' rules)",
        responses=ERRORS)
def update_ticket(ticket_id, body):
    who = principal()
    ticket = tickets.visible_ticket(db.session, who, ticket_id, lock=True)
    check_if_match(ticket)
    if "assigned_employee_id" in body and body["assigned_employee_id"] != ticket.assigned_employee_id:
        tickets.assign(db.session, who, ticket, body["assigned_employee_id"], expected_version=None)
    if "priority" in body or "estimated_hours" in body:
        tickets.update_details(db.session, who, ticket, priority=body.get("priority"),
                               estimated_hours=body.get("estimated_hours", UNCHANGED), expected_version=None)
    if "status" in body and body["status"] != ticket.status:
        tickets.change_status(db.session, who, ticket, body["status"], expected_version=None,
                              resolution_notes=body.get("resolution_notes"))
    return ticket_json(ticket, listings.ticket_comments(db.session, who, ticket_id)), 200, {"ETag": etag_of(ticket)}


# --- time ---------------------------------------------------------------------------------------------

@bp.get("/time-entries")
@require_scope("time:read")
@bp.input(s.TimeListQuery, location="query", arg_name="query")
@bp.output(s.TimeEntryPage)
@bp.doc(summary="List time entries", responses=ERRORS)
def list_time_entries(query):
    return _list("time_entries", query, lambda row: columns(row, TIME_ENTRY))


@bp.post("/time-entries")
@require_scope("time:write")
@idempotent
@bp.input(s.NewTimeEntryIn, arg_name="body")
@bp.output(s.TimeEntryOut, status_code=201)
@bp.doc(summary="Log time for an employee, pending approval", responses=ERRORS)
def create_time_entry(body):
    entry = timesheets.log_time(db.session, principal(), NewTimeEntry(
        work_date=body["work_date"], hours=body["hours_worked"], description=body["description"],
        work_category=body.get("work_category", NewTimeEntry.work_category),
        is_billable=body.get("is_billable", True), ticket_id=body.get("ticket_id"),
        project_id=body.get("project_id"), employee_id=body["employee_id"]))
    return columns(entry, TIME_ENTRY), 201, {"ETag": etag_of(entry), "Location": f"/api/time-entries/{entry.entry_id}"}


@bp.get("/time-entries/<int:entry_id>")
@require_scope("time:read")
@bp.output(s.TimeEntryOut)
@bp.doc(summary="Get a time entry", responses=ERRORS)
def get_time_entry(entry_id):
    entry = listings.get_row(db.session, principal(), "time_entries", entry_id)
    return columns(entry, TIME_ENTRY), 200, {"ETag": etag_of(entry)}


@bp.post("/time-entries/approve")
@require_scope("time:approve")
@idempotent
@bp.input(s.ApproveIn, arg_name="body")
@bp.output(s.ApprovalOut)
@bp.doc(summary="Approve time entries, all or nothing, in the name of an employee allowed to approve each "
                "(never their own); a refusal lists why for each refused entry", responses=ERRORS)
def approve_time_entries(body):
    count = timesheets.decide(db.session, principal(), body["entry_ids"], approve=True,
                              approver_id=body["approved_by_employee_id"])
    return {"approved": count, "entry_ids": sorted(set(body["entry_ids"])),
            "approved_by_employee_id": body["approved_by_employee_id"]}


# --- invoices and projects ---------------------------------------------------------------------------

@bp.get("/invoices")
@require_scope("invoices:read")
@bp.input(s.InvoiceListQuery, location="query", arg_name="query")
@bp.output(s.InvoicePage)
@bp.doc(summary="List invoices (without their lines; include=lines embeds them)", responses=ERRORS)
def list_invoices(query):
    if query.get("include") == "lines":
        return _list("invoices", query, invoice_json)
    # A month's invoice of a large customer has tens of thousands of lines: a list carries the invoices
    # alone (GET /api/invoices/{id} has its lines).
    return _list("invoices", query, lambda invoice: columns(invoice, INVOICE), load=())


@bp.get("/invoices/<int:invoice_id>")
@require_scope("invoices:read")
@bp.output(s.InvoiceOut)
@bp.doc(summary="Get an invoice with its lines", responses=ERRORS)
def get_invoice(invoice_id):
    invoice = listings.get_row(db.session, principal(), "invoices", invoice_id)
    return invoice_json(invoice), 200, {"ETag": etag_of(invoice)}


@bp.post("/invoices/generate")
@require_scope("invoices:write")
@idempotent
@bp.input(s.GenerateInvoiceIn, arg_name="body")
@bp.output(s.InvoiceOut, status_code=201)
@bp.doc(summary="Generate a draft invoice from approved time (and monthly fees)", responses=ERRORS)
def generate_invoice(body):
    invoice = invoicing.generate_invoice(
        db.session, principal(), invoicing.InvoiceRequest(
            customer_id=body["customer_id"], period_start=body["billing_period_start"],
            period_end=body["billing_period_end"], include_monthly_fees=body["include_monthly_fees"]),
        invoice_date=clock.today(), tax_rate=current_app.config["TAX_RATE"])
    return invoice_json(invoice), 201, {"ETag": etag_of(invoice), "Location": f"/api/invoices/{invoice.invoice_id}"}


@bp.get("/projects")
@require_scope("projects:read")
@bp.input(s.ProjectListQuery, location="query", arg_name="query")
@bp.output(s.ProjectPage)
@bp.doc(summary="List projects", responses=ERRORS)
def list_projects(query):
    return _list("projects", query, lambda row: project_json(row, principal()))


@bp.get("/projects/<int:project_id>")
@require_scope("projects:read")
@bp.output(s.ProjectOut)
@bp.doc(summary="Get a project", responses=ERRORS)
def get_project(project_id):
    project = listings.get_row(db.session, principal(), "projects", project_id)
    return project_json(project, principal()), 200, {"ETag": etag_of(project)}


# --- reports ------------------------------------------------------------------------------------------

@bp.get("/reports/<name>")
@require_scope("reports:read")
@bp.input(s.ReportQuery, location="query", arg_name="query")
@bp.output(s.ReportOut)
@bp.doc(summary="A business report's rows (mrr, renewals, utilization, sla, profitability, overdue, budget-burn): "
                "the same rows as the staff page and its CSV", responses=ERRORS)
def get_report(name, query):
    return reports.run(db.session, principal(), name, query, clock.today()).json()
