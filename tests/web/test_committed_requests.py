"""Requests against a database that really commits (no test transaction around them).

The rest of the suite runs each test in one rolled-back transaction, where SET LOCAL outlives a
"commit" (only a savepoint is released). Here every commit is real, so these tests prove that a
contact's later transactions are scoped too, that nothing leaks into the next request, and that
pages which commit and go on reading work for contacts.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from portal import create_app
from portal.extensions import db
from portal.models import Account, SupportTicket
from tests import factories as f
from tests.conftest import Browser
from tests.factories import PASSWORD


@pytest.fixture(scope="module")
def committed(pg):
    name = pg.create_database("techserv_committed")
    app = create_app({"TESTING": True, "SECRET_KEY": "committed", "SQLALCHEMY_DATABASE_URI": pg.url_for(name),
                      "MAIL_BACKEND": "memory"})
    with app.app_context():
        upgrade()
        a, b = f.make_customer(db.session), f.make_customer(db.session)
        people = {
            "contact_a": f.make_contact_login(db.session, customer=a, is_primary_contact=True).email,
            "contact_b": f.make_contact_login(db.session, customer=b).email,
            "contact_reset": f.make_contact_login(db.session, customer=b).email,
            "admin": f.make_staff(db.session, role="admin").email,
        }
        f.make_ticket(db.session, customer=a)
        for _ in range(4):
            f.make_ticket(db.session, customer=b)
        db.session.commit()
        db.session.remove()
    yield app, people
    with app.app_context():
        db.engine.dispose()
    pg.drop_database(name)


def _browser(app):
    return Browser(app.test_client())


def test_contact_changes_password_and_stays_signed_in(committed):
    app, people = committed
    browser = _browser(app)
    browser.sign_in(people["contact_b"])
    browser.get("/account/password")
    response = browser.post("/account/password", {"current_password": PASSWORD,
                                                  "new_password": "maple lantern rocket",
                                                  "confirm": "maple lantern rocket"})
    assert response.status_code == 303
    assert browser.client.get("/portal/").status_code == 200
    browser.post("/logout")
    assert _browser(app).sign_in(people["contact_b"], "maple lantern rocket").headers["Location"] == "/portal/"


def _worker_turn(app) -> int:
    """What the worker does next: run the jobs waiting, each committing (as `flask worker` would)."""
    from tests.conftest import run_due_jobs

    with app.app_context():
        ran = run_due_jobs(app, db.session)
        db.session.commit()
    return ran


def test_the_forgotten_password_pages_change_nothing_for_someone_signed_in(committed):
    app, people = committed
    browser = _browser(app)
    browser.sign_in(people["contact_reset"])
    page = browser.get("/password/forgot")
    assert page.status_code == 200 and "You are signed in as" in page.get_data(as_text=True)
    assert browser.client.get("/portal/").status_code == 200  # a GET signed nobody out
    browser.post("/logout")
    browser.get("/password/forgot")
    response = browser.post("/password/forgot", {"email": people["contact_reset"]})
    assert response.status_code == 303
    outbox = app.extensions["mailer"]["outbox"]
    outbox.clear()
    assert _worker_turn(app) == 1  # the mail goes out from the worker, after the request committed
    link = re.search(r"http://127\.0\.0\.1:5000(/\S+)", outbox[-1].body).group(1)
    browser.sign_in(people["contact_reset"])
    assert "You are signed in as" in browser.get(link).get_data(as_text=True)
    browser.post("/logout")
    assert browser.get(link).status_code == 200  # the form, with this session's token
    response = browser.post(link, {"password": "harbor violet sundial", "confirm": "harbor violet sundial"})
    assert response.status_code == 303


def test_later_transactions_of_a_contact_request_stay_scoped(committed, monkeypatch):
    """The home page's query is replaced by one that commits, then counts without any filter."""
    from portal.services.dashboards import PortalSummary

    def commit_then_count_everything(db_session, principal):
        db_session.commit()
        count = db_session.execute(sa.text("SELECT count(*) FROM support_tickets")).scalar_one()
        return PortalSummary(open_tickets=count, invoices_due=None, phases_awaiting=None)

    app, people = committed
    monkeypatch.setattr("portal.web.portal.tickets.portal_summary", commit_then_count_everything)
    browser = _browser(app)
    browser.sign_in(people["contact_a"])
    page = browser.get("/portal/").get_data(as_text=True)
    assert '<dd class="stat__value"><a href="/portal/tickets">1</a></dd>' in page  # A's one ticket; B's four stay invisible

    # Nothing of the contact's scope is left on the pooled connection for the next request.
    admin = _browser(app)
    admin.sign_in(people["admin"])
    assert admin.get("/staff/people").status_code == 200
    with app.app_context():
        assert db.session.execute(sa.text("SELECT current_user, current_setting('portal.customer_id', true)")
                                  ).one()[1] in (None, "")
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SupportTicket)) == 5


def test_a_copied_cookie_stops_working_at_sign_out(committed):
    app, people = committed
    browser = _browser(app)
    browser.sign_in(people["admin"])
    stolen = browser.client.get_cookie("session").value
    browser.post("/logout")
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    response = thief.get("/staff/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_nul_character_is_a_clear_400(committed):
    app, people = committed
    browser = _browser(app)
    browser.get("/login")
    response = browser.post("/login", {"email": "a\x00b@example.com", "password": "x"})
    assert response.status_code == 400
    assert "character that is not allowed" in response.get_data(as_text=True)


def test_absurd_page_numbers_are_clamped(committed):
    app, people = committed
    browser = _browser(app)
    browser.sign_in(people["admin"])
    assert browser.client.get("/staff/people?page=100000000000000000000").status_code == 200


def test_invitation_refused_when_another_login_has_the_email(committed):
    app, people = committed
    with app.app_context():
        customer = f.make_customer(db.session)
        twin = f.make_contact(db.session, customer=customer, email=people["admin"].upper())
        db.session.commit()
        twin_id = twin.contact_id
    browser = _browser(app)
    browser.sign_in(people["admin"])
    browser.get("/staff/people")
    response = browser.post(f"/staff/people/contacts/{twin_id}/invite")
    assert response.status_code == 422
    assert "Another login already uses" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Account).where(
            Account.contact_id == twin_id)) == 0
