"""The customer portal (/portal): what a contact sees."""

from __future__ import annotations

from flask import Blueprint

from portal.extensions import db
from portal.services import policy
from portal.services.dashboards import portal_summary
from portal.web.rendering import render
from portal.web.security import current_principal, require

bp = Blueprint("portal", __name__, url_prefix="/portal")


@bp.get("/")
@require(policy.may_use_portal)
def home():
    principal = current_principal()
    return render("portal/home.html", summary=portal_summary(db.session, principal))
