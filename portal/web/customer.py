"""The customer portal (/portal): what a contact sees."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, flash, g, redirect, request, url_for

from portal.extensions import db
from portal.models import TicketCategory, TicketPriority
from portal.services import attachments, policy, tickets
from portal.services.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from portal.services.sla import sla_state
from portal.services.dashboards import portal_summary
from portal.services.tenancy import apply_contact_scope
from portal.web.files import attachment_storage, download_ticket_attachment
from portal.web.rendering import is_htmx, render, with_toast
from portal.web.security import client_ip, current_principal, require

bp = Blueprint("portal", __name__, url_prefix="/portal")


@bp.get("/")
@require(policy.may_use_portal)
def home():
    principal = current_principal()
    now = _now()
    return render("portal/home.html", summary=portal_summary(db.session, principal), now=now,
                  may_open=policy.may_open_ticket(principal),
                  sla_of=lambda ticket: sla_state(ticket, now))


# --- tickets -----------------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(UTC)


def _uploads() -> list[attachments.Upload]:
    return [attachments.Upload(f.filename or "", f.stream) for f in request.files.getlist("attachments")]


@bp.get("/tickets", endpoint="tickets")
@require(policy.may_use_portal)
def ticket_list():
    principal = current_principal()
    filters = tickets.PortalTicketFilters.from_args(request.args)
    page = tickets.contact_tickets(db.session, principal, filters, now=_now())
    return render("portal/tickets/list.html", block="ticket_results", page=page, filters=filters,
                  statuses=tickets.PORTAL_STATUSES, may_open=policy.may_open_ticket(principal),
                  company_wide=policy.may_see_all_company_tickets(principal))


@bp.route("/tickets/new", methods=["GET", "POST"])
@require(policy.may_open_ticket)
def new_ticket():
    principal = current_principal()
    form = request.form.to_dict() if request.method == "POST" else {"priority": "medium"}
    errors: dict[str, str] = {}
    if request.method == "POST":
        data = tickets.NewTicket(title=form.get("title", ""), description=form.get("description", ""),
                                 category=form.get("category", ""), priority=form.get("priority", "medium"))
        chosen_files = any(f.filename for f in request.files.getlist("attachments"))
        try:
            try:
                files = attachments.check_all(_uploads())
            except Invalid as error:
                # Say what is wrong with the fields too, without opening the ticket (no number used up).
                raise Invalid(error.message, "attachments",
                              {**tickets.ticket_field_errors(data), "attachments": error.message}) from None
            ticket = tickets.open_ticket(db.session, principal, data, now=_now(), ip=client_ip())
            attachments.attach(db.session, attachment_storage(), principal, ticket, files)
            db.session.commit()
        except DomainError as error:
            db.session.rollback()  # also deletes any file already stored
            if isinstance(error, Forbidden):
                abort(403, description=error.message)
            errors = error.errors or {error.field or "title": error.message}
            if chosen_files and "attachments" not in errors:
                errors["attachments"] = "Choose your files again: a browser cannot keep them after a mistake."
        else:
            flash(f"Ticket {ticket.ticket_number} is open. We will answer here and by email.", "success")
            return redirect(url_for("portal.show_ticket", ticket_id=ticket.ticket_id), code=303)
    return render("portal/tickets/new.html", form=form, errors=errors, categories=list(TicketCategory),
                  priorities=list(TicketPriority), accept=attachments.ACCEPT, max_files=attachments.MAX_FILES,
                  kinds=attachments.KINDS_IN_WORDS, status=422 if errors else 200)


def _visible(ticket_id: int, lock: bool = False):
    try:
        return tickets.visible_ticket(db.session, current_principal(), ticket_id, lock=lock)
    except NotFound:
        abort(404)


def _ticket_page(ticket, *, error: DomainError | None = None, form: dict | None = None, status: int = 200):
    """The ticket as the customer sees it: the public conversation only, never internal notes."""
    principal = current_principal()
    now = _now()
    files = attachments.ticket_attachments(db.session, ticket.ticket_id,
                                           include_internal=policy.may_see_internal_notes(principal))
    by_comment: dict = {}
    for row in files:
        by_comment.setdefault(row.comment_id, []).append(row)
    return render("portal/ticket.html", block="ticket_main", status=status, ticket=ticket,
                  replies=tickets.public_conversation(db.session, ticket.ticket_id), files=by_comment, now=now,
                  assignee=tickets.assignee_name(db.session, ticket),
                  sla=sla_state(ticket, now), error=error, form=form or {},
                  may_reply=policy.may_reply_to_ticket(principal, ticket),
                  may_open=policy.may_open_ticket(principal),
                  may_rate=policy.may_rate_ticket(principal, ticket), accept=attachments.ACCEPT,
                  max_files=attachments.MAX_FILES, kinds=attachments.KINDS_IN_WORDS)


@bp.get("/tickets/<int:ticket_id>")
@require(policy.may_use_portal)
def show_ticket(ticket_id: int):
    return _ticket_page(_visible(ticket_id))


def _after_ticket_change(ticket_id: int, message: str, error: DomainError | None = None):
    """A change's answer: the ticket panel for htmx, a redirect for a plain form (or the page with the error)."""
    if error is None:
        db.session.commit()
        if not is_htmx():
            flash(message, "success")
            return redirect(url_for("portal.show_ticket", ticket_id=ticket_id), code=303)
        return with_toast(_ticket_page(_visible(ticket_id)), message)
    db.session.rollback()
    if isinstance(error, Forbidden):
        abort(403, description=error.message)
    response = _ticket_page(_visible(ticket_id), error=error, form=request.form.to_dict(),
                            status=409 if isinstance(error, Conflict) else 422)
    return with_toast(response, error.message, "error")


