"""Sign-in pages as a person uses them: forms, redirects, messages, sessions, CSRF, two-factor."""

from __future__ import annotations

import re
import time

import pyotp
import sqlalchemy as sa

from portal.models import Account, AuditEvent
from tests import factories as f
from tests.factories import PASSWORD


def _actions(session):
    return [e.action for e in session.scalars(sa.select(AuditEvent).order_by(AuditEvent.event_id))]


def test_contact_lands_on_the_portal_and_employee_on_staff(browser, other_browser, session):
    contact = f.make_contact_login(session)
    employee = f.make_staff(session)
    response = browser.sign_in(contact.email)
    assert response.status_code == 302 and response.headers["Location"] == "/portal/"
    assert "Welcome, " + contact.full_name in browser.get("/portal/").get_data(as_text=True)
    response = other_browser.sign_in(employee.email.upper())
    assert response.headers["Location"] == "/staff/"


def test_wrong_password_shows_the_generic_message_and_keeps_the_email(browser, session):
    employee = f.make_staff(session)
    browser.get("/login")
    response = browser.post("/login", {"email": employee.email, "password": "nope"})
    page = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "The email or password is wrong." in page and employee.email in page
    assert "login.failed" in _actions(session)


def test_empty_form_gets_messages_beside_the_fields(browser):
    browser.get("/login")
    response = browser.post("/login", {"email": "", "password": ""})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter your email address." in page and "Enter your password." in page


def test_post_without_csrf_token_is_refused_and_changes_nothing(browser, session):
    employee = f.make_staff(session)
    response = browser.post("/login", {"email": employee.email, "password": "wrong"}, csrf=False)
    assert response.status_code == 400
    assert "The form had expired" in response.get_data(as_text=True)
    assert session.scalar(sa.select(Account.failed_login_count).where(Account.email == employee.email)) == 0


def test_htmx_post_carries_the_token_in_a_header(app, browser, session):
    employee = f.make_staff(session)
    browser.sign_in(employee.email)
    response = browser.client.post("/logout", headers={"X-CSRFToken": browser.token, "HX-Request": "true"})
    assert response.status_code == 303


def test_session_is_renewed_at_sign_in(browser, session):
    employee = f.make_staff(session)
    browser.get("/login")
    before = browser.token
    browser.sign_in(employee.email)
    assert browser.token != before  # a new session, so a new CSRF token


def test_sign_out_is_audited_and_ends_the_session(browser, session):
    employee = f.make_staff(session)
    browser.sign_in(employee.email)
    response = browser.post("/logout")
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert browser.client.get("/staff/").status_code == 302
    assert "logout" in _actions(session)


def test_next_parameter_returns_to_the_page_but_never_off_site(browser, session):
    employee = f.make_staff(session)
    response = browser.client.get("/staff/security")
    assert response.status_code == 302 and "next=" in response.headers["Location"]
    browser.get("/login?next=/account/password")
    response = browser.post("/login", {"email": employee.email, "password": PASSWORD, "next": "/account/password"})
    assert response.headers["Location"] == "/account/password"
    browser.get("/account/password")
    other = f.make_staff(session)
    assert browser.post("/logout").status_code == 303
    browser.get("/login")
    response = browser.post("/login", {"email": other.email, "password": PASSWORD, "next": "https://evil.example/"})
    assert response.headers["Location"] == "/staff/"


