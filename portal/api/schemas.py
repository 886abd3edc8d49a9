"""The API's request and response schemas (marshmallow, through APIFlask).

Request schemas parse JSON into the typed values services take (ints, Decimals, dates, enums);
unknown fields are refused, so a typo is a 422 naming it rather than a silently ignored value.
What is required and what range a value may take beyond its type is the services' to say, so the
API and the pages answer with the same words. Response schemas document what the views return;
money and hours are decimal strings ("18000.00"), never binary floats.
"""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, Date, DateTime, Decimal, Dict, Enum, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import RAISE

from portal.models import (
    AccountStatus,
    ApprovalStatus,
    CompanySize,
    ContractStatus,
    InvoiceStatus,
    ProjectStatus,
    ServiceTier,
    TicketCategory,
    TicketPriority,
    TicketStatus,
    WorkCategory,
)

MAX_ID = 2**31 - 1


def Id(**kw):
    return Integer(strict=True, validate=Range(1, MAX_ID), **kw)


def QueryId(**kw):
    """An id in the query string (text there, so not strict)."""
    return Integer(validate=Range(1, MAX_ID), **kw)


def Choice(enum, **kw):
    return Enum(enum, by_value=True, **kw)


def Money(**kw):
    return String(metadata={"format": "decimal", "example": "1250.00"}, **kw)


class Strict(Schema):
    class Meta:
        unknown = RAISE


# --- requests -------------------------------------------------------------------------------------

class NewContactIn(Strict):
    first_name = String(required=True, validate=Length(max=100))
    last_name = String(required=True, validate=Length(max=100))
    email = String(required=True, validate=Length(max=255))
    title = String(validate=Length(max=100), allow_none=True)
    phone = String(validate=Length(max=20), allow_none=True)


class NewCustomerIn(Strict):
    company_name = String(required=True, validate=Length(max=255))
    industry = String(validate=Length(max=100), allow_none=True)
    service_tier = Choice(ServiceTier)
    company_size = Choice(CompanySize)
    account_status = Choice(AccountStatus)
    billing_address = String(validate=Length(max=2000), allow_none=True)
    service_address = String(validate=Length(max=2000), allow_none=True)
    primary_contact = Nested(NewContactIn)


class CustomerPatchIn(Strict):
    company_name = String(validate=Length(max=255))
    industry = String(validate=Length(max=100), allow_none=True)
    service_tier = Choice(ServiceTier)
    company_size = Choice(CompanySize)
    account_status = Choice(AccountStatus)
    primary_contact_email = String(validate=Length(max=255), allow_none=True)
    billing_address = String(validate=Length(max=2000), allow_none=True)
    service_address = String(validate=Length(max=2000), allow_none=True)
    timezone = String(validate=Length(max=50))
    tax_id = String(validate=Length(max=20), allow_none=True)


class NewTicketIn(Strict):
    customer_email = String(validate=Length(max=255))
    customer_id = Id()
    contact_id = Id(allow_none=True)
    title = String(required=True, validate=Length(max=255))
    description = String(required=True, validate=Length(max=20000))
    category = Choice(TicketCategory, required=True)
    priority = Choice(TicketPriority)


class TicketPatchIn(Strict):
    status = Choice(TicketStatus)
    assigned_employee_id = Id(allow_none=True)
    priority = Choice(TicketPriority)
    estimated_hours = Decimal(allow_none=True)
    resolution_notes = String(validate=Length(max=20000))


class NewTimeEntryIn(Strict):
    employee_id = Id(required=True)
    ticket_id = Id(allow_none=True)
    project_id = Id(allow_none=True)
    work_date = Date(required=True)
    hours_worked = Decimal(required=True)
    description = String(required=True, validate=Length(max=5000))
    work_category = Choice(WorkCategory)
    is_billable = Boolean()


class ApproveIn(Strict):
    entry_ids = List(Id(), required=True, validate=Length(min=1, max=1000))
    approved_by_employee_id = Id(required=True)


class GenerateInvoiceIn(Strict):
    customer_id = Id(required=True)
    billing_period_start = Date(required=True)
    billing_period_end = Date(required=True)
    include_monthly_fees = Boolean(load_default=True)


# --- query strings ------------------------------------------------------------------------------

class ListQuery(Schema):
    limit = Integer(load_default=50, validate=Range(1, 200))
    cursor = String(validate=Length(max=200))
    updated_since = DateTime(metadata={"description": "Only rows changed at or after this time (ISO 8601)."})


