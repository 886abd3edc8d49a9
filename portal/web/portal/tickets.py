"""The portal's home and tickets: a contact's open work, asking for help, the conversation, a rating."""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for

from portal import UPLOAD_ENDPOINTS
from portal.extensions import db
from portal.services import attachments, clock, policy, tickets
from portal.services.dashboards import portal_summary
from portal.services.errors import Invalid, NotFound
from portal.services.tenancy import apply_contact_scope
from portal.services.sla import sla_state
from portal.web.errors import error_page
from portal.web.files import attachment_storage, download_ticket_attachment
from portal.web.forms import NewTicketForm, RatingForm, ReplyForm, page_form, parse
from portal.web.portal.blueprint import bp
from portal.web.rendering import after_change, render
from portal.web.security import current_principal, require


@bp.get("/")
@require(policy.may_use_portal)
def home():
    principal = current_principal()
    now = clock.now()
    return render("portal/home.html", summary=portal_summary(db.session, principal), now=now,
                  may_open=policy.may_open_ticket(principal),
                  sla_of=lambda ticket: sla_state(ticket, now))


def _uploads() -> list[attachments.Upload]:
    return [attachments.Upload(f.filename or "", f.stream) for f in request.files.getlist("attachments")]


@bp.get("/tickets", endpoint="tickets")
@require(policy.may_use_portal)
def ticket_list():
    principal = current_principal()
    filters = tickets.PortalTicketFilters.from_args(request.args)
    page = tickets.contact_tickets(db.session, principal, filters, now=clock.now())
    return render("portal/tickets/list.html", block="ticket_results", page=page, filters=filters,
                  statuses=tickets.PORTAL_STATUSES, may_open=policy.may_open_ticket(principal),
                  company_wide=policy.may_see_all_company_tickets(principal))


def _new_ticket_page(error=None, keep_form: bool = True):
    errors = dict(error.errors or {error.field or "title": error.message}) if error else {}
    if error and keep_form and any(f.filename for f in request.files.getlist("attachments")) \
            and "attachments" not in errors:
        errors["attachments"] = "Choose your files again: a browser cannot keep them after a mistake."
    return render("portal/tickets/new.html", ticket_form=page_form(NewTicketForm, error if keep_form else None),
                  errors=errors, accept=attachments.ACCEPT, max_files=attachments.MAX_FILES,
                  kinds=attachments.KINDS_IN_WORDS)


def _new_ticket(form: NewTicketForm) -> tickets.NewTicket:
    return tickets.NewTicket(title=form.title.data, description=form.description.data,
                             category=form.category.data, priority=form.priority.data)


@bp.route("/tickets/new", methods=["GET", "POST"])
@require(policy.may_open_ticket)
@error_page(lambda error: _new_ticket_page(error))
def new_ticket():
    if request.method == "GET":
        return _new_ticket_page()
    form = parse(NewTicketForm, rules=lambda form: tickets.ticket_field_errors(_new_ticket(form)))
    data = _new_ticket(form)
    ticket = attachments.open_ticket_with_files(db.session, attachment_storage(), current_principal(), data,
                                                _uploads())
    flash(f"Ticket {ticket.ticket_number} is open. We will answer here and by email.", "success")
    return redirect(url_for("portal.show_ticket", ticket_id=ticket.ticket_id), code=303)


def _ticket_page(ticket_id: int, error=None, keep_form: bool = True):
    """The ticket as the customer sees it: the public conversation only, never internal notes."""
    principal = current_principal()
    ticket = tickets.visible_ticket(db.session, principal, ticket_id)
    now = clock.now()
    files = attachments.ticket_attachments(db.session, ticket.ticket_id,
                                           include_internal=policy.may_see_internal_notes(principal))
    by_comment: dict = {}
    for row in files:
        by_comment.setdefault(row.comment_id, []).append(row)
    return render("portal/ticket.html", block="ticket_main", ticket=ticket,
                  replies=tickets.public_conversation(db.session, ticket.ticket_id), files=by_comment, now=now,
                  assignee=tickets.assignee_name(db.session, ticket),
                  sla=sla_state(ticket, now), error=error, form=request.form.to_dict() if error and keep_form else {},
                  may_reply=policy.may_reply_to_ticket(principal, ticket),
                  may_open=policy.may_open_ticket(principal),
                  may_rate=policy.may_rate_ticket(principal, ticket), accept=attachments.ACCEPT,
                  max_files=attachments.MAX_FILES, kinds=attachments.KINDS_IN_WORDS)


def _ticket_changed(ticket_id: int, message: str):
    return after_change(message, url_for("portal.show_ticket", ticket_id=ticket_id),
                        lambda: _ticket_page(ticket_id))


@bp.get("/tickets/<int:ticket_id>")
@require(policy.may_use_portal)
def show_ticket(ticket_id: int):
    return _ticket_page(ticket_id)


@bp.post("/tickets/<int:ticket_id>/replies")
@require(policy.may_use_portal)
@error_page(lambda error, ticket_id: _ticket_page(ticket_id, error))
def reply_to_ticket(ticket_id: int):
    principal = current_principal()
    form = parse(ReplyForm)
    ticket = tickets.visible_ticket(db.session, principal, ticket_id, lock=True)
    attachments.reply_with_files(db.session, attachment_storage(), principal, ticket, form.body.data, _uploads())
    return _ticket_changed(ticket_id, "Reply sent. We will answer here and by email.")


@bp.post("/tickets/<int:ticket_id>/rating")
@require(policy.may_use_portal)
@error_page(lambda error, ticket_id: _ticket_page(ticket_id, error))
def rate_ticket(ticket_id: int):
    principal = current_principal()
    form = parse(RatingForm)
    ticket = tickets.visible_ticket(db.session, principal, ticket_id, lock=True)
    tickets.rate_ticket(db.session, principal, ticket, form.customer_satisfaction.data,
                        form.satisfaction_comment.data)
    return _ticket_changed(ticket_id, "Thank you for rating our work.")


@bp.get("/tickets/<int:ticket_id>/attachments/<int:attachment_id>")
@require(policy.may_use_portal)
def download_attachment(ticket_id: int, attachment_id: int):
    return download_ticket_attachment(tickets.visible_ticket(db.session, current_principal(), ticket_id),
                                      attachment_id)


def upload_refused_page():
    """The form page again, with the reason beside the file field, for an upload over the request limit.

    The request was refused before its body was read (413), so neither the CSRF check nor the
    session rules ran and nothing typed can be kept; this checks what the page itself needs. None
    when it does not apply (the app's plain 413 page answers then).
    """
    principal = current_principal()
    if (request.endpoint not in UPLOAD_ENDPOINTS or principal is None or not principal.is_contact
            or principal.read_only):
        return None
    g.tenant = (principal.customer_id, principal.contact_id)  # the scope every contact's request runs in
    apply_contact_scope(db.session, *g.tenant)
    if request.endpoint == "portal.new_ticket":
        if not policy.may_open_ticket(principal):
            return None
        response = _new_ticket_page(Invalid(attachments.TOO_LARGE_FOR_NEW_TICKET, "attachments"), keep_form=False)
    else:
        try:
            response = _ticket_page(request.view_args["ticket_id"],
                                    Invalid(attachments.TOO_LARGE_FOR_REPLY, "attachments"), keep_form=False)
        except NotFound:
            return None
    response.status_code = 413
    return response
