"""The front door, error pages, security headers and the health check."""

from __future__ import annotations

from tests import factories as f


def test_front_door_sends_people_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_front_door_sends_signed_in_people_home(browser, session):
    employee = f.make_staff(session)
    browser.sign_in(employee.email)
    assert browser.client.get("/").headers["Location"].endswith("/staff/")


def test_missing_page_is_a_404_in_the_portals_look(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "Error 404" in page and "Sign in" in page


def test_api_errors_are_problem_json(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.get_json()["status"] == 404


def test_unexpected_error_is_a_friendly_500(browser, session, monkeypatch):
    employee = f.make_staff(session)
    browser.sign_in(employee.email)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("portal.web.staff.home.staff_summary", broken)
    response = browser.get("/staff/")
    assert response.status_code == 500
    assert "Nothing you entered was saved" in response.get_data(as_text=True)


def test_security_headers_on_every_response(client):
    for url in ("/login", "/no/such/page", "/static/css/portal.css", "/healthz"):
        response = client.get(url)
        response.close()  # the static file's handle
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in headers


def test_hsts_and_secure_cookie_over_https(app, session):
    client = app.test_client()
    response = client.get("/login", base_url="https://portal.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session_cookie_flags_over_http(client):
    cookie = client.get("/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_pages_carry_no_inline_script_or_style(client):
    page = client.get("/login").get_data(as_text=True)
    assert "<script>" not in page and "style=" not in page and "onclick" not in page
    assert "htmx.min.js" in page and 'hx-headers=\'{"X-CSRFToken"' in page


def test_health_check(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_a_trailing_slash_finds_the_page_without_it(app, browser, session):
    from tests import factories as f

    manager = f.make_staff(session, role="account_manager")
    browser.sign_in(manager.email)
    moved = browser.get("/staff/customers/?q=acme")
    assert moved.status_code == 308 and moved.headers["Location"].endswith("/staff/customers?q=acme")
    assert browser.get("/staff/mail/unmatched/").headers["Location"].endswith("/staff/mail/unmatched")
    assert browser.get("/staff/no-such-page/").status_code == 404
    assert browser.get("/staff/tickets").status_code == 308  # Werkzeug's own way round still holds