class CustomerListQuery(ListQuery):
    account_status = Choice(AccountStatus)
    service_tier = Choice(ServiceTier)


class ContactListQuery(ListQuery):
    customer_id = QueryId()
    email = String(validate=Length(max=255))


class ContractListQuery(ListQuery):
    customer_id = QueryId()
    contract_status = Choice(ContractStatus)


class TicketListQuery(ListQuery):
    customer_id = QueryId()
    contact_id = QueryId()
    status = Choice(TicketStatus)
    priority = Choice(TicketPriority)
    assigned_employee_id = QueryId()


class TimeListQuery(ListQuery):
    employee_id = QueryId()
    customer_id = QueryId()
    ticket_id = QueryId()
    project_id = QueryId()
    approval_status = Choice(ApprovalStatus)


class InvoiceListQuery(ListQuery):
    customer_id = QueryId()
    invoice_status = Choice(InvoiceStatus)
    include = String(validate=OneOf(["lines"], error="include is lines, or left out."),
                     metadata={"description": "lines: each invoice with its lines (left out, the list has none)"})


class ProjectListQuery(ListQuery):
    customer_id = QueryId()
    project_status = Choice(ProjectStatus)
    project_manager_id = QueryId()


class IncludeQuery(Schema):
    include = String(validate=Length(max=100), metadata={"description": "contracts, contacts or both, comma-separated",
                                                         "example": "contracts,contacts"})


class SlaQuery(Schema):
    days = Integer(load_default=1, validate=Range(0, 365))


# --- responses ----------------------------------------------------------------------------------

def Stamp(**kw):
    return DateTime(**kw)


class ContactOut(Schema):
    contact_id = Integer()
    customer_id = Integer()
    first_name = String()
    last_name = String()
    email = String()
    phone = String(allow_none=True)
    mobile = String(allow_none=True)
    title = String(allow_none=True)
    department = String(allow_none=True)
    is_primary_contact = Boolean()
    is_billing_contact = Boolean()
    can_create_tickets = Boolean()
    can_approve_projects = Boolean()
    communication_preference = String()
    created_at = Stamp()
    updated_at = Stamp()


class ContractOut(Schema):
    contract_id = Integer()
    contract_number = String()
    customer_id = Integer()
    service_tier = String()
    monthly_fee = Money()
    included_hours = Integer()
    hourly_rate_additional = Money()
    start_date = Date()
    end_date = Date()
    auto_renewal = Boolean()
    price_increase_annual = Money()
    response_time_hours = Integer()
    resolution_time_hours = Integer()
    contract_status = String()
    created_at = Stamp()
    updated_at = Stamp()


class CustomerOut(Schema):
    customer_id = Integer()
    company_name = String()
    industry = String(allow_none=True)
    company_size = String()
    tax_id = String(allow_none=True)
    primary_contact_email = String(allow_none=True)
    service_tier = String()
    account_status = String()
    account_health_score = Money()
    billing_address = String(allow_none=True)
    service_address = String(allow_none=True)
    timezone = String()
    created_at = Stamp()
    updated_at = Stamp()
    contacts = List(Nested(ContactOut))
    contracts = List(Nested(ContractOut))


class CommentOut(Schema):
    comment_id = Integer()
    author_type = String(validate=OneOf(["employee", "contact"]))
    author_id = Integer()
    body = String()
    is_internal = Boolean()
    created_at = Stamp()


class TicketOut(Schema):
    ticket_id = Integer()
    ticket_number = String()
    customer_id = Integer()
    contract_id = Integer(allow_none=True)
    contact_id = Integer(allow_none=True)
    assigned_employee_id = Integer(allow_none=True)
    title = String()
    description = String()
    category = String()
    priority = String()
    status = String()
    estimated_hours = Money(allow_none=True)
    actual_hours = Money()
    resolution_notes = String(allow_none=True)
    customer_satisfaction = Integer(allow_none=True)
    sla_state = String(allow_none=True)
    response_due_at = Stamp(allow_none=True)
    resolution_due_at = Stamp(allow_none=True)
    sla_due_at = Stamp(allow_none=True)
    created_at = Stamp()
    assigned_at = Stamp(allow_none=True)
    first_response_at = Stamp(allow_none=True)
    resolved_at = Stamp(allow_none=True)
    closed_at = Stamp(allow_none=True)
    updated_at = Stamp()
    version = Integer()
    comments = List(Nested(CommentOut))


