"""The site's front door, the health check (the process and its database) and the readiness check."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, url_for

from portal.extensions import db
from portal.services import readiness
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


@bp.get("/readyz")
def readyz():
    """Ready to serve: the database answers, a worker's heartbeat is recent, the schema is the code's
    head and the encryption keys open the stored secrets. 503 names what is not."""
    report = readiness.check(db.session, current_app)
    body = {"status": "ready" if report.ready else "not ready",
            "checks": {check.name: "ok" if check.ok else check.detail for check in report.checks}}
    return body, 200 if report.ready else 503, {"Cache-Control": "no-store"}
