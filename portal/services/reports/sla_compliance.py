"""SLA compliance for a chosen period (default the last 30 days): first responses met, missed or
not given, per customer and priority (seed query 4, corrected).

A ticket counts in the period it was opened in (business days, DISPLAY_TIMEZONE), whatever its
status now: the seed left closed tickets out, which left out most finished work. Met and missed
compare the first response with the response deadline the SLA clock stored on the ticket
(services/sla.py computes it, business hours and all, so this report never re-implements the
clock); the hours shown are the whole elapsed time (errata 7: EPOCH, not the HOURS field).
Tickets without a contract have no SLA and are not counted.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from portal.services import clock
from portal.services.errors import Invalid
from portal.services.reports.common import Bar, Chart, Column, Report, day, percent

NAME = "sla"
TITLE = "SLA compliance"
DESCRIPTION = "First responses on time, late or missing, per customer and priority."
FILTERS = (("start", "From", "date", "The first business day of the period."),
           ("end", "To", "date", "The last business day (at most 366 days after the first)."))
COLUMNS = [Column("customer", "Customer"), Column("priority", "Priority"), Column("tickets", "Tickets", "number"),
           Column("met", "Met", "number"), Column("missed", "Missed", "number"),
           Column("no_response", "No response", "number"),
           Column("compliance_percent", "Met of answered", "percent"),
           Column("avg_response_hours", "Average response (h)", "hours")]
PRIORITIES = ("critical", "high", "medium", "low")

SQL = sa.text("""
SELECT c.company_name, t.priority::text AS priority, COUNT(*) AS tickets,
       COUNT(*) FILTER (WHERE t.first_response_at <= t.response_due_at) AS met,
       COUNT(*) FILTER (WHERE t.first_response_at > t.response_due_at) AS missed,
       COUNT(*) FILTER (WHERE t.first_response_at IS NULL) AS no_response,
       round(AVG(EXTRACT(EPOCH FROM t.first_response_at - t.created_at) / 3600), 2) AS avg_hours
FROM support_tickets t
JOIN customers c ON c.customer_id = t.customer_id
WHERE t.contract_id IS NOT NULL AND t.response_due_at IS NOT NULL
  AND t.created_at >= :since AND t.created_at < :until
GROUP BY c.customer_id, c.company_name, t.priority
""")


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The instants the business days [start, end] cover, in the business time zone."""
    zone = clock.business_zone()
    return (datetime.combine(start, time(), tzinfo=zone), datetime.combine(end + timedelta(days=1), time(), tzinfo=zone))


def parameters(args, today: date) -> dict:
    end = day(args.get("end"), "end", today)
    start = day(args.get("start"), "start", end - timedelta(days=29))
    if start > end:
        raise Invalid("The period must start on or before its last day.", field="start")
    if (end - start).days > 366:
        raise Invalid("Choose a period of at most 366 days.", field="start")
    return {"start": start, "end": end}


def build(session, principal, args, today: date) -> Report:
    params = parameters(args, today)
    since, until = period_bounds(params["start"], params["end"])
    rows = []
    for r in session.execute(SQL, {"since": since, "until": until}):
        rows.append({"customer": r.company_name, "priority": r.priority, "tickets": r.tickets, "met": r.met,
                     "missed": r.missed, "no_response": r.no_response,
                     "compliance_percent": percent(r.met, r.met + r.missed), "avg_response_hours": r.avg_hours})
    rows.sort(key=lambda row: (row["customer"], PRIORITIES.index(row["priority"])))
    totals = {p: [0, 0, 0] for p in PRIORITIES}  # one pass over the rows (thousands on a large book)
    for row in rows:
        total = totals[row["priority"]]
        total[0] += row["met"]
        total[1] += row["missed"]
        total[2] += row["no_response"]
    met, missed, none = (sum(v[i] for v in totals.values()) for i in range(3))
    summary = [("Tickets", str(met + missed + none)), ("Met of answered", f"{percent(met, met + missed) or 0} %"),
               ("No response", str(none))]
    chart = Chart("First responses by priority", [
        Bar(p.capitalize(), (("met", totals[p][0]), ("missed", totals[p][1]), ("no_response", totals[p][2])),
            f"{totals[p][0]} met, {totals[p][1]} missed, {totals[p][2]} without response",
            short=f"{totals[p][0]} met, {totals[p][1]} missed, {totals[p][2]} none")
        for p in PRIORITIES], (("met", "Met"), ("missed", "Missed"), ("no_response", "No response")))
    return Report(NAME, TITLE, params, today, COLUMNS, rows, chart, summary)


# The report's totals alone: the same tickets and counts, without a row per customer and priority.
TEAM_SQL = sa.text("""
SELECT COUNT(*) FILTER (WHERE t.first_response_at <= t.response_due_at) AS met,
       COUNT(*) FILTER (WHERE t.first_response_at > t.response_due_at) AS missed,
       COUNT(*) FILTER (WHERE t.first_response_at IS NULL) AS no_response
FROM support_tickets t
WHERE t.contract_id IS NOT NULL AND t.response_due_at IS NOT NULL
  AND t.created_at >= :since AND t.created_at < :until
""")


def team_sla(session, today: date, days: int = 30) -> tuple[int, int, int]:
    """(met, missed, no response) over the last `days` business days (the seniors' home): the report's
    totals for that period."""
    since, until = period_bounds(today - timedelta(days=days - 1), today)
    row = session.execute(TEAM_SQL, {"since": since, "until": until}).one()
    return row.met, row.missed, row.no_response
