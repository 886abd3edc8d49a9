"""Template filters (portal/web/formatting.py): numbers as people write them, never in exponent form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from flask import render_template_string

from portal.web.formatting import hours, number
from tests import factories as f


@pytest.mark.parametrize("value, text", [
    (D("40"), "40"), (D("40.00"), "40"), (D("4E+1"), "40"), (D("1E+3"), "1000"), (D("7.25"), "7.25"),
    (D("7.250"), "7.25"), (D("0.50"), "0.5"), (D("0"), "0"), (D("0.00"), "0"), (D("-0"), "0"), (D("1E-7"), "0.0000001"),
    (D("-2.50"), "-2.5"), (3, "3"), (None, "—"),
])
def test_number_never_uses_an_exponent(value, text):
    assert number(value) == text


@pytest.mark.parametrize("value, text", [(D("40.00"), "40 h"), (D("4E+1"), "40 h"), (D("1.50"), "1.5 h"),
                                         (D("0"), "0 h"), (None, "—")])
def test_hours(value, text):
    assert hours(value) == text


def test_a_decimal_printed_as_is_in_any_template_is_plain(app):
    """`{{ some_decimal }}` and `{{ some_decimal.normalize() }}` never show 4E+1, whatever the template."""
    with app.test_request_context():
        assert render_template_string("{{ a }} / {{ b.normalize() }} / {{ c }}", a=D("4E+1"), b=D("40.00"),
                                      c=D("1.50")) == "40 / 40 / 1.50"


def test_timesheet_week_total_reads_plainly(browser, session):
    """The finding: a 40-hour week showed "7.25 / 4E+1"."""
    tech = f.make_staff(session, capacity_hours_weekly=D("40.00"))
    ticket = f.make_ticket(session, created_at=datetime.now(UTC) - timedelta(days=3))
    f.make_time_entry(session, employee=tech, ticket=ticket, work_date=datetime.now(UTC).date(),
                      hours_worked=D("7.25"), description="Relinked the VPN profile")
    browser.sign_in(tech.email)
    page = browser.get("/staff/timesheet").get_data(as_text=True)
    assert "E+" not in page
    assert "<strong>7.25</strong> / 40</td>" in page


def test_relative_times_stay_short():
    from portal.web.formatting import relative

    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    assert relative(now - timedelta(seconds=20), now) == "just now"
    assert relative(now + timedelta(seconds=20), now) == "just now"
    assert relative(now - timedelta(minutes=25), now) == "25 min ago"
    assert relative(now + timedelta(hours=3), now) == "in 3 h"


def test_a_percentage_never_breaks_from_its_sign(app):
    from portal.web.formatting import percent

    assert str(percent(55)) == '<span class="percent">55 %</span>'
    assert str(percent(D("80.0"))) == '<span class="percent">80 %</span>'


def test_a_time_zone_only_beside_a_time_of_day(app):
    from portal.web.formatting import local_time

    moment = datetime(2026, 1, 12, 21, 5, tzinfo=UTC)  # 14:05 in Denver (MST)
    with app.app_context():
        assert local_time(moment) == "12 Jan 2026 14:05 MST"
        assert local_time(moment, "%d %b %Y, %H:%M") == "12 Jan 2026, 14:05 MST"
        assert local_time(moment, "%d %b %Y") == "12 Jan 2026"  # no zone without a time
        midnight = datetime(2026, 1, 12, 7, 5, 9, tzinfo=UTC)  # 00:05:09 MST
        assert local_time(midnight, "%H:%M:%S") == "0:05:09 MST"  # the hour kept, only its leading zero gone
        assert local_time(datetime(2026, 1, 2, 19, 0, tzinfo=UTC), "%d %b") == "2 Jan"
