"""The staff ticket queue and working a ticket (/staff/tickets).

Every action answers in place for htmx (the updated fragment, a toast in HX-Trigger) and with a
redirect for a plain form post; a change to a ticket that moved on meanwhile answers 409 with
the ticket as it is now.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, request, url_for
from sqlalchemy import orm

from portal.extensions import db
from portal.models import (
    Contact,
    Customer,
    Employee,
    EmployeeRole,
    EmploymentStatus,
    SupportTicket,
    TicketCategory,
    TicketComment,
    TicketPriority,
    WorkCategory,
)
from portal.services import attachments, policy, tickets
from portal.services.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from portal.services.history import ticket_history
from portal.services.queue import ASSIGNEES, SLA_STATES, SORTS, QueueFilters, staff_queue
from portal.services.sla import sla_state
from portal.services.timesheets import NewTimeEntry, log_time, ticket_time
from portal.web.files import download_ticket_attachment
from portal.web.rendering import is_htmx, render, with_toast
from portal.web.security import client_ip, current_principal, require

bp = Blueprint("tickets", __name__, url_prefix="/staff/tickets")

WORKERS = (EmployeeRole.TECHNICIAN, EmployeeRole.SENIOR_TECHNICIAN, EmployeeRole.ADMIN)


def _now() -> datetime:
    return datetime.now(UTC)


def _version() -> int | None:
    try:
        return int(request.form.get("version", ""))
    except ValueError:
        return None


STALE_FORM = Invalid("This form is out of date. Reload the page and make your change again.", "version")


# --- the queue -------------------------------------------------------------------------------

def _queue_context(principal, filters: QueueFilters, since: datetime | None):
    now = _now()
    page = staff_queue(db.session, principal, filters, now=now)
    customers = db.session.execute(sa.select(Customer.customer_id, Customer.company_name)
                                   .order_by(Customer.company_name)).all()
    technicians = _technicians() if policy.may_bulk_update_tickets(principal) else []
    return {
        "queue": page, "filters": filters, "now": now, "since": since, "customers": customers,
        "technicians": technicians, "sorts": SORTS, "sla_states": SLA_STATES, "assignees": ASSIGNEES,
        "statuses": [s for s in tickets.STAFF_MOVES if s.value != "closed"],
        "priorities": list(TicketPriority), "categories": list(TicketCategory),
        "may_bulk": policy.may_bulk_update_tickets(principal), "may_work": policy.may_work_tickets(principal),
        "may_open": policy.may_open_ticket_for_customer(principal),
    }


def _technicians():
    return db.session.execute(
        sa.select(Employee.employee_id, Employee.first_name + " " + Employee.last_name)
        .where(Employee.employment_status == EmploymentStatus.ACTIVE, Employee.role.in_(WORKERS))
        .order_by(Employee.first_name)).all()


@bp.get("/")
@require(policy.may_view_queue)
def queue():
    principal = current_principal()
    filters = QueueFilters.from_args(request.args)
    try:
        since = datetime.fromisoformat(request.args["since"]) if request.args.get("since") else None
    except ValueError:
        since = None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return render("staff/tickets/queue.html", block="queue_results", **_queue_context(principal, filters, since))


@bp.post("/<int:ticket_id>/take")
@require(policy.may_work_tickets)
def take_ticket(ticket_id: int):
    principal = current_principal()
    ticket = _staff_ticket(ticket_id, lock=True)
    try:
        tickets.assign(db.session, principal, ticket, principal.employee_id, expected_version=_version(),
                       now=_now(), ip=client_ip())
    except DomainError as error:
        db.session.rollback()
        return _queue_row_error(ticket_id, error)
    db.session.commit()
    if not is_htmx():
        return redirect(url_for("tickets.show_ticket", ticket_id=ticket_id), code=303)
    return with_toast(_queue_row(ticket_id), f"{ticket.ticket_number} is yours.")


def _queue_row(ticket_id: int, status: int = 200):
    principal = current_principal()
    now = _now()
    ticket = db.session.scalar(sa.select(SupportTicket).where(SupportTicket.ticket_id == ticket_id)
                               .options(orm.joinedload(SupportTicket.customer),
                                        orm.joinedload(SupportTicket.assigned_employee)))
    row = {"ticket": ticket, "company_name": ticket.customer.company_name,
           "assignee_name": ticket.assigned_employee.full_name if ticket.assigned_employee else None,
           "sla": sla_state(ticket, now)}
    return render("staff/tickets/_queue_row.html", row=row, now=now, since=None,
                  may_bulk=policy.may_bulk_update_tickets(principal), may_work=policy.may_work_tickets(principal),
                  status=status)


def _queue_row_error(ticket_id: int, error: DomainError):
    if isinstance(error, NotFound):
        abort(404)
    if isinstance(error, Forbidden):
        abort(403, description=error.message)
    if not is_htmx():
        abort(error.status, description=error.message)
    return with_toast(_queue_row(ticket_id, status=409 if isinstance(error, Conflict) else 422), error.message, "error")


@bp.post("/bulk")
@require(policy.may_bulk_update_tickets)
def bulk_update_tickets():
    principal = current_principal()
    ids = []
    for raw in request.form.getlist("ticket_ids"):
        try:
            ids.append(int(raw))
        except ValueError:
            continue
    try:
        changed, skipped = tickets.bulk_update(
            db.session, principal, ids, request.form.get("action", ""), request.form.get("value", ""),
            now=_now(), resolution_notes=request.form.get("resolution_notes"), ip=client_ip())
    except DomainError as error:
        db.session.rollback()
        message, level = error.message, "error"
    else:
        db.session.commit()
        message = f"{changed} ticket{'s' if changed != 1 else ''} changed."
        if skipped:
            message += " Not changed: " + "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        level = "success" if changed else "error"
    filters = QueueFilters.from_args(request.args)
    if not is_htmx():
        return redirect(url_for("tickets.queue", **filters.as_args()), code=303)
    response = render("staff/tickets/queue.html", block="queue_results",
                      **_queue_context(principal, filters, None))
    return with_toast(response, message, level)


# --- one ticket --------------------------------------------------------------------------------

def _staff_ticket(ticket_id: int, lock: bool = False) -> SupportTicket:
    try:
        return tickets.visible_ticket(db.session, current_principal(), ticket_id, lock=lock)
    except NotFound:
        abort(404)


def _ticket_context(ticket_id: int, *, error: DomainError | None = None, form: dict | None = None):
    principal = current_principal()
    now = _now()
    ticket = db.session.scalar(
        sa.select(SupportTicket).where(SupportTicket.ticket_id == ticket_id).options(
            orm.joinedload(SupportTicket.customer), orm.joinedload(SupportTicket.contact),
            orm.joinedload(SupportTicket.contract), orm.joinedload(SupportTicket.assigned_employee),
            orm.selectinload(SupportTicket.comments).joinedload(TicketComment.author_employee),
            orm.selectinload(SupportTicket.comments).joinedload(TicketComment.author_contact)))
    if ticket is None:
        abort(404)
    approved, pending, entries = ticket_time(db.session, ticket_id)
    history = ticket_history(db.session, ticket_id)
    may_update = policy.may_update_ticket(principal, ticket)
    return {
        "ticket": ticket, "now": now, "sla": sla_state(ticket, now), "moves": tickets.allowed_moves(principal, ticket),
        "move_labels": tickets.MOVE_LABELS, "may_update": may_update, "may_work": policy.may_work_tickets(principal),
        "may_assign_anyone": policy.may_assign_to_anyone(principal),
        "may_take": policy.may_take_ticket(principal, ticket),
        "technicians": _technicians() if policy.may_assign_to_anyone(principal) else [],
        "time_approved": approved, "time_pending": pending, "time_entries": entries, "history": history,
        "priorities": list(TicketPriority), "work_categories": list(WorkCategory),
        "error": error, "form": form or {}, "today": now.date().isoformat(),
        "attachments": attachments.ticket_attachments(db.session, ticket_id,
                                                      include_internal=policy.may_see_internal_notes(principal)),
    }


@bp.get("/<int:ticket_id>")
@require(policy.may_view_queue)
def show_ticket(ticket_id: int):
    _staff_ticket(ticket_id)
    return render("staff/tickets/ticket.html", block="ticket_main", **_ticket_context(ticket_id))


@bp.get("/<int:ticket_id>/attachments/<int:attachment_id>")
@require(policy.may_view_queue)
def download_attachment(ticket_id: int, attachment_id: int):
    return download_ticket_attachment(_staff_ticket(ticket_id), attachment_id)


def _after_change(ticket_id: int, message: str, error: DomainError | None = None):
    """The answer to a change: the ticket panel for htmx, a redirect otherwise."""
    if error is None:
        db.session.commit()
        if not is_htmx():
            return redirect(url_for("tickets.show_ticket", ticket_id=ticket_id), code=303)
        response = render("staff/tickets/ticket.html", block="ticket_main", **_ticket_context(ticket_id))
        return with_toast(response, message)
    db.session.rollback()
    if isinstance(error, NotFound):
        abort(404)
    if isinstance(error, Forbidden):
        abort(403, description=error.message)
    status = 409 if isinstance(error, Conflict) else 422
    response = render("staff/tickets/ticket.html", block="ticket_main" if is_htmx() else None, status=status,
                      **_ticket_context(ticket_id, error=error, form=request.form.to_dict()))
    return with_toast(response, error.message, "error")


@bp.post("/<int:ticket_id>/status")
@require(policy.may_work_tickets)
def change_ticket_status(ticket_id: int):
    ticket = _staff_ticket(ticket_id, lock=True)
    to = request.form.get("status", "")
    if _version() is None:
        return _after_change(ticket_id, "", STALE_FORM)
    try:
        tickets.change_status(db.session, current_principal(), ticket, to, expected_version=_version(), now=_now(),
                              resolution_notes=request.form.get("resolution_notes"),
                              message=request.form.get("message"), ip=client_ip())
    except DomainError as error:
        return _after_change(ticket_id, "", error)
    return _after_change(ticket_id, f"{ticket.ticket_number} is now {ticket.status.value.replace('_', ' ')}.")


@bp.post("/<int:ticket_id>/assign")
@require(policy.may_work_tickets)
def assign_ticket(ticket_id: int):
    ticket = _staff_ticket(ticket_id, lock=True)
    if _version() is None:
        return _after_change(ticket_id, "", STALE_FORM)
    raw = request.form.get("assigned_employee_id", "")
    try:
        employee_id = int(raw) if raw else None
    except ValueError:
        employee_id = -1  # no such employee: the service says so
    try:
        tickets.assign(db.session, current_principal(), ticket, employee_id, expected_version=_version(),
                       now=_now(), ip=client_ip())
    except DomainError as error:
        return _after_change(ticket_id, "", error)
    return _after_change(ticket_id, "Assignment saved.")


@bp.post("/<int:ticket_id>/details")
@require(policy.may_work_tickets)
def update_ticket_details(ticket_id: int):
    ticket = _staff_ticket(ticket_id, lock=True)
    if _version() is None:
        return _after_change(ticket_id, "", STALE_FORM)
    try:
        tickets.update_details(db.session, current_principal(), ticket, priority=request.form.get("priority"),
                               estimated_hours=request.form.get("estimated_hours"), expected_version=_version(),
                               now=_now(), ip=client_ip())
    except DomainError as error:
        return _after_change(ticket_id, "", error)
    return _after_change(ticket_id, "Details saved.")


@bp.post("/<int:ticket_id>/comments")
@require(policy.may_work_tickets)
def add_ticket_comment(ticket_id: int):
    ticket = _staff_ticket(ticket_id, lock=True)
    internal = request.form.get("internal") == "1"
    try:
        tickets.add_comment(db.session, current_principal(), ticket, request.form.get("body", ""),
                            internal=internal, now=_now(), ip=client_ip())
    except DomainError as error:
        return _after_change(ticket_id, "", error)
    return _after_change(ticket_id, "Internal note added." if internal else "Reply sent to the customer.")


@bp.post("/<int:ticket_id>/time")
@require(policy.may_work_tickets)
def log_ticket_time(ticket_id: int):
    _staff_ticket(ticket_id)
    form = request.form
    data = NewTimeEntry(work_date=form.get("work_date", ""), hours=form.get("hours", ""),
                        start_time=form.get("start_time", ""), end_time=form.get("end_time", ""),
                        work_category=form.get("work_category", "support"), is_billable=form.get("is_billable") == "1",
                        description=form.get("description", ""), ticket_id=ticket_id)
    try:
        entry = log_time(db.session, current_principal(), data, now=_now(), ip=client_ip())
    except DomainError as error:
        return _after_change(ticket_id, "", error)
    return _after_change(ticket_id, f"{entry.hours_worked.normalize():f} h logged, waiting for approval.")


# --- opening a ticket for a customer ---------------------------------------------------------

@bp.route("/new", methods=["GET", "POST"])
@require(policy.may_open_ticket_for_customer)
def new_ticket():
    principal = current_principal()
    error = None
    form = request.form.to_dict() if request.method == "POST" else {"priority": "medium"}
    if request.method == "POST":
        def as_int(name):
            try:
                return int(form.get(name, ""))
            except ValueError:
                return None

        data = tickets.NewTicket(title=form.get("title", ""), description=form.get("description", ""),
                                 category=form.get("category", ""), priority=form.get("priority", "medium"),
                                 customer_id=as_int("customer_id"), contact_id=as_int("contact_id"))
        try:
            ticket = tickets.open_ticket(db.session, principal, data, now=_now(), ip=client_ip())
        except DomainError as exc:
            db.session.rollback()
            if isinstance(exc, Forbidden):
                abort(403, description=exc.message)
            error = exc
        else:
            db.session.commit()
            return redirect(url_for("tickets.show_ticket", ticket_id=ticket.ticket_id), code=303)
    customer_id = form.get("customer_id")
    return render("staff/tickets/new.html", form=form, error=error, errors=error.errors if error else {},
                  customers=_customer_options(form.get("customer_q", "")),
                  contacts=_contact_options(customer_id), categories=list(TicketCategory),
                  priorities=list(TicketPriority), status=422 if error else 200)


def _customer_options(q: str):
    query = sa.select(Customer.customer_id, Customer.company_name).order_by(Customer.company_name).limit(50)
    if q.strip():
        query = query.where(Customer.company_name.ilike(f"%{q.strip()[:100]}%"))
    return db.session.execute(query).all()


def _contact_options(customer_id):
    try:
        customer_id = int(customer_id)
    except (TypeError, ValueError):
        return []
    return db.session.execute(
        sa.select(Contact.contact_id, Contact.first_name + " " + Contact.last_name, Contact.email)
        .where(Contact.customer_id == customer_id).order_by(Contact.last_name)).all()


@bp.get("/pickers/customers")
@require(policy.may_open_ticket_for_customer)
def customer_picker():
    """The customer choices matching what was typed (htmx active search)."""
    return render("staff/tickets/_customer_options.html", customers=_customer_options(request.args.get("customer_q", "")),
                  selected=request.args.get("customer_id"))


@bp.get("/pickers/contacts")
@require(policy.may_open_ticket_for_customer)
def contact_picker():
    """The chosen customer's contacts."""
    return render("staff/tickets/_contact_options.html", contacts=_contact_options(request.args.get("customer_id")))
