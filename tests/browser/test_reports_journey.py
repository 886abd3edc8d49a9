"""The owner's morning: an account manager opens every report from the menu in real Chromium,
changes a filter (which lands in the URL), sees the chart and its text, and downloads the CSV of
exactly the table; a phone shows the same chart. A senior technician is offered only theirs."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.conftest import DOWNLOAD_TIMEOUT_MS, sign_in

OWNER = "jessica.brown@techserv.com"  # the demo's account manager
LAST_WEEK = (date.today() - timedelta(days=date.today().weekday() + 7)).isoformat()
# report title -> (how to change its filter, the parameter that must then be in the URL)
REPORTS = {
    "Monthly recurring revenue": (lambda p: p.get_by_label("Months shown", exact=True).fill("6"), "months=6"),
    "Renewal pipeline": (lambda p: p.get_by_label("Ending within (days)", exact=True).fill("365"), "days=365"),
    "Technician utilization": (lambda p: p.get_by_label("Week of", exact=True).fill(LAST_WEEK), f"week={LAST_WEEK}"),
    "SLA compliance": (lambda p: p.get_by_label("From", exact=True).fill((date.today() - timedelta(days=90)).isoformat()),
                       "start="),
    "Customer profitability": (lambda p: p.get_by_label("Calendar months", exact=True).fill("24"), "months=24"),
    "Overdue invoices": (lambda p: p.get_by_label("Collection stage", exact=True).select_option("Collections Required"),
                         "stage=Collections"),
    "Project budget burn": (lambda p: p.get_by_label("Show", exact=True).select_option("1"), "over=1"),
}


def _rows_said(page) -> int:
    return int(re.search(r"\((\d+) rows?\)", page.locator("#report-table-title").inner_text()).group(1))


def test_the_owner_reads_every_report(new_page, page_problems):
    page = new_page()
    sign_in(page, OWNER)
    for title, (change, in_url) in REPORTS.items():
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
        page.get_by_role("link", name=title).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        expect(page.get_by_text("Computed for business day")).to_be_visible()
        change(page)
        page.get_by_role("button", name="Show", exact=True).click()
        expect(page).to_have_url(re.compile(re.escape(in_url)))
        chart = page.locator("figure.chart svg[role=img]")
        if page.locator("figure.chart").count():
            expect(chart).to_be_visible()
            assert page.locator("figure.chart g.chart__row").count() >= 1
            label = chart.get_attribute("aria-describedby")
            assert page.locator(f"#{label} li").count() >= 1  # the chart as text
        else:  # a filter that leaves nothing to draw says so
            expect(page.get_by_text("Nothing to report")).to_be_visible()
        said = _rows_said(page)
        with page.expect_download(timeout=DOWNLOAD_TIMEOUT_MS) as download:
            page.get_by_role("link", name="Download CSV").click()
        text = Path(download.value.path()).read_text(encoding="utf-8")
        lines = list(csv.reader(io.StringIO(text)))
        assert len(lines) - 1 == said, title
        header = [th.inner_text().strip() for th in page.locator(".report-table thead th").all()]
        assert not header or len(header) == len(lines[0]), title
    assert page_problems.all() == []


def test_a_chart_on_a_phone_and_a_seniors_reports(new_page):
    phone = new_page("phone")
    sign_in(phone, OWNER)
    phone.goto("/staff/reports/mrr")
    chart = phone.locator("figure.chart svg[role=img]")
    expect(chart).to_be_visible()
    # The chart keeps legible labels (about 10 px and up) and scrolls inside its card; the page does not.
    assert phone.locator("figure.chart").bounding_box()["width"] <= 390
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert phone.locator("figure.chart text.chart__label").first.bounding_box()["height"] >= 9
    assert phone.locator("figure.chart g.chart__row").count() == 12

    senior = new_page()
    sign_in(senior, "john.davis@techserv.com")
    senior.goto("/staff/reports/")
    links = sorted(a.text_content().strip() for a in senior.locator(".report-list a").all())
    assert links == ["SLA compliance", "Technician utilization"]
    assert senior.goto("/staff/reports/profitability").status == 403
