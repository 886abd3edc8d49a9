"""The permission matrix: every route of the app, for anonymous visitors, each employee role and
contacts with each flag combination. A route added without its row here fails the first test."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from portal.models import Account
from portal.services import auth
from tests import factories as f

EMPLOYEE_ROLES = ["technician", "senior_technician", "project_manager", "account_manager", "admin"]
CONTACT_KINDS = {
    "contact": {},  # the seed's default: may open tickets
    "contact_read_only_flags": {"can_create_tickets": False},
    "primary": {"is_primary_contact": True},
    "billing": {"is_billing_contact": True, "can_create_tickets": False},
    "sponsor": {"can_approve_projects": True},
    "primary_billing_sponsor": {"is_primary_contact": True, "is_billing_contact": True, "can_approve_projects": True},
    "suspended_customer": {"is_primary_contact": True},
}
PERSONAS = ["anonymous", *EMPLOYEE_ROLES, *CONTACT_KINDS]
CONTACTS = list(CONTACT_KINDS)
LOGIN = "login"  # a redirect to the sign-in page


def everyone(code):
    return {persona: code for persona in PERSONAS}


def signed_in(code, anonymous=LOGIN):
    return {"anonymous": anonymous, **{p: code for p in PERSONAS if p != "anonymous"}}


def staff_only(code, roles=EMPLOYEE_ROLES):
    return {"anonymous": LOGIN, **{r: (code if r in roles else 403) for r in EMPLOYEE_ROLES},
            **{c: 403 for c in CONTACTS}}


def contacts_only(code):
    return {"anonymous": LOGIN, **{r: 403 for r in EMPLOYEE_ROLES}, **{c: code for c in CONTACTS}}


# endpoint -> (method, path (may use {employee_id} {contact_id}), expected answer per persona)
MATRIX = {
    "main.home": ("GET", "/", everyone(302)),
    "main.healthz": ("GET", "/healthz", everyone(200)),
    "auth.login": ("GET", "/login", {"anonymous": 200, **{p: 302 for p in PERSONAS if p != "anonymous"}}),
    "auth.verify_second_factor": ("GET", "/login/verify", everyone(302)),
    "auth.logout": ("POST", "/logout", everyone(303)),
    "auth.forgot_password": ("GET", "/password/forgot", everyone(200)),
    "auth.reset_password": ("GET", "/password/reset/not-a-real-token", everyone(404)),
    "auth.accept_invitation": ("GET", "/invitation/not-a-real-token", everyone(404)),
    "account.change_password": ("GET", "/account/password", signed_in(200)),
    "account.two_factor": ("GET", "/account/two-factor", staff_only(200)),
    "account.enable_two_factor": ("POST", "/account/two-factor/enable", staff_only(422)),
    "account.disable_two_factor": ("POST", "/account/two-factor/disable", staff_only(422)),
    "portal.home": ("GET", "/portal/", contacts_only(200)),
    "staff.home": ("GET", "/staff/", staff_only(200)),
    "staff.people": ("GET", "/staff/people", staff_only(200, roles=["account_manager", "admin"])),
    "staff.invite_employee": ("POST", "/staff/people/employees/{employee_id}/invite",
                              staff_only(303, roles=["admin"])),
    "staff.invite_contact": ("POST", "/staff/people/contacts/{contact_id}/invite",
                             staff_only(303, roles=["account_manager", "admin"])),
    "staff.security_settings": ("GET", "/staff/security", staff_only(200, roles=["admin"])),
}
NOT_IN_MATRIX = {"static"}  # public files: CSS, JS, htmx


def test_every_route_is_in_the_matrix(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()} - NOT_IN_MATRIX
    assert endpoints == set(MATRIX), "add the new route's row to MATRIX"
    for endpoint, (method, _, expected) in MATRIX.items():
        assert set(expected) == set(PERSONAS), endpoint
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
        assert method in rule.methods, endpoint


def _persona(session, name):
    if name == "anonymous":
        return None
    if name in EMPLOYEE_ROLES:
        return f.make_staff(session, role=name)
    customer = f.make_customer(session, account_status="suspended" if name == "suspended_customer" else "active")
    return f.make_contact_login(session, customer=customer, **CONTACT_KINDS[name])


def _sign_in_quickly(browser, session, person) -> None:
    """Put the person's login in the session cookie (the sign-in form has tests of its own)."""
    account = session.scalar(sa.select(Account).where(Account.email == person.email))
    token = auth.start_login_session(session, account, ip=None, user_agent="matrix test")
    with browser.client.session_transaction() as cookie:
        cookie["login_session"] = token
        cookie["_user_id"] = f"{account.account_id}.{account.session_version}"
        cookie["_fresh"] = True
        cookie["last_seen"] = time.time()
        cookie["csrf_token"] = "matrix-test-csrf-secret"
    browser.get("/account/password")  # a page every signed-in person may open: picks up the CSRF token


CASES = [(endpoint, persona) for endpoint in MATRIX for persona in PERSONAS]


@pytest.mark.parametrize("endpoint, persona", CASES, ids=[f"{e}-{p}" for e, p in CASES])
def test_route_answers_each_persona(app, browser, session, endpoint, persona):
    method, path, expected = MATRIX[endpoint]
    person = _persona(session, persona)
    if person is not None:
        _sign_in_quickly(browser, session, person)
    else:
        browser.get("/login")
    url = path.format(employee_id=f.make_employee(session).employee_id,
                      contact_id=f.make_contact(session).contact_id)
    response = browser.client.get(url) if method == "GET" else browser.post(url)
    want = expected[persona]
    if want == LOGIN:
        assert response.status_code == 302 and "/login" in response.headers["Location"], response.status_code
    else:
        assert response.status_code == want, response.get_data(as_text=True)[:300]


def test_contact_routes_with_ids_are_checked_across_customers(app):
    """Every /portal route that takes an id needs a cross-customer case (404 for another customer's id).

    The portal has none yet; the database's row-level security is tested for every table in
    tests/test_row_level_security.py. This test makes the first such route add its case.
    """
    with_ids = [rule.rule for rule in app.url_map.iter_rules()
                if rule.rule.startswith("/portal") and rule.arguments]
    assert with_ids == [], "add cross-customer 404 cases for: " + ", ".join(with_ids)
