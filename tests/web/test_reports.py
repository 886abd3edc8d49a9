"""The reports against an independent SQL each: the seed's query as DESIGN.md's errata correct it,
written here in SQL, on data with the issue's edge cases (a customer with two contracts in a month,
two billing contacts and none, a ticket answered after 30 hours, time on the week's edges, a
cancelled, a draft and a partly paid invoice, a project at exactly 80 %). The page's table, the
CSV and the API give the same rows; roles; CSV injection; a fixed number of statements."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.models import Contact
from portal.services import clock, policy, reports, sla
from portal.services.reports.common import csv_cell, plain
from tests import factories as f
from tests.api.conftest import Api, make_client
from tests.conftest import count_queries

D = Decimal


def at(day: date, hour: int = 10) -> datetime:
    """`hour` o'clock on a business day, as an aware datetime."""
    return datetime.combine(day, time(hour), tzinfo=clock.business_zone()).astimezone(UTC)


def month_start(day: date, back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


@pytest.fixture
def edge(session):
    """The issue's edge cases, dated around today's business day."""
    today = clock.today()
    s = session
    admin = f.make_staff(s, role="admin", first_name="Ada", last_name="Admin")
    tech = f.make_staff(s, role="technician", first_name="Tess", last_name="Tech", capacity_hours_weekly=D("40.0"),
                        hourly_rate_internal=D("40.00"))
    senior = f.make_staff(s, role="senior_technician", first_name="Sam", last_name="Senior",
                          capacity_hours_weekly=D("32.0"), hourly_rate_internal=D("60.00"))
    f.make_employee(s, role="technician", employment_status="inactive", first_name="Gone", last_name="Away")
    pm = f.make_staff(s, role="project_manager", first_name="Pat", last_name="Manager")

    alpha = f.make_customer(s, company_name="Alpha Edge Ltd")
    beta = f.make_customer(s, company_name="=Beta Formula Inc")  # a name a spreadsheet would run
    gamma = f.make_customer(s, company_name="Gamma Edge Co")
    delta = f.make_customer(s, company_name="Delta Edge LLC")

    # Alpha: two contracts in last month (one ends on the 10th, the next starts on the 11th).
    last_month = month_start(today, 1)
    f.make_contract(s, alpha, contract_status="expired", start_date=last_month - timedelta(days=400),
                    end_date=last_month + timedelta(days=9), monthly_fee=D("900.00"))
    k_alpha = f.make_contract(s, alpha, contract_status="active", start_date=last_month + timedelta(days=10),
                              end_date=today + timedelta(days=20), monthly_fee=D("1100.00"), response_time_hours=24)
    k_beta = f.make_contract(s, beta, start_date=today - timedelta(days=300), end_date=today + timedelta(days=45),
                             monthly_fee=D("2000.00"), response_time_hours=4)
    f.make_contract(s, gamma, start_date=today - timedelta(days=100), end_date=today + timedelta(days=75),
                    monthly_fee=D("500.00"))
    f.make_contract(s, gamma, contract_status="terminated", start_date=today - timedelta(days=100),
                    end_date=today + timedelta(days=30), monthly_fee=D("700.00"))
    f.make_contract(s, delta, start_date=today - timedelta(days=50), end_date=today + timedelta(days=90),
                    monthly_fee=D("300.00"))
    f.make_contract(s, delta, start_date=today - timedelta(days=50), end_date=today + timedelta(days=91),
                    monthly_fee=D("350.00"))
    # Beta has two billing contacts, Gamma none.
    f.make_contact(s, beta, email="pay@beta.example", is_billing_contact=True)
    f.make_contact(s, beta, email="ap@beta.example", is_billing_contact=True)
    f.make_contact(s, gamma, email="it@gamma.example")

    # Tickets: answered after 30 hours (24 h SLA), after 2 hours, a closed one, one unanswered,
    # one before the period, one without a contract.
    def ticket(customer, contract, priority, created, answered_after=None, **kw):
        t = f.make_ticket(s, customer, contract_id=contract.contract_id if contract else None, priority=priority,
                          created_at=created, **kw)
        if answered_after is not None:
            t.first_response_at = created + answered_after
        sla.refresh_sla(s, t)
        s.flush()
        return t

    t_late = ticket(alpha, k_alpha, "high", at(today - timedelta(days=5)), timedelta(hours=30))
    ticket(alpha, k_alpha, "high", at(today - timedelta(days=4)), timedelta(hours=2))
    ticket(beta, k_beta, "critical", at(today - timedelta(days=3)), timedelta(hours=1), status="closed",
           closed_at=at(today - timedelta(days=2)), resolved_at=at(today - timedelta(days=2)))
    ticket(beta, k_beta, "low", at(today - timedelta(days=1)))
    ticket(alpha, k_alpha, "medium", at(today - timedelta(days=40)), timedelta(hours=1))
    ticket(gamma, None, "high", at(today - timedelta(days=2)), timedelta(hours=50))
    t_beta = ticket(beta, k_beta, "medium", at(today - timedelta(days=20)), timedelta(hours=3))

    # Time on last week's edges: its Monday and Sunday count; the Sunday before and the Monday after do not.
    monday = today - timedelta(days=today.weekday()) - timedelta(days=7)
    approved = dict(approval_status="approved", approved_by_employee_id=admin.employee_id, approved_at=at(today))

    def entry(who, work, day, hours, **kw):
        target = {"project": work} if hasattr(work, "project_id") and not hasattr(work, "ticket_id") else {"ticket": work}
        return f.make_time_entry(s, employee=who, work_date=day, hours_worked=D(hours), **target, **kw)

    entry(tech, t_late, monday, "3.00", **approved)
    entry(tech, t_late, monday + timedelta(days=6), "2.00", is_billable=False)
    entry(tech, t_late, monday - timedelta(days=1), "5.00", **approved)
    entry(tech, t_late, monday + timedelta(days=7), "4.00", **approved)
    entry(tech, t_late, monday + timedelta(days=2), "1.00", approval_status="rejected", rejection_reason="Duplicate")
    entry(senior, t_beta, monday + timedelta(days=2), "8.00", **approved)
    entry(senior, t_beta, monday + timedelta(days=3), "1.50", is_billable=False, **approved)
    entry(senior, t_beta, today - timedelta(days=500), "6.00", **approved)  # before any profitability period

    # Projects: exactly 80 % (not over), 81 % (over), a completed one, a planning one with no cost.
    p80 = f.make_project(s, alpha, project_name="Exactly eighty", project_status="active", budget_amount=D("1000.00"),
                         project_manager_id=pm.employee_id)
    p81 = f.make_project(s, beta, project_name="Over eighty", project_status="active", budget_amount=D("1000.00"))
    f.make_project(s, gamma, project_name="Done", project_status="completed", budget_amount=D("100.00"))
    f.make_project(s, delta, project_name="Planned", project_status="planning", budget_amount=D("5000.00"))
    for project, hours in ((p80, "8.00"), (p81, "8.10")):
        f.make_time_entry(s, employee=tech, project=project, work_date=today - timedelta(days=20),
                          hours_worked=D(hours), billing_rate=D("100.00"), work_category="project", **approved)
    f.make_time_entry(s, employee=tech, project=p81, work_date=today - timedelta(days=20), hours_worked=D("3.00"),
                      work_category="project")  # pending: not a cost yet

    # Invoices: sent, paid, partly paid, cancelled, draft, old; late ones in each collection stage.
    def invoice(customer, status, invoice_date, due, amount, paid="0.00"):
        inv = f.make_invoice(s, customer, invoice_status=status, invoice_date=invoice_date, due_date=due,
                             paid_amount=D(paid), paid_at=at(today) if status == "paid" else None)
        f.make_line(s, inv, unit_price=D(amount), line_total=D(amount))
        return inv

    invoice(alpha, "sent", today - timedelta(days=35), today - timedelta(days=5), "800.00", paid="200.00")
    invoice(alpha, "paid", month_start(today, 2), month_start(today, 2) + timedelta(days=30), "500.00", "500.00")
    invoice(alpha, "cancelled", today - timedelta(days=100), today - timedelta(days=70), "700.00")
    invoice(alpha, "draft", today - timedelta(days=1), today + timedelta(days=29), "300.00")
    invoice(alpha, "paid", month_start(today, 13), month_start(today, 13) + timedelta(days=30), "999.00", "999.00")
    invoice(beta, "overdue", today - timedelta(days=75), today - timedelta(days=45), "2000.00")
    invoice(beta, "sent", today - timedelta(days=30), today, "2000.00")
    invoice(beta, "sent", today - timedelta(days=38), today - timedelta(days=8), "150.00")
    invoice(gamma, "sent", today - timedelta(days=100), today - timedelta(days=70), "450.00")
    s.flush()
    return {"today": today, "monday": monday, "admin": admin, "pm": pm, "senior": senior, "tech": tech,
            "alpha": alpha, "beta": beta, "gamma": gamma}


# --- the independent SQL: the seed's queries, corrected --------------------------------------------

def q(session, sql, **params):
    return [dict(r._mapping) for r in session.execute(sa.text(sql), params)]


def expected_mrr(session, today):
    rows = []
    for back in range(11, -1, -1):
        first = month_start(today, back)
        on = min(month_start(today, back - 1) - timedelta(days=1), today)
        r = q(session, """SELECT COALESCE(SUM(monthly_fee), 0) AS mrr, COUNT(*) AS n, COUNT(DISTINCT customer_id) AS c,
                                 round(AVG(monthly_fee), 2) AS avg
                          FROM service_contracts
                          WHERE contract_status IN ('active', 'expired') AND start_date <= :d AND end_date >= :d""", d=on)[0]
        rows.append({"month": first, "measured_on": on, "mrr": r["mrr"], "active_contracts": r["n"],
                     "customers": r["c"], "avg_contract_value": r["avg"]})
    return rows


def expected_renewals(session, today):
    return q(session, """
        SELECT c.company_name AS customer, sc.contract_number, sc.end_date,
               sc.end_date - CAST(:today AS date) AS days_until_expiration,
               CASE WHEN sc.end_date - CAST(:today AS date) <= 30 THEN 'Critical'
                    WHEN sc.end_date - CAST(:today AS date) <= 60 THEN 'High' ELSE 'Medium' END AS renewal_priority,
               sc.monthly_fee, sc.auto_renewal
        FROM service_contracts sc JOIN customers c ON sc.customer_id = c.customer_id
        WHERE sc.contract_status = 'active' AND sc.end_date BETWEEN CAST(:today AS date) AND CAST(:today AS date) + 90
        ORDER BY sc.end_date, sc.contract_number""", today=today)


def expected_utilization(session, monday):
    return q(session, """
        SELECT e.first_name || ' ' || e.last_name AS technician, e.capacity_hours_weekly AS capacity_hours,
               COALESCE(SUM(te.hours_worked) FILTER (WHERE te.is_billable), 0) AS billable_hours,
               COALESCE(SUM(te.hours_worked) FILTER (WHERE NOT te.is_billable), 0) AS non_billable_hours,
               COALESCE(SUM(te.hours_worked), 0) AS total_hours,
               round(COALESCE(SUM(te.hours_worked), 0) / e.capacity_hours_weekly * 100, 1) AS utilization_percent,
               round(COALESCE(SUM(te.hours_worked) FILTER (WHERE te.is_billable), 0)
                     / e.capacity_hours_weekly * 100, 1) AS billable_percent,
               COUNT(DISTINCT te.customer_id) AS customers_served
        FROM employees e
        LEFT JOIN time_entries te ON e.employee_id = te.employee_id AND te.approval_status <> 'rejected'
             AND te.work_date >= DATE_TRUNC('week', CAST(:monday AS date))
             AND te.work_date < DATE_TRUNC('week', CAST(:monday AS date)) + INTERVAL '7 days'
        WHERE e.employment_status = 'active' AND e.role IN ('technician', 'senior_technician')
        GROUP BY e.employee_id ORDER BY utilization_percent DESC, technician""", monday=monday)


def expected_sla(session, today):
    zone = str(clock.business_zone())
    return q(session, """
        SELECT company_name AS customer, priority, COUNT(*) AS tickets,
               COUNT(*) FILTER (WHERE sla_status = 'Met') AS met, COUNT(*) FILTER (WHERE sla_status = 'Missed') AS missed,
               COUNT(*) FILTER (WHERE sla_status = 'No Response') AS no_response,
               round(100.0 * COUNT(*) FILTER (WHERE sla_status = 'Met')
                     / NULLIF(COUNT(*) FILTER (WHERE sla_status <> 'No Response'), 0), 1) AS compliance_percent,
               round(AVG(actual_response_hours), 2) AS avg_response_hours
        FROM (SELECT c.company_name, c.customer_id, t.priority,
                     EXTRACT(EPOCH FROM t.first_response_at - t.created_at) / 3600 AS actual_response_hours,
                     CASE WHEN t.first_response_at IS NULL THEN 'No Response'
                          WHEN EXTRACT(EPOCH FROM t.first_response_at - t.created_at) / 3600 <= sc.response_time_hours
                          THEN 'Met' ELSE 'Missed' END AS sla_status
              FROM support_tickets t JOIN customers c ON t.customer_id = c.customer_id
              JOIN service_contracts sc ON t.contract_id = sc.contract_id
              WHERE t.created_at >= (CAST(:today AS date) - 29)::timestamp AT TIME ZONE :zone
                AND t.created_at < (CAST(:today AS date) + 1)::timestamp AT TIME ZONE :zone) AS x
        GROUP BY customer_id, company_name, priority
        ORDER BY company_name, priority DESC""", today=today, zone=zone)


def expected_profitability(session, today):
    return q(session, """
        WITH period AS (SELECT (date_trunc('month', CAST(:today AS date)) - interval '11 months')::date AS start,
                               (date_trunc('month', CAST(:today AS date)) + interval '1 month - 1 day')::date AS stop),
        revenue AS (SELECT i.customer_id, SUM(i.subtotal) AS revenue FROM invoices i, period
                    WHERE i.invoice_status NOT IN ('draft', 'cancelled') AND i.invoice_date BETWEEN period.start AND period.stop
                    GROUP BY i.customer_id),
        cost AS (SELECT te.customer_id, round(SUM(te.hours_worked * e.hourly_rate_internal), 2) AS cost,
                        SUM(te.hours_worked) AS hours
                 FROM time_entries te JOIN employees e ON te.employee_id = e.employee_id, period
                 WHERE te.approval_status = 'approved' AND te.work_date BETWEEN period.start AND period.stop
                 GROUP BY te.customer_id)
        SELECT c.company_name AS customer, COALESCE(r.revenue, 0) AS revenue, round(COALESCE(k.cost, 0), 2) AS internal_cost,
               COALESCE(r.revenue, 0) - COALESCE(k.cost, 0) AS gross_profit,
               round((COALESCE(r.revenue, 0) - COALESCE(k.cost, 0)) * 100 / NULLIF(r.revenue, 0), 1) AS margin_percent,
               COALESCE(k.hours, 0) AS approved_hours
        FROM customers c LEFT JOIN revenue r ON r.customer_id = c.customer_id LEFT JOIN cost k ON k.customer_id = c.customer_id
        WHERE r.customer_id IS NOT NULL OR k.customer_id IS NOT NULL
        ORDER BY gross_profit DESC, customer""", today=today)


def expected_overdue(session, today):
    return q(session, """
        SELECT c.company_name AS customer, i.invoice_number, i.due_date,
               GREATEST(CAST(:today AS date) - i.due_date, 0) AS days_overdue,
               CASE WHEN CAST(:today AS date) - i.due_date <= 7 THEN 'Recently Overdue'
                    WHEN CAST(:today AS date) - i.due_date <= 30 THEN 'Overdue'
                    WHEN CAST(:today AS date) - i.due_date <= 60 THEN 'Seriously Overdue'
                    ELSE 'Collections Required' END AS collection_status,
               i.total_amount, GREATEST(i.total_amount - i.paid_amount, 0) AS outstanding_amount,
               COALESCE((SELECT string_agg(con.email, '; ' ORDER BY con.email) FROM contacts con
                         WHERE con.customer_id = c.customer_id AND con.is_billing_contact), '') AS billing_contacts
        FROM invoices i JOIN customers c ON i.customer_id = c.customer_id
        WHERE i.invoice_status = 'overdue' OR (i.invoice_status = 'sent' AND i.due_date < CAST(:today AS date))
        ORDER BY i.due_date, i.invoice_number""", today=today)


def expected_budget_burn(session, manager_id=None):
    return q(session, """
        SELECT p.project_number, p.project_name, c.company_name AS customer,
               COALESCE(m.first_name || ' ' || m.last_name, '') AS project_manager, p.project_status::text AS project_status,
               p.budget_amount, round(COALESCE(SUM(te.hours_worked * te.billing_rate), 0), 2) AS current_cost,
               round(p.budget_amount - COALESCE(SUM(te.hours_worked * te.billing_rate), 0), 2) AS remaining_budget,
               round(COALESCE(SUM(te.hours_worked * te.billing_rate), 0) / p.budget_amount * 100, 1) AS budget_consumed_percent,
               COALESCE(SUM(te.hours_worked * te.billing_rate), 0) / p.budget_amount > 0.8 AS over_80_percent
        FROM projects p JOIN customers c ON p.customer_id = c.customer_id
        LEFT JOIN employees m ON m.employee_id = p.project_manager_id
        LEFT JOIN time_entries te ON p.project_id = te.project_id AND te.approval_status = 'approved'
        WHERE p.project_status IN ('active', 'planning') AND (CAST(:me AS int) IS NULL OR p.project_manager_id = :me)
        GROUP BY p.project_id, c.company_name, m.first_name, m.last_name
        ORDER BY budget_consumed_percent DESC, p.project_number""", me=manager_id)


def expected(session, name, edge):
    today = edge["today"]
    return {"mrr": lambda: expected_mrr(session, today), "renewals": lambda: expected_renewals(session, today),
            "utilization": lambda: expected_utilization(session, edge["monday"]),
            "sla": lambda: expected_sla(session, today), "profitability": lambda: expected_profitability(session, today),
            "overdue": lambda: expected_overdue(session, today),
            "budget-burn": lambda: expected_budget_burn(session)}[name]()


ARGS = {"utilization": "week={monday}"}


def _json_rows(rows, keys):
    return [{k: plain(row[k]) for k in keys} for row in rows]


def _table_rows(page: str) -> list[list[str]]:
    """The page's table body as text, cell by cell."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
        rows.append([html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell))).strip() for cell in cells])
    return rows


def _shown(value) -> str:
    """How the page writes a first-column value."""
    if isinstance(value, date):
        return f"{value.day} {value:%b %Y}"
    return str(value)


# --- each report: service, page, CSV and API against the SQL ---------------------------------------

@pytest.mark.parametrize("name", reports.NAMES)
def test_page_csv_and_api_agree_with_the_independent_sql(app, session, browser, edge, name):
    manager = f.make_staff(session, role="account_manager")
    browser.sign_in(manager.email)
    want = expected(session, name, edge)
    keys = [c.key for c in reports.REPORTS[name].COLUMNS]
    assert want, "the edge data gives every report rows"
    assert [list(row) for row in want] == [keys] * len(want)
    query = ARGS.get(name, "").format(monday=edge["monday"])

    report = reports.run(session, policy.Principal(account_id=None, email="", name="x", employee_id=1,
                                                   role=policy.EmployeeRole.ADMIN), name,
                         dict(p.split("=") for p in query.split("&") if p), edge["today"])
    assert _json_rows(report.rows, keys) == _json_rows(want, keys)

    page = browser.get(f"/staff/reports/{name}?{query}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    shown = _table_rows(text)
    assert [row[0] for row in shown] == [_shown(row[keys[0]]) for row in want[:50]]
    assert f"({len(want)} row" in text
    assert '<svg class="chart__svg"' in text and 'role="img"' in text

    download = browser.get(f"/staff/reports/{name}.csv?{query}")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    assert lines[0] == keys
    escape = lambda v: "'" + v if v.startswith(("=", "+", "-", "@")) else v  # noqa: E731
    assert lines[1:] == [[escape(csv_cell(row[k])) for k in keys] for row in want]

    _, _, token = make_client(session, "reports:read")
    answer = Api(app.test_client(), token).get(f"/api/reports/{name}?{query}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["report"] == name and body["as_of"] == edge["today"].isoformat()
    assert body["rows"] == _json_rows(want, keys)


def test_the_edge_cases_land_where_the_corrections_say(session, edge):
    admin = policy.Principal(account_id=None, email="", name="x", employee_id=1, role=policy.EmployeeRole.ADMIN)
    today = edge["today"]
    run = lambda name, args=None: reports.run(session, admin, name, args or {}, today)  # noqa: E731
    sla_rows = {(r["customer"], r["priority"]): r for r in run("sla").rows}
    alpha_high = sla_rows[("Alpha Edge Ltd", "high")]
    assert (alpha_high["met"], alpha_high["missed"]) == (1, 1)  # 30 h against 24 h is missed (EXTRACT(HOURS) said 6)
    assert sla_rows[("=Beta Formula Inc", "critical")]["met"] == 1  # closed tickets count
    assert sla_rows[("=Beta Formula Inc", "low")]["no_response"] == 1
    assert not any(r["customer"] == "Gamma Edge Co" for r in sla_rows.values())  # no contract, no SLA
    # The seniors' home reads the same period's totals with a query of its own.
    from portal.services.reports import sla_compliance

    totals = tuple(sum(r[k] for r in sla_rows.values()) for k in ("met", "missed", "no_response"))
    assert sla_compliance.team_sla(session, today) == totals and sum(totals) > 3
    # The homes' first projects by burn are the report's first, read with a LIMIT.
    from portal.services.reports import budget_burn

    every = budget_burn.burn_rows(session, admin)
    assert len(every) >= 3 and budget_burn.burn_rows(session, admin, limit=2) == every[:2]

    overdue = {r["invoice_number"]: r for r in run("overdue").rows}
    beta = [r for r in overdue.values() if r["customer"] == "=Beta Formula Inc"]
    assert {r["billing_contacts"] for r in beta} == {"ap@beta.example; pay@beta.example"}
    assert [r["billing_contacts"] for r in overdue.values() if r["customer"] == "Gamma Edge Co"] == [""]
    assert sorted(r["collection_status"] for r in overdue.values()) == [
        "Collections Required", "Overdue", "Recently Overdue", "Seriously Overdue"]
    partly = next(r for r in overdue.values() if r["customer"] == "Alpha Edge Ltd")
    assert (partly["total_amount"], partly["outstanding_amount"]) == (D("800.00"), D("600.00"))

    profit = {r["customer"]: r for r in run("profitability").rows}
    assert profit["Alpha Edge Ltd"]["revenue"] == D("1300.00")  # sent 800 (partly paid) + paid 500; not cancelled, draft, old
    # 9.5 h x 60 of support (non-billable included) + 8.1 h x 40 on the project; pending time is no cost
    assert profit["=Beta Formula Inc"]["internal_cost"] == D("894.00")

    burn = {r["project_name"]: r for r in run("budget-burn").rows}
    assert burn["Exactly eighty"]["budget_consumed_percent"] == D("80.0") and not burn["Exactly eighty"]["over_80_percent"]
    assert burn["Over eighty"]["over_80_percent"] and "Done" not in burn

    util = {r["technician"]: r for r in run("utilization", {"week": edge["monday"].isoformat()}).rows}
    assert (util["Tess Tech"]["billable_hours"], util["Tess Tech"]["non_billable_hours"]) == (D("3.00"), D("2.00"))
    assert "Gone Away" not in util

    mrr = run("mrr").rows
    last_month = mrr[-2]
    alpha_fees = [D("1100.00")]  # only the contract running on the month's last day
    assert last_month["mrr"] >= sum(alpha_fees)
    renewals = {r["contract_number"]: r for r in run("renewals").rows}
    assert {r["renewal_priority"] for r in renewals.values()} == {"Critical", "High", "Medium"}
    assert max(r["days_until_expiration"] for r in renewals.values()) == 90


def test_a_project_manager_reads_the_burn_of_their_own_projects(session, browser, edge):
    browser.sign_in(edge["pm"].email)
    page = browser.get("/staff/reports/budget-burn").get_data(as_text=True)
    rows = _table_rows(page)
    assert [r[0] for r in rows] == [r["project_number"] for r in expected_budget_burn(session, edge["pm"].employee_id)]
    assert "Exactly eighty" in page and "Over eighty" not in page


def test_the_csv_escapes_formulas(session, browser, edge):
    browser.sign_in(f.make_staff(session, role="admin").email)
    text = browser.get("/staff/reports/overdue.csv").get_data(as_text=True)
    assert "'=Beta Formula Inc" in text
    assert not any(line.startswith(("=", "+", "-", "@")) for line in text.splitlines())
    for cell in (c for line in csv.reader(io.StringIO(text)) for c in line):
        assert not cell.startswith(("=", "+", "-", "@")), cell


@pytest.mark.parametrize("role, readable", [
    ("technician", set()), ("senior_technician", {"utilization", "sla"}), ("project_manager", {"budget-burn"}),
    ("account_manager", set(reports.NAMES)), ("admin", set(reports.NAMES))])
def test_who_reads_which_report(session, browser, role, readable):
    person = f.make_staff(session, role=role)
    browser.sign_in(person.email)
    for name in reports.NAMES:
        assert browser.get(f"/staff/reports/{name}").status_code == (200 if name in readable else 403), name
    index = browser.get("/staff/reports/")
    assert index.status_code == (200 if readable else 403)
    if readable:
        listed = set(re.findall(r'href="/staff/reports/([a-z-]+)"', index.get_data(as_text=True)))
        assert listed == readable


def test_the_api_needs_reports_read(app, session):
    _, _, token = make_client(session, "tickets:read")
    answer = Api(app.test_client(), token).get("/api/reports/mrr")
    assert answer.status_code == 403 and answer.mimetype == "application/problem+json"
    assert answer.get_json()["required_scope"] == "reports:read"
    _, _, token = make_client(session, "reports:read")
    api = Api(app.test_client(), token)
    assert api.get("/api/reports/nothing").status_code == 404
    bad = api.get("/api/reports/renewals?days=1000")
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json" and "days" in bad.get_json()["errors"]


def test_a_bad_filter_is_shown_beside_its_field(session, browser):
    browser.sign_in(f.make_staff(session, role="admin").email)
    for url, field in (("/staff/reports/renewals?days=abc", "days"), ("/staff/reports/sla?start=2026-13-01", "start"),
                       ("/staff/reports/sla?start=2026-05-01&end=2026-04-01", "start"),
                       ("/staff/reports/overdue?stage=Nope", "stage"), ("/staff/reports/mrr?months=0", "months")):
        page = browser.get(url)
        assert page.status_code == 422, url
        assert f'id="filter-{field}-error"' in page.get_data(as_text=True), url
    assert browser.get("/staff/reports/renewals.csv?days=abc").status_code == 422


@pytest.mark.parametrize("name", reports.NAMES)
def test_each_report_page_runs_a_fixed_number_of_statements(session, browser, edge, name):
    browser.sign_in(f.make_staff(session, role="admin").email)
    query = ARGS.get(name, "").format(monday=edge["monday"])
    few = count_queries(session, lambda: browser.get(f"/staff/reports/{name}?{query}"))
    for n in range(30):  # more of everything a report reads
        customer = f.make_customer(session)
        f.make_contract(session, customer, end_date=edge["today"] + timedelta(days=10 + n))
        f.make_invoice(session, customer, invoice_status="overdue", invoice_date=edge["today"] - timedelta(days=90),
                       due_date=edge["today"] - timedelta(days=60))
        f.make_project(session, customer, project_status="active")
    many = count_queries(session, lambda: browser.get(f"/staff/reports/{name}?{query}"))
    assert few == many <= 12


def test_report_time_month_follows_inserts_approvals_moves_and_deletes(session, edge):
    def summary():
        return {tuple(r[:3]): r[3] for r in session.execute(sa.text(
            "SELECT month, customer_id, employee_id, approved_hours FROM report_time_month"))}

    def truth():
        return {tuple(r[:3]): r[3] for r in session.execute(sa.text(
            "SELECT date_trunc('month', work_date)::date, customer_id, employee_id, SUM(hours_worked) FROM time_entries "
            "WHERE approval_status = 'approved' GROUP BY 1, 2, 3"))}

    assert summary() == truth()
    session.execute(sa.text("UPDATE time_entries SET approval_status = 'approved', approved_at = now(), "
                            "approved_by_employee_id = :a WHERE approval_status = 'pending'"),
                    {"a": edge["admin"].employee_id})
    assert summary() == truth()
    session.execute(sa.text("UPDATE time_entries SET work_date = work_date - 40, hours_worked = hours_worked / 2"))
    assert summary() == truth()
    session.execute(sa.text("DELETE FROM time_entries WHERE employee_id = :t"), {"t": edge["tech"].employee_id})
    assert summary() == truth()
    assert 0 not in summary().values()


def test_contacts_never_reach_the_reports(session, browser):
    contact = f.make_contact_login(session, is_primary_contact=True, is_billing_contact=True)
    browser.sign_in(contact.email)
    for name in reports.NAMES:
        assert browser.get(f"/staff/reports/{name}").status_code == 403
    assert session.scalar(sa.select(sa.func.count()).select_from(Contact)) >= 1


# --- the staff home per role -------------------------------------------------------------------------

HOME_PARTS = {"technician": {"My queue"}, "senior_technician": {"My queue", "The team"},
              "project_manager": {"My projects", "Phases awaiting the customer"},
              "account_manager": {"The business"},
              "admin": {"My queue", "The team", "Projects", "Phases awaiting the customer", "The business"}}
ALL_PARTS = {"My queue", "The team", "My projects", "Projects", "Phases awaiting the customer", "The business"}


@pytest.mark.parametrize("role", list(HOME_PARTS))
def test_each_role_has_its_home(session, browser, edge, role):
    person = f.make_staff(session, role=role)
    browser.sign_in(person.email)
    page = browser.get("/staff/").get_data(as_text=True)
    titles = {t.split("<")[0].strip() for t in re.findall(r'class="section__title">(.*?)</h[23]>', page, re.S)}
    assert titles & ALL_PARTS == HOME_PARTS[role]
    assert ("Internal cost" in page) is False  # no internal rate on any home


def test_the_account_managers_figures_match_the_sql(session, browser, edge):
    from portal.services.reports.unbilled import refresh_unbilled

    manager = f.make_staff(session, role="account_manager")
    browser.sign_in(manager.email)
    assert "Not counted yet" in browser.get("/staff/").get_data(as_text=True)
    refresh_unbilled(session, clock.now())
    today = edge["today"]
    unbilled = q(session, """
        SELECT COALESCE(SUM(te.hours_worked), 0) AS hours, round(COALESCE(SUM(te.hours_worked * te.billing_rate), 0), 2) AS amount
        FROM time_entries te
        WHERE te.approval_status = 'approved' AND te.is_billable
          AND NOT EXISTS (SELECT 1 FROM invoice_line_items l JOIN invoices i ON i.invoice_id = l.invoice_id
                          WHERE l.time_entry_id = te.entry_id AND i.invoice_status <> 'cancelled')""")[0]
    overdue = q(session, """SELECT COUNT(*) AS n, SUM(GREATEST(total_amount - paid_amount, 0)) AS owed FROM invoices
                            WHERE invoice_status = 'overdue' OR (invoice_status = 'sent' AND due_date < :t)""", t=today)[0]
    renewals = len(expected_renewals(session, today))
    mrr = expected_mrr(session, today)[-1]["mrr"]
    page = browser.get("/staff/").get_data(as_text=True)
    money = lambda v: f"${v:,.2f}"  # noqa: E731
    assert money(unbilled["amount"]) in page and f"Unbilled work, {unbilled['hours']} h" in page
    assert money(overdue["owed"]) in page and f"Overdue, {overdue['n']} invoices" in page
    assert money(mrr) in page and f'>{renewals}</dd>' in page
    assert "As of " in page


def test_a_cancelled_invoice_frees_its_time_for_the_unbilled_count(session, edge):
    from portal.models import TimeEntry
    from portal.services.reports.unbilled import refresh_unbilled, unbilled_now

    refresh_unbilled(session, clock.now())
    before = unbilled_now(session)
    entry = session.scalars(sa.select(TimeEntry).where(TimeEntry.approval_status == "approved",
                                                       TimeEntry.is_billable.is_(True))).first()
    inv = f.make_invoice(session, edge["alpha"], invoice_status="sent", invoice_date=edge["today"],
                         due_date=edge["today"] + timedelta(days=30))
    f.make_line(session, inv, time_entry_id=entry.entry_id, item_type="hourly_work")
    refresh_unbilled(session, clock.now())
    billed = unbilled_now(session)
    assert billed.hours == before.hours - entry.hours_worked and billed.entries == before.entries - 1
    session.execute(sa.text("UPDATE invoices SET invoice_status = 'cancelled' WHERE invoice_id = :i"),
                    {"i": inv.invoice_id})
    refresh_unbilled(session, clock.now())
    assert unbilled_now(session).hours == before.hours


@pytest.mark.parametrize("role", ["technician", "admin"])
def test_the_home_runs_a_fixed_number_of_statements(session, browser, edge, role):
    person = f.make_staff(session, role=role)
    browser.sign_in(person.email)
    few = count_queries(session, lambda: browser.get("/staff/"))
    for n in range(20):
        customer = f.make_customer(session)
        f.make_ticket(session, customer, assigned_employee_id=person.employee_id, status="assigned")
        f.make_project(session, customer, project_status="active", project_manager_id=person.employee_id)
    many = count_queries(session, lambda: browser.get("/staff/"))
    assert few == many <= 12


def test_an_empty_unbilled_count_still_says_when_it_was_made(session):
    """With nothing unbilled at all, the home says "none, as of ..." rather than "not counted yet"."""
    from portal.models import TimeEntry
    from portal.services.reports.unbilled import refresh_unbilled, unbilled_now

    session.execute(sa.delete(TimeEntry))
    refresh_unbilled(session, clock.now())
    empty = unbilled_now(session)
    assert (empty.hours, empty.entries) == (0, 0) and empty.refreshed_at is not None


# --- a report kept for a minute (REPORT_CACHE_SECONDS) ---------------------------------------------

@pytest.fixture
def kept_reports(app):
    """The pages keep reports as in production (the tests' app keeps none: see conftest)."""
    app.extensions["recent_reports"] = reports.RecentReports(60)
    yield app.extensions["recent_reports"]
    app.extensions.pop("recent_reports")


def _late_newcomer(session, today):
    newcomer = f.make_customer(session, company_name="Late Newcomer Ltd")
    invoice = f.make_invoice(session, newcomer, invoice_status="overdue", invoice_date=today - timedelta(days=60),
                             due_date=today - timedelta(days=30))
    f.make_line(session, invoice, unit_price=D("123.00"), line_total=D("123.00"))
    session.flush()


def test_a_kept_report_is_reused_for_its_pages_and_csv_until_recomputed(session, browser, edge, kept_reports):
    admin = f.make_staff(session, role="admin")
    browser.sign_in(admin.email)
    first = browser.get("/staff/reports/overdue").get_data(as_text=True)
    assert "Figures computed at" in first and "Recompute now" in first
    assert "Late Newcomer" not in first
    _late_newcomer(session, edge["today"])

    again = browser.get("/staff/reports/overdue").get_data(as_text=True)
    assert "Late Newcomer" not in again, "the same person, parameters and day read the kept report"
    assert "Late Newcomer" not in browser.get("/staff/reports/overdue.csv").get_data(as_text=True)
    recompute = re.search(r'href="([^"]*fresh=1[^"]*)">Recompute now', again).group(1)

    fresh = browser.get(html.unescape(recompute)).get_data(as_text=True)
    assert "Late Newcomer" in fresh
    assert "fresh=1" not in fresh.split("Recompute now")[1], "paging and the CSV do not recompute again"
    assert "Late Newcomer" in browser.get("/staff/reports/overdue").get_data(as_text=True)
    assert "Late Newcomer" in browser.get("/staff/reports/overdue.csv").get_data(as_text=True)


def test_a_kept_report_is_never_anyone_elses_nor_for_other_parameters(session, browser, other_browser, edge,
                                                                       kept_reports):
    first, second = f.make_staff(session, role="admin"), f.make_staff(session, role="admin")
    browser.sign_in(first.email)
    other_browser.sign_in(second.email)
    assert "Late Newcomer" not in browser.get("/staff/reports/overdue").get_data(as_text=True)
    _late_newcomer(session, edge["today"])
    assert "Late Newcomer" not in browser.get("/staff/reports/overdue").get_data(as_text=True)
    assert "Late Newcomer" in browser.get("/staff/reports/overdue?stage=Overdue").get_data(as_text=True)
    assert "Late Newcomer" in other_browser.get("/staff/reports/overdue").get_data(as_text=True)


def test_recent_reports_forget_after_their_seconds_and_keep_nothing_at_zero(session, edge):
    admin = policy.Principal(account_id=None, email="", name="x", employee_id=1, role=policy.EmployeeRole.ADMIN)
    now = [1000.0]
    recent = reports.RecentReports(60, timer=lambda: now[0])
    one = reports.run(session, admin, "overdue", {}, edge["today"], recent=recent)
    assert reports.run(session, admin, "overdue", {}, edge["today"], recent=recent) is one
    assert reports.run(session, admin, "overdue", {}, edge["today"], recent=recent, fresh=True) is not one
    kept = reports.run(session, admin, "overdue", {}, edge["today"], recent=recent)
    now[0] += 61
    assert reports.run(session, admin, "overdue", {}, edge["today"], recent=recent) is not kept
    assert reports.run(session, admin, "overdue", {}, edge["today"] + timedelta(days=1), recent=recent) is not kept
    nothing = reports.RecentReports(0)
    assert reports.run(session, admin, "overdue", {}, edge["today"], recent=nothing) is not \
        reports.run(session, admin, "overdue", {}, edge["today"], recent=nothing)


def test_a_kept_report_older_than_the_page_it_was_linked_from_is_computed_again(session, browser, edge,
                                                                               kept_reports):
    admin = policy.Principal(account_id=None, email="", name="x", employee_id=1, role=policy.EmployeeRole.ADMIN)
    recent = reports.RecentReports(60)
    kept = reports.run(session, admin, "overdue", {}, edge["today"], recent=recent)
    assert reports.run(session, admin, "overdue", {}, edge["today"], recent=recent,
                       not_before=kept.computed_at) is kept
    newer = reports.run(session, admin, "overdue", {}, edge["today"], recent=recent,
                        not_before=kept.computed_at + timedelta(seconds=1))
    assert newer is not kept and newer.computed_at > kept.computed_at

    browser.sign_in(f.make_staff(session, role="admin").email)
    page = browser.get("/staff/reports/overdue").get_data(as_text=True)
    csv_link = html.unescape(re.search(r'href="([^"]*overdue\.csv[^"]*)"', page).group(1))
    assert "at=" in csv_link, "the CSV link says which computation it belongs to"
    assert browser.get(csv_link).status_code == 200
    for bad in ("yesterday", "9" * 40, "2026-13-45T99:00", "2026-12-01T10:00"):
        assert browser.get(f"/staff/reports/overdue?at={bad}").status_code == 200


def test_recent_reports_keep_a_bounded_number_of_rows(session, edge):
    admin = policy.Principal(account_id=None, email="", name="x", employee_id=1, role=policy.EmployeeRole.ADMIN)
    rows = len(reports.run(session, admin, "overdue", {}, edge["today"]).rows)
    assert rows > 1
    small = reports.RecentReports(60, rows=rows)  # room for less than one report (its rows plus one)
    one = reports.run(session, admin, "overdue", {}, edge["today"], recent=small)
    assert reports.run(session, admin, "overdue", {}, edge["today"], recent=small) is not one
    exact = reports.RecentReports(60, rows=rows + 1)  # room for this report alone
    first = reports.run(session, admin, "overdue", {}, edge["today"], recent=exact)
    assert reports.run(session, admin, "overdue", {}, edge["today"], recent=exact) is first
    reports.run(session, admin, "overdue", {"stage": "Overdue"}, edge["today"], recent=exact)
    assert reports.run(session, admin, "overdue", {}, edge["today"], recent=exact) is not first, \
        "the least recently read report made room"
