"""The site's front door and the health check."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for

from portal.extensions import db
from portal.web.security import current_principal, home_for

bp = Blueprint("main", __name__)


@bp.get("/")
def home():
    """Signed-in people go to their home (portal or staff), everyone else to the sign-in page."""
    principal = current_principal()
    return redirect(home_for(principal) if principal else url_for("auth.login"))


@bp.get("/healthz")
def healthz():
    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}
