"""The staff ticket queue and working a ticket (/staff/tickets).

Every action answers in place for htmx (the updated fragment, a toast in HX-Trigger) and with a
redirect for a plain form post; a change to a ticket that moved on meanwhile answers 409 with
the ticket as it is now.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, request, url_for

from portal.extensions import db
from portal.models import TicketCategory, TicketPriority, WorkCategory
from portal.services import attachments, choices, clock, policy, tickets
from portal.services.history import ticket_history
from portal.services.queue import ASSIGNEES, SLA_STATES, SORTS, QueueFilters, queue_row, staff_queue
from portal.services.sla import coverage_label, sla_state
from portal.services.timesheets import NewTimeEntry, log_time, ticket_time
from portal.web.errors import error_page
from portal.web.files import download_ticket_attachment
from portal.web.forms import (
    AssignForm,
    BulkForm,
    CommentForm,
    DetailsForm,
    NewTicketForm,
    StatusForm,
    TimeEntryForm,
    page_form,
    parse,
)
from portal.web.rendering import after_change, is_htmx, render, with_toast
from portal.web.security import current_principal, require

bp = Blueprint("tickets", __name__, url_prefix="/staff/tickets")
# The fields of the ticket page's time form: an error on one of them belongs beside it there.
TIME_FIELDS = frozenset(("work_date", "hours", "start_time", "end_time", "work_category", "is_billable",
                         "description"))


# --- the queue -------------------------------------------------------------------------------

def _queue_context(filters: QueueFilters, since: datetime | None):
    principal = current_principal()
    now = clock.now()
    may_bulk = policy.may_bulk_update_tickets(principal)
    return {
        "queue": staff_queue(db.session, principal, filters, now=now), "filters": filters, "now": now,
        "since": since, "customer_q": request.args.get("customer_q", "").strip()[:100],
        # The filter form is not part of an htmx refresh of the results: its choices only for the page.
        "customer_filter": None if is_htmx() else choices.customer_filter(
            db.session, request.args.get("customer_q", ""), selected=filters.customer_id),
        "technicians": choices.ticket_workers(db.session) if may_bulk else [], "sorts": SORTS,
        "sla_states": SLA_STATES, "assignees": ASSIGNEES,
        "statuses": [s for s in tickets.STAFF_MOVES if s.value != "closed"],
        "priorities": list(TicketPriority), "categories": list(TicketCategory),
        "may_bulk": may_bulk, "may_work": policy.may_work_tickets(principal),
        "may_open": policy.may_open_ticket_for_customer(principal),
    }


def _since(raw: str | None) -> datetime | None:
    try:
        since = datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None
    return since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since


@bp.get("/")
@require(policy.may_view_queue)
def queue():
    return render("staff/tickets/queue.html", block="queue_results",
                  **_queue_context(QueueFilters.from_args(request.args), _since(request.args.get("since"))))


def _queue_row(ticket_id: int):
    principal = current_principal()
    now = clock.now()
    return render("staff/tickets/_queue_row.html", row=queue_row(db.session, ticket_id, now=now), now=now,
                  since=None, may_bulk=policy.may_bulk_update_tickets(principal),
                  may_work=policy.may_work_tickets(principal))


def _queue_row_error(error, ticket_id: int):
    if is_htmx():
        return _queue_row(ticket_id)
    return _ticket_page(ticket_id, error=error)


@bp.post("/<int:ticket_id>/take")
@require(policy.may_work_tickets)
@error_page(_queue_row_error)
def take_ticket(ticket_id: int):
    principal = current_principal()
    form = parse(AssignForm)
    ticket = tickets.visible_ticket(db.session, principal, ticket_id, lock=True)
    tickets.assign(db.session, principal, ticket, principal.employee_id, expected_version=form.version.data)
    return after_change(f"{ticket.ticket_number} is yours.", url_for("tickets.show_ticket", ticket_id=ticket_id),
                        lambda: _queue_row(ticket_id))


def _queue_results(message: str | None = None, level: str = "success", error=None):
    filters = QueueFilters.from_args(request.args)
    response = render("staff/tickets/queue.html", block="queue_results", bulk_error=error,
                      **_queue_context(filters, None))
    return with_toast(response, message, level) if message and is_htmx() else response


@bp.post("/bulk")
@require(policy.may_bulk_update_tickets)
@error_page(lambda error: _queue_results(error=error))
def bulk_update_tickets():
    form = parse(BulkForm)
    changed, skipped = tickets.bulk_update(db.session, current_principal(), form.ticket_ids.data, form.action.data,
                                           form.value.data, resolution_notes=form.resolution_notes.data)
    message = f"{changed} ticket{'s' if changed != 1 else ''} changed."
    if skipped:
        message += " Not changed: " + "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
    if not is_htmx():
        return after_change(message, url_for("tickets.queue", **QueueFilters.from_args(request.args).as_args()))
    return _queue_results(message, "success" if changed else "error")


# --- one ticket --------------------------------------------------------------------------------

def _ticket_page(ticket_id: int, *, error=None):
    """The whole ticket page, or its main panel for htmx; with `error`, the message beside its form."""
    principal = current_principal()
    now = clock.now()
    ticket = tickets.staff_ticket(db.session, principal, ticket_id)
    approved, pending, entries = ticket_time(db.session, ticket_id)
    may_assign_anyone = policy.may_assign_to_anyone(principal)
    return render(
        "staff/tickets/ticket.html", block="ticket_main",
        ticket=ticket, now=now, sla=sla_state(ticket, now), moves=tickets.allowed_moves(principal, ticket),
        coverage=coverage_label(ticket.contract, ticket.customer.timezone),
        move_labels=tickets.MOVE_LABELS, may_update=policy.may_update_ticket(principal, ticket),
        may_work=policy.may_work_tickets(principal), may_write=policy.may_write_on_ticket(principal, ticket),
        may_reassign=policy.may_reassign_ticket(principal, ticket),
        may_take=policy.may_take_ticket(principal, ticket),
        technicians=choices.ticket_workers(db.session) if may_assign_anyone else [],
        time_approved=approved, time_pending=pending, time_entries=entries,
        history=ticket_history(db.session, ticket_id),
        priorities=list(TicketPriority),
        error=error, form=request.form.to_dict() if error else {},
        time_form=page_form(TimeEntryForm, error if error and error.field in TIME_FIELDS else None,
                            data={"work_date": clock.today(now)}),
        attachments=attachments.ticket_attachments(db.session, ticket_id,
                                                   include_internal=policy.may_see_internal_notes(principal)))


def _ticket_changed(ticket_id: int, message: str):
    return after_change(message, url_for("tickets.show_ticket", ticket_id=ticket_id),
                        lambda: _ticket_page(ticket_id))


def _locked(ticket_id: int):
    return tickets.visible_ticket(db.session, current_principal(), ticket_id, lock=True)


@bp.get("/<int:ticket_id>")
@require(policy.may_view_queue)
def show_ticket(ticket_id: int):
    return _ticket_page(ticket_id)


@bp.get("/<int:ticket_id>/attachments/<int:attachment_id>")
@require(policy.may_view_queue)
def download_attachment(ticket_id: int, attachment_id: int):
    return download_ticket_attachment(tickets.visible_ticket(db.session, current_principal(), ticket_id),
                                      attachment_id)


def _ticket_error(error, ticket_id: int):
    return _ticket_page(ticket_id, error=error)


@bp.post("/<int:ticket_id>/status")
@require(policy.may_work_tickets)
@error_page(_ticket_error)
def change_ticket_status(ticket_id: int):
    form = parse(StatusForm)
    ticket = tickets.change_status(db.session, current_principal(), _locked(ticket_id), form.status.data,
                                   expected_version=form.version.data, resolution_notes=form.resolution_notes.data,
                                   message=form.message.data)
    return _ticket_changed(ticket_id, f"{ticket.ticket_number} is now {ticket.status.value.replace('_', ' ')}.")


@bp.post("/<int:ticket_id>/assign")
@require(policy.may_work_tickets)
@error_page(_ticket_error)
def assign_ticket(ticket_id: int):
    form = parse(AssignForm)
    tickets.assign(db.session, current_principal(), _locked(ticket_id), form.assigned_employee_id.data,
                   expected_version=form.version.data)
    return _ticket_changed(ticket_id, "Assignment saved.")


@bp.post("/<int:ticket_id>/details")
@require(policy.may_work_tickets)
@error_page(_ticket_error)
def update_ticket_details(ticket_id: int):
    form = parse(DetailsForm)
    tickets.update_details(db.session, current_principal(), _locked(ticket_id), priority=form.priority.data,
                           estimated_hours=form.estimated_hours.data, expected_version=form.version.data)
    return _ticket_changed(ticket_id, "Details saved.")


@bp.post("/<int:ticket_id>/comments")
@require(policy.may_work_tickets)
@error_page(_ticket_error)
def add_ticket_comment(ticket_id: int):
    form = parse(CommentForm)
    tickets.add_comment(db.session, current_principal(), _locked(ticket_id), form.body.data,
                        internal=form.internal.data)
    return _ticket_changed(ticket_id, "Internal note added." if form.internal.data else "Reply sent to the customer.")


@bp.post("/<int:ticket_id>/time")
@require(policy.may_work_tickets)
@error_page(_ticket_error)
def log_ticket_time(ticket_id: int):
    form = parse(TimeEntryForm)
    tickets.visible_ticket(db.session, current_principal(), ticket_id)
    entry = log_time(db.session, current_principal(), NewTimeEntry(
        work_date=form.work_date.data, hours=form.hours.data, start_time=form.start_time.data,
        end_time=form.end_time.data, work_category=form.work_category.data or WorkCategory.SUPPORT,
        is_billable=form.is_billable.data, description=form.description.data, ticket_id=ticket_id))
    return _ticket_changed(ticket_id, f"{entry.hours_worked.normalize():f} h logged, waiting for approval.")


# --- opening a ticket for a customer ---------------------------------------------------------

def _new_ticket_page(error=None):
    form = request.form.to_dict() if request.method == "POST" else {}
    customer_id = request.form.get("customer_id", type=int) if request.method == "POST" else None
    return render("staff/tickets/new.html", form=form, error=error, errors=error.errors if error else {},
                  ticket_form=page_form(NewTicketForm, error),
                  customers=choices.customers(db.session, form.get("customer_q", ""), limit=choices.CUSTOMER_LIMIT),
                  contacts=choices.contacts_of(db.session, customer_id))


def _new_ticket(form: NewTicketForm) -> tickets.NewTicket:
    return tickets.NewTicket(title=form.title.data, description=form.description.data, category=form.category.data,
                             priority=form.priority.data, customer_id=form.customer_id.data,
                             contact_id=form.contact_id.data)


@bp.route("/new", methods=["GET", "POST"])
@require(policy.may_open_ticket_for_customer)
@error_page(lambda error: _new_ticket_page(error))
def new_ticket():
    if request.method == "GET":
        return _new_ticket_page()
    form = parse(NewTicketForm, rules=lambda form: tickets.ticket_field_errors(_new_ticket(form)))
    ticket = tickets.open_ticket(db.session, current_principal(), _new_ticket(form))
    return after_change(f"Ticket {ticket.ticket_number} is open.", url_for("tickets.show_ticket",
                                                                           ticket_id=ticket.ticket_id))


@bp.get("/pickers/customers")
@require(policy.may_open_ticket_for_customer)
def customer_picker():
    """The customer choices matching what was typed (htmx active search)."""
    return render("staff/tickets/_customer_options.html",
                  customers=choices.customers(db.session, request.args.get("customer_q", ""),
                                              limit=choices.CUSTOMER_LIMIT),
                  selected=request.args.get("customer_id"))


@bp.get("/pickers/contacts")
@require(policy.may_open_ticket_for_customer)
def contact_picker():
    """The chosen customer's contacts."""
    return render("staff/tickets/_contact_options.html",
                  contacts=choices.contacts_of(db.session, request.args.get("customer_id", type=int)))
