"""What every API view shares: who is calling (bearer token -> a client principal), scopes, the rate
limit, Idempotency-Key, ETag / If-Match, cursor links, and the JSON form of each kind of row."""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

import sqlalchemy as sa
from flask import Response, current_app, g, request, url_for

from portal.api.problems import ApiProblem
from portal.extensions import db
from portal.services import api_clients, clock, policy
from portal.services.sla import sla_state

# Endpoints anyone may call: the token endpoint and the documents.
PUBLIC_ENDPOINTS = {"api.issue_token", "api.openapi_document", "api.docs"}


def principal() -> policy.Principal:
    return g.api_principal


def _challenge(error: str | None = None, description: str | None = None, scope: str | None = None) -> str:
    parts = ['Bearer realm="TechServ API"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return ", ".join(parts)


def authenticate() -> None:
    """The API blueprint's before_request: a valid bearer token, then the client's rate limit."""
    g.api_principal = None
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(401, "Send an access token: Authorization: Bearer <token> (POST /api/oauth/token gives one).",
                         headers={"WWW-Authenticate": _challenge()})
    check = api_clients.principal_for_token(db.session, token.strip(), ip_address=request.remote_addr)
    if check.principal is None:
        raise ApiProblem(401, check.problem,
                         headers={"WWW-Authenticate": _challenge("invalid_token", check.problem)})
    g.api_principal = check.principal
    _rate_limit(check.principal)


def _rate_limit(client: policy.Principal) -> None:
    limit = current_app.config["API_RATE_LIMIT_PER_MINUTE"]
    # A connection of its own, committed at once: the count is shared by every app instance and
    # never holds a lock for the length of a request.
    with db.engine.begin() as connection:
        wait = api_clients.count_request(connection, client.client_id, limit)
    if wait is not None:
        raise ApiProblem(429, f"This client made more than {limit} requests this minute; try again in {wait} s.",
                         headers={"Retry-After": str(wait)})


def require_scope(scope: str):
    """The route needs `scope` (403 naming it otherwise); the services still ask the policy."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not policy.has_scope(principal(), scope):
                raise ApiProblem(403, f"This token lacks the {scope} scope.",
                                 headers={"WWW-Authenticate": _challenge("insufficient_scope",
                                                                         f"This token lacks the {scope} scope.",
                                                                         scope)},
                                 extra={"required_scope": scope})
            return view(*args, **kwargs)

        wrapped.required_scope = scope
        return wrapped

    return decorator


def idempotent(view):
    """Idempotency-Key on a POST: the same key and body within 24 h answer the first answer again
    (nothing changes twice); the same key with another body is a 422. The answer is stored in the
    request's transaction, with the change it reports."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        client_id = principal().client_id
        fingerprint = api_clients.request_fingerprint(request.method, request.path, request.get_data())
        stored = api_clients.remembered_answer(db.session, client_id, key, fingerprint)
        if stored is not None:
            response = Response(stored.response_body, status=stored.status_code)
            for name, value in stored.response_headers.items():
                response.headers[name] = value
            response.headers["Idempotent-Replayed"] = "true"
            return response
        response = current_app.make_response(view(*args, **kwargs))
        kept = {name: value for name, value in response.headers.items()
                if name in ("Content-Type", "Location", "ETag")}
        api_clients.remember_answer(db.session, client_id, key, fingerprint, response.status_code,
                                    response.get_data(as_text=True), kept)
        return response

    return wrapped


# --- ETag / If-Match --------------------------------------------------------------------------

def etag_of(row) -> str:
    """A strong validator of the row's stored state: the ticket's version, or a hash of the columns."""
    version = getattr(row, "version", None)
    if version is not None:
        return f'"{type(row).__tablename__}-{sa.inspect(row).identity[0]}-v{version}"'
    values = {column.key: _plain(getattr(row, column.key)) for column in sa.inspect(row).mapper.column_attrs}
    return '"' + hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:32] + '"'


def check_if_match(row) -> None:
    """:raises ApiProblem: 409 when If-Match names another state of the row than the current one."""
    wanted = request.headers.get("If-Match")
    if wanted is None:
        return
    current = etag_of(row)
    tags = [tag.strip().removeprefix("W/") for tag in wanted.split(",")]
    if "*" not in tags and current not in tags:
        raise ApiProblem(409, "The row changed since you read it (If-Match does not match its ETag). "
                              "GET it again and send your change with the new ETag.",
                         headers={"ETag": current})


