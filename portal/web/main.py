"""The demo's home page: what is in the database (until the login and portal issues land)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint

from portal.extensions import db
from portal.services.overview import database_overview
from portal.web.rendering import render

bp = Blueprint("main", __name__)


@bp.get("/")
def home():
    overview = database_overview(db.session, date.today())
    return render("main/home.html", overview=overview, today=date.today())


@bp.get("/healthz")
def healthz():
    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}