class TimeEntryOut(Schema):
    entry_id = Integer()
    employee_id = Integer()
    customer_id = Integer()
    ticket_id = Integer(allow_none=True)
    project_id = Integer(allow_none=True)
    work_date = Date()
    hours_worked = Money()
    billing_rate = Money()
    description = String()
    work_category = String()
    is_billable = Boolean()
    approval_status = String()
    approved_by_employee_id = Integer(allow_none=True)
    approved_at = Stamp(allow_none=True)
    rejection_reason = String(allow_none=True)
    created_at = Stamp()
    updated_at = Stamp()


class ApprovalOut(Schema):
    approved = Integer()
    entry_ids = List(Integer())
    approved_by_employee_id = Integer()


class LineOut(Schema):
    line_item_id = Integer()
    item_type = String()
    description = String()
    quantity = Money()
    unit_price = Money()
    line_total = Money()
    time_entry_id = Integer(allow_none=True)


class InvoiceOut(Schema):
    invoice_id = Integer()
    invoice_number = String()
    customer_id = Integer()
    contract_id = Integer(allow_none=True)
    invoice_date = Date()
    due_date = Date()
    subtotal = Money()
    tax_rate = Money()
    tax_amount = Money()
    total_amount = Money()
    invoice_status = String()
    payment_terms = String()
    sent_at = Stamp(allow_none=True)
    paid_at = Stamp(allow_none=True)
    paid_amount = Money()
    created_at = Stamp()
    updated_at = Stamp()
    lines = List(Nested(LineOut))


class ProjectOut(Schema):
    project_id = Integer()
    project_number = String()
    customer_id = Integer()
    project_name = String()
    project_status = String()
    project_manager_id = Integer(allow_none=True)
    budget_amount = Money(allow_none=True)
    actual_cost = Money(allow_none=True)
    start_date = Date(allow_none=True)
    planned_end_date = Date(allow_none=True)
    actual_end_date = Date(allow_none=True)
    created_at = Stamp()
    updated_at = Stamp()


class Links(Schema):
    next = String(allow_none=True, metadata={"description": "The next page, or null on the last one."})


def page_of(item: type[Schema], name: str) -> type[Schema]:
    return type(name, (Schema,), {"data": List(Nested(item)), "links": Nested(Links),
                                  "next_cursor": String(allow_none=True)})


CustomerPage = page_of(CustomerOut, "CustomerPage")
ContactPage = page_of(ContactOut, "ContactPage")
ContractPage = page_of(ContractOut, "ContractPage")
TicketPage = page_of(TicketOut, "TicketPage")
TimeEntryPage = page_of(TimeEntryOut, "TimeEntryPage")
InvoicePage = page_of(InvoiceOut, "InvoicePage")
ProjectPage = page_of(ProjectOut, "ProjectPage")


class SlaAlertsOut(Schema):
    days = Integer()
    data = List(Nested(TicketOut))


class TokenOut(Schema):
    access_token = String()
    token_type = String()
    expires_in = Integer()
    scope = String()


class Problem(Schema):
    type = String()
    title = String()
    status = Integer()
    detail = String()
    errors = Dict(keys=String(), values=String())
    error = String()
    error_description = String()


# --- reports ------------------------------------------------------------------------------------

class ReportQuery(Strict):
    """Every report's parameters (each report reads its own and ignores the others); text, as in
    the pages' URLs, so the service checks both the same way."""

    months = String(metadata={"description": "mrr, profitability: months (1-36, default 12)"})
    days = String(metadata={"description": "renewals: ending within this many days (1-365, default 90)"})
    week = String(metadata={"description": "utilization: any day of the week, YYYY-MM-DD (default this week)"})
    start = String(metadata={"description": "sla: first business day, YYYY-MM-DD (default 29 days before end)"})
    end = String(metadata={"description": "sla: last business day, YYYY-MM-DD (default today)"})
    stage = String(metadata={"description": "overdue: one collection stage (default all)"})
    over = String(metadata={"description": "budget-burn: 1 for only the projects over 80 %"})


class ReportOut(Schema):
    report = String(metadata={"example": "renewals"})
    parameters = Dict(metadata={"example": {"days": 90}})
    as_of = String(metadata={"format": "date", "description": "the business day (DISPLAY_TIMEZONE) the report was computed for"})
    rows = List(Dict(), metadata={"description": "one object per table row, keyed by the CSV's column names; "
                                                 "money and hours as decimal strings, dates ISO 8601"})
