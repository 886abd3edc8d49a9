"""Signing in and out through the real pages in a real browser, at desktop and phone width,
with the Content-Security-Policy in force and nothing going wrong inside the page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Response, expect

from tests.browser.conftest import PASSWORD, PHONE

CONTACT = "sarah.johnson@denvertech.com"
TECHNICIAN = "amanda.lee@techserv.com"


def assert_csp(response: Response | None) -> None:
    assert response is not None and response.ok, response
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy, f"no script-src 'self' in the CSP of {response.url}: {policy!r}"


def open_sign_in_page(page: Page) -> None:
    response = page.goto("/login")
    assert_csp(response)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def submit_sign_in(page: Page, email: str, password: str) -> Response:
    # By accessible name, as a screen reader announces it (the required mark "*" is aria-hidden).
    page.get_by_role("textbox", name="Email", exact=True).fill(email)
    page.get_by_role("textbox", name="Password", exact=True).fill(password)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Sign in").click()
    return navigation.value


def assert_fits_width(page: Page, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} is {scroll_width}px wide in a {width}px viewport"


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_contact_signs_in_to_the_portal_and_signs_out(new_page, page_problems, tmp_path, size):
    page = new_page(size)
    open_sign_in_page(page)
    page.screenshot(path=tmp_path / f"sign-in-{size}.png", full_page=True)

    landing = submit_sign_in(page, CONTACT, PASSWORD)
    assert_csp(landing)
    expect(page).to_have_url(re.compile(r"/portal/?$"))
    expect(page.get_by_role("heading", name="Welcome, Sarah Johnson")).to_be_visible()
    expect(page.get_by_text("Denver Tech Solutions").first).to_be_visible()
    if size == "phone":
        assert_fits_width(page, PHONE["width"])
    page.screenshot(path=tmp_path / f"portal-home-{size}.png", full_page=True)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login/?$"))
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    # Signed out for real: the portal sends us back to the sign-in page.
    page.goto("/portal")
    expect(page).to_have_url(re.compile(r"/login"))

    assert page_problems.all() == []


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_technician_signs_in_to_the_staff_workspace(new_page, page_problems, tmp_path, size):
    page = new_page(size)
    open_sign_in_page(page)

    landing = submit_sign_in(page, TECHNICIAN, PASSWORD)
    assert_csp(landing)
    expect(page).to_have_url(re.compile(r"/staff/?$"))
    expect(page.get_by_text("Amanda Lee").first).to_be_visible()
    if size == "phone":
        assert_fits_width(page, PHONE["width"])
    page.screenshot(path=tmp_path / f"staff-home-{size}.png", full_page=True)

    assert page_problems.all() == []


def test_wrong_password_is_refused_on_the_sign_in_page(page, page_problems, tmp_path):
    open_sign_in_page(page)

    refused = submit_sign_in(page, CONTACT, "not the password at all")
    assert refused.status == 401
    assert "script-src 'self'" in refused.headers.get("content-security-policy", "")
    expect(page).to_have_url(re.compile(r"/login/?$"))
    expect(page.get_by_text("The email or password is wrong.")).to_be_visible()
    expect(page.get_by_role("textbox", name="Password", exact=True)).to_have_value("")
    page.screenshot(path=tmp_path / "sign-in-refused-desktop.png", full_page=True)

    # Chromium reports the 401 answer itself as a console error; anything else is a problem.
    assert page_problems.all(expected_status=401) == []


@pytest.mark.parametrize("email", ["robert.wilson@bouldermfg.com", "marcus.reed@peakfit.com",
                                   "priya.natarajan@techserv.com"])
def test_top_bar_fits_a_phone_for_long_names(new_page, page_problems, tmp_path, email):
    page = new_page("phone")
    open_sign_in_page(page)
    submit_sign_in(page, email, PASSWORD)
    assert_fits_width(page, PHONE["width"])
    page.screenshot(path=tmp_path / "home-phone.png", full_page=True)
    assert page_problems.all() == []
