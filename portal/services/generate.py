"""Bulk tickets for performance work: `flask generate --tickets 1000000` (docs/performance.md).

`generate_tickets` writes `count` believable support tickets with set-based SQL, one
`INSERT ... SELECT ... FROM generate_series(...)` per batch of 100,000, over the customers,
contacts, contracts and employees already in the database (load the demo data first):

- created over the last three years (from the Monday before), growing by half over the period,
  mostly in office hours on weekdays (Mountain time), in ticket_id order;
- about 97 % closed; the rest open, assigned, in progress, waiting for the customer or resolved:
  a "working" share that fades over two weeks (young tickets are mostly open or in progress) and
  a "stale" share that fades over a year (resolved but never closed, customers who went quiet);
- the customer's contract covering the creation day (none before the first one: no SLA),
  one of the customer's contacts who may open tickets, the work on the technicians mostly;
- assignment, first response, resolution and closing times drawn around the contract's SLA
  hours (about 7 % of responses and 10 % of resolutions late), never after `now` and never before
  `created_at` (chk_ticket_timestamps);
- the SLA columns as services/sla.py computes them for a ticket that never paused (covered time on
  business-hours contracts, through its SQL twin sla_covered_end);
- the search vector from the same ticket_search_document() the trigger uses (the tickets have no
  comments);
- numbers TKT-YYYY-NNNNNN with the year of created_at, numbered in creation order within each year
  from the next value of ticket_number_seq on; the sequence is then moved past the largest
  number given, so the portal's next ticket numbers follow. A sequence value per ticket would
  pass 999999 after a million tickets and no longer fit VARCHAR(15) (numbering.py's format has
  six digits); numbering per year needs only as many values as the busiest year has tickets.
- one `ticket_status_changes` row per ticket (its opening, the first entry of every log), so the
  log is never empty; the moves after it are not generated (the queue never reads them).

Every random choice is a hash of the ticket's position and `seed`: the same arguments give the
same tickets. Everything happens in the caller's transaction and ends with ANALYZE; the caller
commits (and may VACUUM afterwards, which index-only scans need for their visibility map). The
search trigger is off during the insert, which locks support_tickets until the commit: generate
on a database nobody is using.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import accumulate

import sqlalchemy as sa

from portal.models import CompanySize, EmployeeRole, TicketCategory, TicketPriority, TicketStatus
from portal.services.sla import AT_RISK_SHARE

BATCH = 100_000
YEARS = 3
GROWTH = 0.5  # the last week sees 1.5 times the first week's tickets
MAX_NUMBER = 999_999  # TKT-YYYY-NNNNNN: six digits in VARCHAR(15)

# Tickets not closed yet, by age in days: WORKING * exp(-age / WORKING_DAYS) + STALE * exp(-age / STALE_DAYS).
WORKING, WORKING_DAYS = 0.80, 14.0
STALE, STALE_DAYS = 0.05, 365.0
# The status of a ticket not closed: under a day old, working, stale.
FRESH_MIX = {"open": 35, "assigned": 25, "in_progress": 30, "waiting_customer": 7, "resolved": 3}
WORKING_MIX = {"open": 5, "assigned": 10, "in_progress": 35, "waiting_customer": 25, "resolved": 25}
STALE_MIX = {"open": 3, "assigned": 5, "in_progress": 12, "waiting_customer": 35, "resolved": 45}

CATEGORY_WEIGHTS = {
    TicketCategory.SOFTWARE: 25, TicketCategory.HARDWARE: 18, TicketCategory.NETWORK: 15,
    TicketCategory.EMAIL: 15, TicketCategory.SECURITY: 9, TicketCategory.BACKUP: 7, TicketCategory.OTHER: 11,
}
PRIORITY_WEIGHTS = {TicketPriority.LOW: 25, TicketPriority.MEDIUM: 45, TicketPriority.HIGH: 22,
                    TicketPriority.CRITICAL: 8}
SIZE_WEIGHTS = {CompanySize.SMALL: 1.0, CompanySize.MEDIUM: 2.5, CompanySize.LARGE: 5.0}
ROLE_WEIGHTS = {EmployeeRole.SENIOR_TECHNICIAN: 1.0, EmployeeRole.TECHNICIAN: 1.0, EmployeeRole.ADMIN: 0.3,
                EmployeeRole.PROJECT_MANAGER: 0.15, EmployeeRole.ACCOUNT_MANAGER: 0.05}
# Without a contract there is no SLA; the work still takes about this long (hours).
DEFAULT_RESPONSE_HOURS, DEFAULT_RESOLUTION_HOURS = 8, 48
SATISFACTION = {1: 3, 2: 4, 3: 10, 4: 28, 5: 55}  # of the 35 % of closed tickets rated

TITLES = {
    TicketCategory.HARDWARE: [
        "Printer on the second floor not printing", "Replace toner in the office printer",
        "Laptop will not power on", "Monitor flickers at the front desk", "Docking station does not charge laptop",
        "Keyboard and mouse stopped responding", "Scanner jams on every page", "New laptop setup for a new hire",
        "Laptop battery drains within an hour", "Label printer prints blank labels",
    ],
    TicketCategory.SOFTWARE: [
        "Excel crashes when opening shared workbook", "Adobe Acrobat licence for new hire",
        "Teams camera not detected", "Install updates on reception PC", "Line-of-business app shows database error",
        "Outlook add-in missing after update", "Windows update stuck at 35 percent", "QuickBooks will not open company file",
        "Browser keeps opening pop-ups", "Need Visio installed",
    ],
    TicketCategory.NETWORK: [
        "VPN drops every few minutes", "Guest Wi-Fi slow in the evenings", "Printer offline after router restart",
        "No internet in the conference room", "Cannot reach the file server from home", "Wi-Fi keeps disconnecting in the warehouse",
        "Slow network drive access", "Firewall blocks the vendor portal",
    ],
    TicketCategory.EMAIL: [
        "Mailbox over quota", "Shared calendar not visible on iPhone", "Emails to a customer bounce back",
        "Outlook cannot connect to the server", "Set up mailbox forwarding", "Spam getting through to the inbox",
        "Distribution list needs new members", "Mail merge sends from the wrong address",
    ],
    TicketCategory.SECURITY: [
        "Suspicious sign-in alert", "MFA reset after phone replacement", "Phishing email reported by users",
        "Antivirus flagged a file on a workstation", "Account locked out after password change",
        "Former employee still has access", "Request to review admin rights",
    ],
    TicketCategory.BACKUP: [
        "Backup job failed overnight", "Restore a deleted folder", "Restore an old version of a spreadsheet",
        "Backup drive almost full", "Cloud backup reports missed files",
    ],
    TicketCategory.OTHER: [
        "New starter account setup", "Quote for a conference room display", "Leaver account removal",
        "Move a workstation to another desk", "Question about the monthly invoice", "Phone extension for a new hire",
    ],
}
OPENERS = [
    "Reported by phone this morning.", "Several people in the office have the same problem.",
    "This started after yesterday's updates.", "It happens every day around the same time.",
    "Only one user is affected so far.", "We restarted the computer but nothing changed.",
    "The error message was: 'Something went wrong, please try again later'.",
    "It worked fine last week.", "The problem comes and goes.", "A screenshot is attached.",
]
IMPACTS = [
    "Please help as soon as possible.", "Not urgent, whenever you have time.",
    "The team cannot work until this is fixed.", "Customers are waiting on us.",
    "We have a workaround for now.", "It slows everyone down.", "The office manager asked us to report it.",
    "It blocks the month-end close.",
]
NOTES = [
    "Fixed remotely; the user confirmed it works.", "Replaced the faulty part on site.",
    "Configuration corrected and documented in the knowledge base.", "Updated the driver and tested with the user.",
    "Restored from the last good backup.", "Reset the account and walked the user through signing in.",
    "Vendor issue; their patch resolved it.", "Closed after no reply from the customer.",
    "Duplicate of an earlier ticket.", "Explained how to do it; no change needed.",
]

# Tickets per hour of the week, Monday 00:00 Mountain time (07:00 UTC) on: office hours busiest.
_OFFICE = [0.3] * 7 + [3, 8, 10, 10, 9, 7, 9, 10, 9, 7, 4] + [1.5, 1, 0.6, 0.4, 0.3, 0.3]
_WEEKEND = [0.2] * 8 + [0.8] * 10 + [0.3] * 6
HOUR_WEIGHTS = _OFFICE * 5 + _WEEKEND * 2


def _lower_bounds(weights) -> list[float]:
    """Lower bounds of the buckets of `weights` on [0, 1), for width_bucket()."""
    weights = list(weights)
    total = float(sum(weights))
    return [0.0] + [c / total for c in accumulate(weights)][:-1]


def _fractions(weights) -> list[float]:
    total = float(sum(weights))
    return [w / total for w in weights]


def _r(k: int) -> str:
    """SQL for the k-th uniform random number in (0, 1) of the row: a hash of its position and the seed."""
    return f"(CAST(hashint8extended(g.i, :seed * 64 + {k}) & 2147483647 AS float8) + 0.5) / 2147483648"


# created_at of the i-th ticket of `count`: u uniform in position order, stretched by the growth
# (density 1 + GROWTH * x), then laid on the weekly pattern, week by week. Monotonic in i.
_CREATED = """
    SELECT g.i, {r}, :week0 + make_interval(days => 7 * wk.k)
               + make_interval(secs => 3600 * ((wb.b - 1) + (wk.f - (CAST(:hour_lb AS float8[]))[wb.b])
                                             / (CAST(:hour_w AS float8[]))[wb.b])) AS created_at
    FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g(i)
    CROSS JOIN LATERAL (SELECT (g.i - 1 + {r0}) / :count AS u) un
    CROSS JOIN LATERAL (SELECT (sqrt(1 + 2 * :growth * (1 + :growth / 2) * un.u) - 1) / :growth * :weeks AS w) x
    CROSS JOIN LATERAL (SELECT floor(x.w)::int AS k, x.w - floor(x.w) AS f) wk
    CROSS JOIN LATERAL (SELECT width_bucket(wk.f, CAST(:hour_lb AS float8[])) AS b) wb
