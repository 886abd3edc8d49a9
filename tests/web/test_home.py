"""The demo's home page, the error pages and the health check."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from portal.services.overview import database_overview
from portal.services.seed import load_demo_data


def test_empty_database_says_how_to_load_the_demo(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "The database is empty" in page
    assert "flask seed --password PW" in page
    assert "HX-Request" in response.headers["Vary"]


def test_home_lists_what_is_in_the_database(client, session):
    load_demo_data(session, password="correct horse battery", tax_rate=D("0"))
    page = client.get("/").get_data(as_text=True)
    for company in ("Denver Tech Solutions", "Mountain View Dental", "Boulder Manufacturing Co",
                    "Peak Performance Fitness", "Alpine Legal Group"):
        assert company in page
    assert "Renewal due" in page  # contracts expiring within 90 days
    assert "htmx.min.js" in page and "portal.css" in page
    assert "<script>" not in page and "style=" not in page and "onclick" not in page


def test_overview_runs_a_fixed_number_of_queries(session):
    """The page's queries do not grow with the number of customers."""
    from sqlalchemy import event

    def count_queries() -> int:
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        engine = session.get_bind().engine
        event.listen(engine, "before_cursor_execute", listener)
        try:
            database_overview(session, date.today())
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(statements)

    from tests import factories as f

    f.make_customer(session)
    few = count_queries()
    for _ in range(20):
        f.make_contract(session, customer=f.make_customer(session))
    assert count_queries() == few == 4


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


def test_unexpected_error_is_a_friendly_500(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("portal.web.main.database_overview", broken)
    response = client.get("/")
    assert response.status_code == 500
    assert "Nothing you entered was saved" in response.get_data(as_text=True)


def test_health_check(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