@bp.post("/tickets/<int:ticket_id>/replies")
@require(policy.may_use_portal)
def reply_to_ticket(ticket_id: int):
    principal = current_principal()
    ticket = _visible(ticket_id, lock=True)
    try:
        files = attachments.check_all(_uploads())
        comment = tickets.add_comment(db.session, principal, ticket, request.form.get("body", ""), now=_now(),
                                      ip=client_ip())
        attachments.attach(db.session, attachment_storage(), principal, ticket, files, comment=comment)
    except DomainError as error:
        return _after_ticket_change(ticket_id, "", error)  # its rollback deletes any file already stored
    return _after_ticket_change(ticket_id, "Reply sent. We will answer here and by email.")


@bp.post("/tickets/<int:ticket_id>/rating")
@require(policy.may_use_portal)
def rate_ticket(ticket_id: int):
    ticket = _visible(ticket_id, lock=True)
    try:
        tickets.rate_ticket(db.session, current_principal(), ticket, request.form.get("customer_satisfaction"),
                            request.form.get("satisfaction_comment"), now=_now(), ip=client_ip())
    except DomainError as error:
        return _after_ticket_change(ticket_id, "", error)
    return _after_ticket_change(ticket_id, "Thank you for rating our work.")


@bp.get("/tickets/<int:ticket_id>/attachments/<int:attachment_id>")
@require(policy.may_use_portal)
def download_attachment(ticket_id: int, attachment_id: int):
    return download_ticket_attachment(_visible(ticket_id), attachment_id)


def upload_refused_page():
    """The form page again, with the reason beside the file field, for an upload over the request limit.

    The request was refused before its body was read (413), so neither the CSRF check nor the
    session rules ran and nothing typed can be kept; this checks what the page itself needs. None
    when it does not apply (the app's plain 413 page answers then).
    """
    principal = current_principal()
    if principal is None or not principal.is_contact or principal.read_only:
        return None
    g.tenant = (principal.customer_id, principal.contact_id)  # the scope every contact's request runs in
    apply_contact_scope(db.session, *g.tenant)
    if request.endpoint == "portal.new_ticket" and policy.may_open_ticket(principal):
        return render("portal/tickets/new.html", form={"priority": "medium"},
                      errors={"attachments": attachments.TOO_LARGE_FOR_NEW_TICKET}, categories=list(TicketCategory),
                      priorities=list(TicketPriority), accept=attachments.ACCEPT, max_files=attachments.MAX_FILES,
                      kinds=attachments.KINDS_IN_WORDS, status=413)
    if request.endpoint == "portal.reply_to_ticket":
        try:
            ticket = tickets.visible_ticket(db.session, principal, request.view_args["ticket_id"])
        except NotFound:
            return None
        return _ticket_page(ticket, error=Invalid(attachments.TOO_LARGE_FOR_REPLY, "attachments"), status=413)
    return None


# The portal's other pages register their routes on this same blueprint.
from portal.web import portal_account, portal_invoices, portal_projects  # noqa: E402,F401