"""

_YEARS = """
SELECT extract(year FROM created_at AT TIME ZONE 'UTC')::int AS year, min(i), max(i)
FROM ({created}) c GROUP BY 1 ORDER BY 1
"""

_INSERT = """
WITH vectors AS MATERIALIZED (
    -- The search document of ticket_search_document(), its title and description parts computed once
    -- per distinct text: the tickets have no comments, so only the number's part differs by ticket.
    SELECT ARRAY(SELECT setweight(to_tsvector('english', t.title), 'A')
                 FROM unnest(CAST(:titles AS text[])) WITH ORDINALITY AS t(title, n) ORDER BY t.n) AS titles,
           ARRAY(SELECT setweight(to_tsvector('english', o.opener || ' ' || i.impact), 'B')
                 FROM unnest(CAST(:openers AS text[])) WITH ORDINALITY AS o(opener, n)
                 CROSS JOIN unnest(CAST(:impacts AS text[])) WITH ORDINALITY AS i(impact, n)
                 ORDER BY o.n, i.n) AS descriptions
),
new AS (
INSERT INTO support_tickets (
    ticket_id, ticket_number, customer_id, contract_id, contact_id, assigned_employee_id, title, description,
    category, priority, status, created_at, assigned_at, first_response_at, resolved_at, closed_at,
    estimated_hours, resolution_notes, customer_satisfaction, response_due_at, resolution_due_at, sla_due_at,
    sla_at_risk_at, last_activity_at, search_vector)
SELECT e.ticket_id, e.ticket_number, e.customer_id, e.contract_id, e.contact_id, e.employee_id, e.title, e.description,
       e.category, e.priority, e.status, e.created_at, e.assigned_at, e.first_response_at, e.resolved_at, e.closed_at,
       e.estimated_hours, e.resolution_notes, e.customer_satisfaction, e.response_due_at, e.resolution_due_at,
       e.sla_due_at,
       CASE WHEN e.business_hours AND e.sla_due_at IS NOT NULL
            THEN sla_covered_end(e.contract_id, e.created_at, CAST((1 - :at_risk) * 3600 * e.window_hours AS numeric))
            ELSE e.sla_due_at - make_interval(secs => :at_risk * 3600 * e.window_hours) END,
       GREATEST(e.created_at, e.assigned_at, e.first_response_at, e.resolved_at, e.closed_at),
       setweight(to_tsvector('simple', e.ticket_number), 'A') || v.titles[e.title_n]
           || v.descriptions[(e.opener_n - 1) * cardinality(CAST(:impacts AS text[])) + e.impact_n]
FROM vectors v, (
    SELECT d.*,
           CASE WHEN d.response_due_at IS NULL OR d.status IN ('waiting_customer', 'resolved', 'closed') THEN NULL
                WHEN d.first_response_at IS NULL AND d.response_due_at <= d.resolution_due_at THEN d.response_due_at
                ELSE d.resolution_due_at END AS sla_due_at,
           CASE WHEN d.first_response_at IS NULL AND d.response_due_at <= d.resolution_due_at
                THEN d.response_hours ELSE d.resolution_hours END AS window_hours
    FROM (
        SELECT c.*,
               CASE WHEN c.status <> 'open' THEN c.created_at + make_interval(secs => 3600 * LEAST(c.d_assign, 0.2 * c.age_h)) END
                   AS assigned_at,
               CASE WHEN c.status IN ('in_progress', 'waiting_customer', 'resolved', 'closed')
                         OR (c.status = 'assigned' AND c.r10 < 0.3)
                    THEN c.created_at + make_interval(secs => 3600 * LEAST(c.d_response, 0.4 * c.age_h)) END
                   AS first_response_at,
               CASE WHEN c.status IN ('resolved', 'closed')
                    THEN c.created_at + make_interval(secs => 3600 * LEAST(c.d_resolve, 0.8 * c.age_h)) END
                   AS resolved_at,
               CASE WHEN c.status = 'closed'
                    THEN c.created_at + make_interval(secs => 3600 * LEAST(c.d_resolve + 24 + 144 * c.r11, c.age_h)) END
                   AS closed_at,
               CASE WHEN c.status IN ('resolved', 'closed')
                    THEN (CAST(:notes AS text[]))[1 + floor(c.r12 * cardinality(CAST(:notes AS text[])))::int] END
                   AS resolution_notes,
               CASE WHEN c.status = 'closed' AND c.r13 < 0.35
                    THEN width_bucket(c.r14, CAST(:satisfaction_lb AS float8[])) END AS customer_satisfaction,
               CASE WHEN c.status <> 'open' AND c.priority IN ('high', 'critical') AND c.r18 < 0.5
                    THEN (ARRAY[1, 2, 4, 6, 8])[1 + floor(c.r17 * 5)::int] END AS estimated_hours,
               -- Business-hours contracts count covered time (services/sla.py's SQL twin, migration 0020).
               CASE WHEN c.business_hours THEN sla_covered_end(c.contract_id, c.created_at, c.response_hours * 3600)
                    ELSE c.created_at + make_interval(hours => c.response_hours) END AS response_due_at,
               CASE WHEN c.business_hours THEN sla_covered_end(c.contract_id, c.created_at, c.resolution_hours * 3600)
                    ELSE c.created_at + make_interval(hours => c.resolution_hours) END AS resolution_due_at,
               'TKT-' || c.year || '-' || lpad((:base + c.i - (CAST(:year_first AS int[]))[c.year - :first_year + 1])::text,
                                               6, '0') AS ticket_number,
               (CAST(:titles AS text[]))[c.title_n] AS title,
               (CAST(:openers AS text[]))[c.opener_n] || ' ' || (CAST(:impacts AS text[]))[c.impact_n] AS description
        FROM (
            SELECT b.*, k.contract_id, k.response_hours, k.resolution_hours, coalesce(k.business_hours, false)
                   AS business_hours,
                   CASE WHEN b.status <> 'open'
                        THEN (CAST(:employee_ids AS int[]))[width_bucket(b.r16, CAST(:employee_lb AS float8[]))]
                        END AS employee_id,
                   CASE WHEN (CAST(:contact_count AS int[]))[b.cust] > 0
                        THEN (CAST(:contact_ids AS int[]))[(CAST(:contact_offset AS int[]))[b.cust]
                             + 1 + floor(b.r6 * (CAST(:contact_count AS int[]))[b.cust])::int] END AS contact_id,
                   (CAST(:title_offset AS int[]))[b.cat] + 1 + floor(b.r15 * (CAST(:title_count AS int[]))[b.cat])::int
                       AS title_n,
                   1 + floor(b.r7 * cardinality(CAST(:openers AS text[])))::int AS opener_n,
                   1 + floor(b.r8 * cardinality(CAST(:impacts AS text[])))::int AS impact_n,
                   COALESCE(k.response_hours, :default_response) * (0.02 + 0.5 * b.r9 ^ 2) AS d_assign,
                   COALESCE(k.response_hours, :default_response) * GREATEST(0.02 + 0.5 * b.r9 ^ 2, 0.05 + 1.1 * b.r10 ^ 2)
                       AS d_response,
                   GREATEST(COALESCE(k.response_hours, :default_response)
                                * GREATEST(0.02 + 0.5 * b.r9 ^ 2, 0.05 + 1.1 * b.r10 ^ 2) + 0.25,
                            COALESCE(k.resolution_hours, :default_resolution) * (0.1 + 1.05 * b.r11 ^ 1.5)) AS d_resolve
            FROM (
                SELECT a.*, extract(year FROM a.created_at AT TIME ZONE 'UTC')::int AS year,
                       CAST(extract(epoch FROM CAST(:now AS timestamptz) - a.created_at) AS float8) / 3600 AS age_h,
                       width_bucket(a.r1, CAST(:customer_lb AS float8[])) AS cust,
                       (CAST(:customer_ids AS int[]))[width_bucket(a.r1, CAST(:customer_lb AS float8[]))] AS customer_id,
                       width_bucket(a.r2, CAST(:category_lb AS float8[])) AS cat,
                       CAST((CAST(:categories AS text[]))[width_bucket(a.r2, CAST(:category_lb AS float8[]))]
                            AS ticket_category) AS category,
                       CAST((CAST(:priorities AS text[]))[width_bucket(a.r3, CAST(:priority_lb AS float8[]))]
                            AS ticket_priority) AS priority,
                       CAST(CASE
                           WHEN a.r4 < :stale * exp(-a.age_d / :stale_days)
                               THEN (CAST(:mix_statuses AS text[]))[width_bucket(a.r5, CAST(:stale_lb AS float8[]))]
                           WHEN a.r4 < :stale * exp(-a.age_d / :stale_days) + :working * exp(-a.age_d / :working_days)
                               THEN (CAST(:mix_statuses AS text[]))[CASE WHEN a.age_d < 1
                                   THEN width_bucket(a.r5, CAST(:fresh_lb AS float8[]))
                                   ELSE width_bucket(a.r5, CAST(:working_lb AS float8[])) END]
                           ELSE 'closed' END AS ticket_status) AS status,
                       CAST(nextval('support_tickets_ticket_id_seq') AS int) AS ticket_id
                FROM (
                    SELECT t.*, CAST(extract(epoch FROM CAST(:now AS timestamptz) - t.created_at) AS float8) / 86400 AS age_d
                    FROM ({created}) t OFFSET 0
                ) a OFFSET 0
            ) b
            LEFT JOIN LATERAL (
                SELECT sc.contract_id, sc.response_time_hours AS response_hours,
                       sc.resolution_time_hours AS resolution_hours, sc.coverage_days IS NOT NULL AS business_hours
                FROM service_contracts sc
                WHERE sc.customer_id = b.customer_id
                  AND sc.contract_status IN ('active', 'expired')
                  AND (b.created_at AT TIME ZONE 'UTC')::date BETWEEN sc.start_date AND sc.end_date
                ORDER BY sc.start_date DESC LIMIT 1
            ) k ON true
            OFFSET 0
        ) c
        OFFSET 0
    ) d
    OFFSET 0
) e
RETURNING ticket_id, contact_id, created_at
)
INSERT INTO ticket_status_changes (ticket_id, from_status, to_status, changed_at, actor_type, actor_id)
SELECT ticket_id, NULL, 'open', created_at,
       CAST(CASE WHEN contact_id IS NULL THEN 'system' ELSE 'contact' END AS actor_type), contact_id
FROM new
"""


def _week0(now: datetime) -> datetime:
    """Monday 07:00 UTC (midnight in Denver) on or before three years before `now`."""
    start = now.astimezone(UTC) - timedelta(days=365 * YEARS)
    monday = datetime(start.year, start.month, start.day, 7, tzinfo=UTC) - timedelta(days=start.weekday())
    return monday if monday <= start else monday - timedelta(days=7)


def _weighted_weeks(week0: datetime, now: datetime) -> float:
    """How many 'weeks of tickets' lie between week0 and now (the last week counted by its weights)."""
    elapsed = (now - week0) / timedelta(hours=1)
    weeks, hours = divmod(elapsed, 168)
    hour = int(hours)
    fractions = _fractions(HOUR_WEIGHTS)
    return weeks + sum(fractions[:hour]) + (hours - hour) * fractions[hour]


def _people(session):
    """Customers (weighted by size) with their contacts who may open tickets, and employees (by role)."""
    customers = session.execute(sa.text(
        "SELECT customer_id, company_size FROM customers WHERE account_status <> 'prospect' ORDER BY customer_id"
    )).all()
    if not customers:
        raise ValueError("No customers: load the demo data first (flask seed).")
    contacts = session.execute(sa.text(
        "SELECT customer_id, contact_id FROM contacts WHERE can_create_tickets ORDER BY customer_id, contact_id"
    )).all()
    employees = session.execute(sa.text(
        "SELECT employee_id, role FROM employees WHERE employment_status = 'active' ORDER BY employee_id"
    )).all()
    employees = [(e, ROLE_WEIGHTS.get(EmployeeRole(role), 0.1)) for e, role in employees]
    if not employees:
        raise ValueError("No active employees: load the demo data first (flask seed).")
    by_customer = {c: [k for cc, k in contacts if cc == c] for c, _ in customers}
    contact_ids, offsets, counts = [], [], []
    for customer_id, _ in customers:
        offsets.append(len(contact_ids))
        counts.append(len(by_customer[customer_id]))
        contact_ids += by_customer[customer_id]
    return {
        "customer_ids": [c for c, _ in customers],
        "customer_lb": _lower_bounds(SIZE_WEIGHTS.get(CompanySize(size), 1.5) for _, size in customers),
        "contact_ids": contact_ids,
        "contact_offset": offsets,
        "contact_count": counts,
        "employee_ids": [e for e, _ in employees],
        "employee_lb": _lower_bounds(w for _, w in employees),
    }


def _texts() -> dict:
    categories = list(CATEGORY_WEIGHTS)
    titles, offsets, counts = [], [], []
    for category in categories:
        offsets.append(len(titles))
        counts.append(len(TITLES[category]))
        titles += TITLES[category]
    return {
        "categories": [c.value for c in categories],
        "category_lb": _lower_bounds(CATEGORY_WEIGHTS.values()),
        "titles": titles, "title_offset": offsets, "title_count": counts,
        "priorities": [p.value for p in PRIORITY_WEIGHTS],
        "priority_lb": _lower_bounds(PRIORITY_WEIGHTS.values()),
        "openers": OPENERS, "impacts": IMPACTS, "notes": NOTES,
        "satisfaction_lb": _lower_bounds(SATISFACTION.values()),
    }


def _status_model() -> dict:
    statuses = [s.value for s in TicketStatus if s != TicketStatus.CLOSED]
    mixes = {"stale": STALE_MIX, "fresh": FRESH_MIX, "working": WORKING_MIX}
    params = {"mix_statuses": statuses}
    for name, mix in mixes.items():
        params[f"{name}_lb"] = _lower_bounds(mix.get(s, 0) for s in statuses)
    params.update(stale=STALE, stale_days=STALE_DAYS, working=WORKING, working_days=WORKING_DAYS)
    return params


def generate_tickets(session, count: int, *, now: datetime, seed: int = 1, batch: int = BATCH) -> int:
    """Insert `count` generated tickets (and their first status-log rows); returns how many.

    :raises ValueError: no customers or employees yet, or a year would need ticket numbers
        past 999999.
    """
    if count <= 0:
        return 0
    now = now.astimezone(UTC)
    week0 = _week0(now)
    randoms = ", ".join(f"{_r(k)} AS r{k}" for k in range(19))
    created = _CREATED.format(r=randoms, r0=_r(0))
    params = {
        "seed": seed, "count": count, "now": now, "week0": week0, "growth": GROWTH,
        "weeks": _weighted_weeks(week0, now),
        "hour_lb": _lower_bounds(HOUR_WEIGHTS), "hour_w": _fractions(HOUR_WEIGHTS),
        "default_response": DEFAULT_RESPONSE_HOURS, "default_resolution": DEFAULT_RESOLUTION_HOURS,
        "at_risk": AT_RISK_SHARE,
        **_people(session), **_texts(), **_status_model(),
    }

    # Numbers: per year, in creation order, from the sequence's next value on.
    years = session.execute(sa.text(_YEARS.format(created=created)), {**params, "lo": 1, "hi": count}).all()
    widest = max(last - first + 1 for _, first, last in years)
    base = session.execute(sa.text("SELECT nextval('ticket_number_seq')")).scalar_one()
    if base + widest - 1 > MAX_NUMBER:
        raise ValueError(f"{widest} tickets in one year from number {base} on would pass TKT-YYYY-{MAX_NUMBER}.")
    session.execute(sa.text("SELECT setval('ticket_number_seq', :last)"), {"last": base + widest - 1})
    first_year = years[0][0]
    year_first = [0] * (years[-1][0] - first_year + 1)
    for year, first, _ in years:
        year_first[year - first_year] = first
    params.update(base=base, first_year=first_year, year_first=year_first)

    insert = sa.text(_INSERT.format(created=created))
    # trg_ticket_search would compute the same document row by row (about a third of the insert's
    # time: to_tsvector on every title and description); the insert writes it from vectors computed
    # once per distinct text instead. Disabling a trigger locks the table (ACCESS EXCLUSIVE) until
    # the caller commits; DDL is transactional, so a failure rolls the switch back too.
    session.execute(sa.text("ALTER TABLE support_tickets DISABLE TRIGGER trg_ticket_search"))
    for lo in range(1, count + 1, batch):
        session.execute(insert, {**params, "lo": lo, "hi": min(lo + batch - 1, count)})
    session.execute(sa.text("ALTER TABLE support_tickets ENABLE TRIGGER trg_ticket_search"))
    session.execute(sa.text("ANALYZE support_tickets"))
    session.execute(sa.text("ANALYZE ticket_status_changes"))
    return count
