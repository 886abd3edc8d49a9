"""The customer portal (/portal): what a contact sees."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort

from portal.extensions import db
from portal.services import policy, tickets
from portal.services.errors import NotFound
from portal.services.sla import sla_state
from portal.services.dashboards import portal_summary
from portal.web.rendering import render
from portal.web.security import current_principal, require

bp = Blueprint("portal", __name__, url_prefix="/portal")


@bp.get("/")
@require(policy.may_use_portal)
def home():
    principal = current_principal()
    return render("portal/home.html", summary=portal_summary(db.session, principal))


@bp.get("/tickets/<int:ticket_id>")
@require(policy.may_use_portal)
def show_ticket(ticket_id: int):
    """A ticket as the customer sees it: the public conversation only, never internal notes."""
    principal = current_principal()
    try:
        ticket = tickets.visible_ticket(db.session, principal, ticket_id)
    except NotFound:
        abort(404)
    replies = tickets.public_conversation(db.session, ticket_id)
    return render("portal/ticket.html", ticket=ticket, replies=replies, now=datetime.now(UTC),
                  sla=sla_state(ticket, datetime.now(UTC)))


# The portal's other pages register their routes on this same blueprint.
from portal.web import portal_account, portal_invoices, portal_projects  # noqa: E402,F401