def with_etag(response_value, row, status: int = 200):
    body, *_ = response_value if isinstance(response_value, tuple) else (response_value,)
    return body, status, {"ETag": etag_of(row)}


# --- lists --------------------------------------------------------------------------------------

def page_answer(page, items: list[dict], args: dict):
    """{data, links: {next}, next_cursor} and a Link header to the next page."""
    next_url = None
    if page.next_cursor:
        query = {name: value for name, value in args.items() if value is not None and name != "cursor"}
        query = {name: (value.isoformat() if isinstance(value, datetime) else
                        value.value if isinstance(value, Enum) else value) for name, value in query.items()}
        next_url = url_for(request.endpoint, **(request.view_args or {}), **query, cursor=page.next_cursor,
                           _external=False)
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    return {"data": items, "links": {"next": next_url}, "next_cursor": page.next_cursor}, 200, headers


# --- rows as JSON ---------------------------------------------------------------------------------

def _plain(value):
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def columns(row, names: list[str]) -> dict:
    return {name: getattr(row, name) for name in names}


CUSTOMER = ["customer_id", "company_name", "industry", "company_size", "tax_id", "primary_contact_email",
            "service_tier", "account_status", "account_health_score", "billing_address", "service_address",
            "timezone", "created_at", "updated_at"]
CONTACT = ["contact_id", "customer_id", "first_name", "last_name", "email", "phone", "mobile", "title", "department",
           "is_primary_contact", "is_billing_contact", "can_create_tickets", "can_approve_projects",
           "communication_preference", "created_at", "updated_at"]
CONTRACT = ["contract_id", "contract_number", "customer_id", "service_tier", "monthly_fee", "included_hours",
            "hourly_rate_additional", "start_date", "end_date", "auto_renewal", "price_increase_annual",
            "response_time_hours", "resolution_time_hours", "contract_status", "created_at", "updated_at"]
TICKET = ["ticket_id", "ticket_number", "customer_id", "contract_id", "contact_id", "assigned_employee_id", "title",
          "description", "category", "priority", "status", "estimated_hours", "actual_hours", "resolution_notes",
          "customer_satisfaction", "response_due_at", "resolution_due_at", "sla_due_at", "created_at", "assigned_at",
          "first_response_at", "resolved_at", "closed_at", "updated_at", "version"]
TIME_ENTRY = ["entry_id", "employee_id", "customer_id", "ticket_id", "project_id", "work_date", "hours_worked",
              "billing_rate", "description", "work_category", "is_billable", "approval_status",
              "approved_by_employee_id", "approved_at", "rejection_reason", "created_at", "updated_at"]
INVOICE = ["invoice_id", "invoice_number", "customer_id", "contract_id", "invoice_date", "due_date", "subtotal",
           "tax_rate", "tax_amount", "total_amount", "invoice_status", "payment_terms", "sent_at", "paid_at",
           "paid_amount", "created_at", "updated_at"]
LINE = ["line_item_id", "item_type", "description", "quantity", "unit_price", "line_total", "time_entry_id"]
PROJECT = ["project_id", "project_number", "customer_id", "project_name", "project_status", "project_manager_id",
           "budget_amount", "actual_cost", "start_date", "planned_end_date", "actual_end_date", "created_at",
           "updated_at"]


def ticket_json(ticket, comments=None) -> dict:
    data = columns(ticket, TICKET)
    data["sla_state"] = sla_state(ticket, clock.now())
    if comments is not None:
        data["comments"] = [{"comment_id": c.comment_id,
                             "author_type": "employee" if c.author_employee_id else "contact",
                             "author_id": c.author_employee_id or c.author_contact_id, "body": c.body,
                             "is_internal": c.is_internal, "created_at": c.created_at} for c in comments]
    return data


def invoice_json(invoice) -> dict:
    data = columns(invoice, INVOICE)
    data["lines"] = [columns(line, LINE) for line in invoice.line_items]
    return data


def project_json(project, who: policy.Principal) -> dict:
    data = columns(project, PROJECT)
    if not policy.may_see_project_money(who, project):
        data["budget_amount"] = data["actual_cost"] = None
    return data