def test_idle_session_times_out(app, browser, session):
    contact = f.make_contact_login(session)
    browser.sign_in(contact.email)
    with browser.client.session_transaction() as cookie:
        cookie["last_seen"] = time.time() - app.config["SESSION_IDLE_MINUTES_CONTACT"] * 60 - 5
    response = browser.client.get("/portal/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "inactivity" in browser.get("/login").get_data(as_text=True)


def test_staff_idle_limit_is_longer(app, browser, session):
    employee = f.make_staff(session)
    browser.sign_in(employee.email)
    with browser.client.session_transaction() as cookie:
        cookie["last_seen"] = time.time() - app.config["SESSION_IDLE_MINUTES_CONTACT"] * 60 - 5
    assert browser.client.get("/staff/").status_code == 200


def test_deactivated_employee_is_signed_out_at_the_next_request(browser, session):
    employee = f.make_staff(session)
    browser.sign_in(employee.email)
    employee.employment_status = "inactive"
    session.flush()
    response = browser.client.get("/staff/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_suspended_customer_is_read_only(browser, session):
    customer = f.make_customer(session, account_status="suspended")
    contact = f.make_contact_login(session, customer=customer)
    browser.sign_in(contact.email)
    page = browser.get("/portal/").get_data(as_text=True)
    assert "account is suspended" in page
    response = browser.post("/account/password", {"current_password": PASSWORD, "new_password": "x", "confirm": "x"})
    assert response.status_code == 403
    assert "read-only" in response.get_data(as_text=True)
    assert browser.post("/logout").status_code == 303


def test_password_change_signs_out_other_devices(browser, other_browser, session):
    employee = f.make_staff(session)
    browser.sign_in(employee.email)
    other_browser.sign_in(employee.email)
    browser.get("/account/password")
    response = browser.post("/account/password", {"current_password": PASSWORD,
                                                  "new_password": "violet harbour engine",
                                                  "confirm": "violet harbour engine"})
    assert response.status_code == 303
    assert browser.client.get("/staff/").status_code == 200
    assert other_browser.client.get("/staff/").status_code == 302
    assert "password.changed" in _actions(session)


def test_password_change_errors_beside_the_fields(browser, session):
    employee = f.make_staff(session)
    browser.sign_in(employee.email)
    browser.get("/account/password")
    response = browser.post("/account/password", {"current_password": PASSWORD, "new_password": "password1",
                                                  "confirm": "password1"})
    assert response.status_code == 422
    assert "very common password" in response.get_data(as_text=True)


def _link(mail) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", mail.body).group(1)


def test_a_reset_link_points_to_the_public_address_whatever_host_the_request_claimed(app, browser, session, outbox,
                                                                                      monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://portal.techserv.example")
    contact = f.make_contact_login(session)
    for base in ("http://attacker.example", "http://localhost"):
        browser.get("/password/forgot", base_url=base)
        for headers in ({"X-Forwarded-Host": "attacker.example"}, {}):
            response = browser.post("/password/forgot", {"email": contact.email}, base_url=base, headers=headers)
            assert response.status_code == 303
    assert len(outbox) == 4
    for mail in outbox:
        assert "attacker" not in mail.body
        assert re.search(r"https://portal\.techserv\.example/password/reset/\S+", mail.body)


def test_forgotten_password_by_email(browser, session, outbox):
    contact = f.make_contact_login(session)
    browser.get("/password/forgot")
    response = browser.post("/password/forgot", {"email": contact.email})
    assert response.status_code == 303
    assert "If that address belongs to a login" in browser.get("/login").get_data(as_text=True)
    browser.post("/password/forgot", {"email": "nobody@example.com"})
    assert len(outbox) == 1 and outbox[0].to == contact.email
    link = _link(outbox[0])
    assert "Choose a new password" in browser.get(link).get_data(as_text=True)
    response = browser.post(link, {"password": "amber falcon meadow", "confirm": "amber falcon meadow"})
    assert response.status_code == 303
    assert browser.get(link).status_code == 404  # single use
    assert browser.sign_in(contact.email, "amber falcon meadow").headers["Location"] == "/portal/"


def test_forgot_password_is_throttled_with_the_same_neutral_answer(browser, session, outbox):
    """25 requests in a row from one address: five mails to the known email, none to the unknown, every
    answer the same redirect and the same words."""
    from portal.services.auth import MAX_RESETS_PER_EMAIL

    contact = f.make_contact_login(session)
    answers = set()
    for n in range(25):
        browser.get("/password/forgot")
        response = browser.post("/password/forgot", {"email": contact.email if n % 5 else "nobody@example.com"})
        page = browser.get(response.headers["Location"]).get_data(as_text=True)
        answers.add((response.status_code, "If that address belongs to a login, we have sent it a link" in page))
    assert answers == {(303, True)}
    assert len(outbox) == MAX_RESETS_PER_EMAIL and {mail.to for mail in outbox} == {contact.email}
    # Ten requests were counted (refused ones are not); ten more emails and the address has had its twenty.
    for n in range(10):
        browser.post("/password/forgot", {"email": f"guess{n}@example.com"})
    response = browser.post("/password/forgot", {"email": f.make_contact_login(session).email})
    assert response.status_code == 303 and len(outbox) == MAX_RESETS_PER_EMAIL


def test_a_reset_link_stops_working_once_the_password_is_changed_on_the_account_page(browser, other_browser,
                                                                                      session, outbox):
    employee = f.make_staff(session)
    other_browser.get("/password/forgot")
    other_browser.post("/password/forgot", {"email": employee.email})
    link = _link(outbox[-1])
    browser.sign_in(employee.email)
    browser.get("/account/password")
    response = browser.post("/account/password", {"current_password": PASSWORD, "new_password": "violet harbour engine",
                                                  "confirm": "violet harbour engine"})
    assert response.status_code == 303
    assert other_browser.get(link).status_code == 404


def test_a_contact_changing_the_password_retires_its_reset_link_too(browser, other_browser, session, outbox):
    """A contact's request runs as portal_contact, which may not touch auth_tokens: the database does it."""
    contact = f.make_contact_login(session)
    other_browser.get("/password/forgot")
    other_browser.post("/password/forgot", {"email": contact.email})
    link = _link(outbox[-1])
    browser.sign_in(contact.email)
    browser.get("/account/password")
    response = browser.post("/account/password", {"current_password": PASSWORD, "new_password": "violet harbour engine",
                                                  "confirm": "violet harbour engine"})
    assert response.status_code == 303
    assert other_browser.get(link).status_code == 404


def test_invitation_from_the_people_page(browser, other_browser, session, outbox):
    admin = f.make_staff(session, role="admin")
    newcomer = f.make_employee(session)
    browser.sign_in(admin.email)
    page = browser.get("/staff/people?kind=employees").get_data(as_text=True)
    assert newcomer.full_name in page
    response = browser.post(f"/staff/people/employees/{newcomer.employee_id}/invite")
    assert response.status_code == 303
    assert outbox[-1].to == newcomer.email
    link = _link(outbox[-1])
    other_browser.get(link)
    other_browser.post(link, {"password": "quiet copper orchard", "confirm": "quiet copper orchard"})
    assert other_browser.sign_in(newcomer.email, "quiet copper orchard").headers["Location"] == "/staff/"


def test_two_factor_enrolment_and_sign_in(browser, session):
    employee = f.make_staff(session)
    browser.sign_in(employee.email)
    page = browser.get("/account/two-factor").get_data(as_text=True)
    assert "data:image/svg+xml;base64," in page
    secret = re.search(r'<span class="secret">(\w+)</span>', page).group(1)
    response = browser.post("/account/two-factor/enable", {"code": "123456" if pyotp.TOTP(secret).now() != "123456"
                                                           else "654321"})
    assert response.status_code == 422
    response = browser.post("/account/two-factor/enable", {"code": pyotp.TOTP(secret).now()})
    codes = re.findall(r"<li>([0-9a-f]{6}-[0-9a-f]{6})</li>", response.get_data(as_text=True))
    assert len(codes) == 10
    browser.post("/logout")

    browser.get("/login")
    response = browser.post("/login", {"email": employee.email, "password": PASSWORD})
    assert response.headers["Location"] == "/login/verify"
    assert browser.client.get("/staff/").status_code == 302  # not signed in yet
    browser.get("/login/verify")
    response = browser.post("/login/verify", {"code": codes[0]})
    assert response.headers["Location"] == "/staff/"


def test_required_two_factor_sends_staff_to_enrol(browser, other_browser, session):
    admin = f.make_staff(session, role="admin")
    technician = f.make_staff(session)
    browser.sign_in(admin.email)
    browser.get("/staff/security")
    browser.post("/staff/security", {"require_two_factor": "y"})
    other_browser.sign_in(technician.email)
    response = other_browser.client.get("/staff/")
    assert response.status_code == 302 and response.headers["Location"] == "/account/two-factor"
    assert other_browser.client.get("/account/two-factor").status_code == 200


def test_after_the_window_a_known_and_an_unknown_email_get_the_same_answers(browser, session):
    """Nine failures an hour ago, then two now: the same status and words for both (no 429 for the known one)."""
    from datetime import UTC, datetime, timedelta

    from portal.services import auth

    employee = f.make_staff(session)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    answers = {}
    for email in (employee.email, "ghost@example.com"):
        for _ in range(9):
            try:
                auth.authenticate(session, email, "wrong", ip=None, now=an_hour_ago)
            except auth.SignInRefused:
                pass
        browser.get("/login")
        seen = []
        for _ in range(2):
            response = browser.post("/login", {"email": email, "password": "wrong"})
            page = response.get_data(as_text=True)
            seen.append((response.status_code, "The email or password is wrong." in page, "Too many" in page))
        answers[email] = seen
    assert answers[employee.email] == answers["ghost@example.com"] == [(401, True, False)] * 2
