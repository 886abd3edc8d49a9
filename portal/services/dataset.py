"""A whole realistic data set for load tests: `flask generate --scale small|large [--seed N]`.

Written into a migrated database holding no customers yet, in one transaction, with PostgreSQL
COPY (psycopg) and a progress bar per table. The same seed on the same day gives the same rows
(`today` is a parameter; every random choice comes from `random.Random` seeded per table).

What `large` holds (SCALES): 2,000 customers (one with 40 % of all tickets, three more very
large, prospects with nothing), 10,000 contacts (the first of each customer primary, billing and
project sponsor) with logins, 200 employees of every role with logins, about 3,000 contracts
(chains of one- to three-year contracts over each customer's history; the current one active),
1,000,000 tickets over 5 years (office hours, statuses by age, SLA columns as services/sla.py
computes them, 0-6 comments, an opening status-log row and one for the current status),
5,000,000 time entries (on tickets and projects; approved, rejected with a reason, or pending
when recent; never approved by their author), 10,000 projects with 2-5 phases (statuses by date,
approvals by a sponsor), and an invoice for every customer and past month that bills exactly the
approved billable entries of that month plus the monthly fee (`generate_invoices`, by
services/invoicing.price_time: today's invoicing rules, in one place).

How it stays fast and correct. During the load the transaction runs with
`session_replication_role = replica`: no trigger fires, foreign keys included (each would cost a
lookup per row). So everything the triggers keep is written by the loader itself and then
CHECKED (`check_dataset`): tickets' actual_hours, projects' actual_cost, invoice subtotals, tax
and totals, the reports' report_time_month, approvals' pending_time_totals, the billing columns (periods, billing months, a fee month
billed once), the search vectors, and every foreign key of the loaded tables (an anti-join per
constraint, as PostgreSQL's own validation does). CHECK, NOT NULL and unique constraints are
checked by PostgreSQL during the COPY as always. Secondary indexes of the large tables are
dropped first and built again after the load (faster than maintaining them row by row).
Needs a superuser (or a role allowed to set session_replication_role).
"""

from __future__ import annotations

import queue
import random
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace

import sqlalchemy as sa

from portal.models import TicketStatus
from portal.models.time_entries import PENDING_TIME_TOTALS
from portal.services import generate as ticket_texts
from portal.services import slow_queries
from portal.services.invoicing import _hours, _share, fee_months, month_fee, price_time
from portal.services.money import to_cents
from portal.services.numbering import format_number
from portal.services.sla import compute_sla


@dataclass(frozen=True)
class Scale:
    customers: int
    contacts: int
    employees: int
    contracts: int  # a target: chains of contracts over each customer's history come near it
    tickets: int
    entries: int
    projects: int
    years: int
    # Shares of all tickets of the few very large customers (the first one is "the 400k customer").
    big: tuple[float, ...] = (0.40, 0.04, 0.025, 0.015)


SCALES = {
    "small": Scale(customers=24, contacts=120, employees=20, contracts=36, tickets=4_000, entries=20_000,
                   projects=40, years=2),
    "large": Scale(customers=2_000, contacts=10_000, employees=200, contracts=3_000, tickets=1_000_000,
                   entries=5_000_000, projects=10_000, years=5),
}

CHUNK = 25_000  # tickets generated and copied at a time
TICKET_ENTRY_SHARE = 0.8  # of all time entries, on tickets; the rest on projects

# Big tables whose secondary (non-unique, non-key) indexes are dropped during the load and rebuilt.
REBUILT = ["support_tickets", "ticket_comments", "ticket_status_changes", "time_entries", "invoice_line_items",
           "invoices", "projects", "project_phases"]
LOADED = ["customers", "contacts", "employees", "accounts", "service_contracts", "support_tickets",
          "ticket_comments", "ticket_status_changes", "time_entries", "projects", "project_phases", "invoices",
          "invoice_line_items"]

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
         "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Priya", "Wei", "Aisha",
         "Mateo", "Sofia", "Liam", "Olivia", "Noah", "Emma", "Ethan", "Ava", "Lucas", "Mia", "Hiro", "Yuki",
         "Fatima", "Omar", "Elena", "Ivan", "Chloe", "Diego", "Grace"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
        "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
        "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts"]
PLACES = ["Aspen", "Boulder", "Canyon", "Cedar", "Summit", "Granite", "Pioneer", "Frontier", "Prairie", "Redstone",
          "Silverline", "Evergreen", "Highland", "Lakeside", "Riverbend", "Timberline", "Blue Spruce", "Copper",
          "Eagle", "Foothills", "Golden", "Horizon", "Juniper", "Keystone", "Larkspur", "Mesa", "North Star",
          "Oakridge", "Pinnacle", "Quartz", "Rampart", "Sagebrush", "Sunrise", "Trailhead", "Upland", "Vista",
          "Willow", "Yampa", "Zenith", "Alpine"]
TRADES = [("Dental", "Healthcare"), ("Family Medicine", "Healthcare"), ("Veterinary", "Healthcare"),
          ("Law", "Legal"), ("Accounting", "Financial Services"), ("Credit Union", "Financial Services"),
          ("Insurance", "Financial Services"), ("Manufacturing", "Manufacturing"), ("Machine Works", "Manufacturing"),
          ("Logistics", "Transportation"), ("Realty", "Real Estate"), ("Architects", "Construction"),
          ("Builders", "Construction"), ("Engineering", "Engineering"), ("Brewing", "Food & Beverage"),
          ("Foods", "Food & Beverage"), ("Academy", "Education"), ("Outfitters", "Retail"), ("Hotels", "Hospitality"),
          ("Energy", "Energy")]
SUFFIXES = ["Group", "Partners", "LLC", "Inc", "Co", "Associates"]
TIMEZONES = ["America/Denver"] * 6 + ["America/Chicago"] * 3 + ["America/Los_Angeles"] * 2 + ["America/New_York"] * 3 + [
    "America/Phoenix"]
TITLES = ["Office Manager", "IT Coordinator", "Operations Director", "CFO", "Controller", "Practice Manager",
          "Receptionist", "Engineer", "Analyst", "Owner", "Accountant", "HR Manager"]
DEPARTMENTS = ["Operations", "Finance", "Administration", "Engineering", "Sales", "HR"]
ROLES = [("technician", 0.55), ("senior_technician", 0.2), ("project_manager", 0.1), ("account_manager", 0.1),
         ("admin", 0.05)]
COMMENTS_CONTACT = [
    "Thanks, I will try that and let you know.", "It happened again this morning.",
    "Attached a screenshot of the error.", "Still not working for me, sorry.", "That fixed it, thank you!",
    "Can someone call me when you have a moment?", "The user is out until Monday.", "Any update on this?",
]
COMMENTS_STAFF = [
    "Thanks for reporting this. I am looking into it now.", "Could you restart the machine and try again?",
    "I have applied a fix remotely; please confirm it works.", "We have ordered a replacement part.",
    "I will be on site tomorrow morning to take a look.", "The vendor confirmed a known issue; patch scheduled.",
    "Please send the exact error message if it happens again.", "Resolved on our side; closing in a few days.",
]
COMMENTS_INTERNAL = [
    "Checked the logs: disk nearly full on the file server.", "Escalating to senior; driver conflict suspected.",
    "Customer is on the old firewall firmware; plan an upgrade.", "Same issue as last month, see the KB article.",
]
ENTRY_TEXTS = ["Diagnosis and remote fix", "Phone support with the user", "On-site visit", "Configuration change",
               "Follow-up and testing", "Research and vendor call", "Documentation update", "Remote session"]
PROJECT_TEXTS = ["Migration work", "Planning workshop", "Deployment", "Testing and cut-over", "Training session",
                 "Design review", "Configuration", "Documentation"]
PROJECTS = ["Microsoft 365 migration", "Firewall replacement", "Server refresh", "Wi-Fi upgrade",
            "Backup and DR rollout", "Endpoint security rollout", "Office move", "VoIP phone system",
            "Network redesign", "Cloud file server migration", "MFA rollout", "Laptop fleet refresh"]
PHASES = ["Discovery", "Design", "Procurement", "Implementation", "Testing", "Cut-over", "Training", "Handover"]
REJECTIONS = ["Duplicate of another entry.", "Please split travel from work time.", "Wrong ticket; log it again.",
              "Hours look too high for this task."]
TIER_TERMS = {  # monthly fee base, included hours, additional rate, response h, resolution h
    "essential": (1500, 10, 150, 8, 48), "professional": (3500, 25, 135, 4, 24), "enterprise": (9000, 60, 125, 1, 8),
}
SIZE_FACTOR = {"small": 1, "medium": 2.5, "large": 6}
# Hours of the day (Mountain time) tickets are opened, weights.
HOURS = [0.3] * 7 + [3, 8, 10, 10, 9, 7, 9, 10, 9, 7, 4] + [1.5, 1, 0.6, 0.4, 0.3, 0.3]
MOUNTAIN = timedelta(hours=7)

_STATUSES = [s.value for s in TicketStatus if s != TicketStatus.CLOSED]


class Progress:
    """What the loader reports: progress(table, total) returns a callable advanced by row counts."""

    def __call__(self, table: str, total: int) -> Callable[[int], None]:  # pragma: no cover - interface
        return lambda n: None

    def close(self) -> None:
        pass


def _q(v) -> str:
    """One value in COPY text format (our texts hold no tabs, newlines or backslashes)."""
    if v is None:
        return r"\N"
    if v is True:
        return "t"
    if v is False:
        return "f"
    return str(v)


class Copier:
    """COPY rows on the loader's connection from a thread of its own, so PostgreSQL writes one chunk
    while Python builds the next (one COPY at a time on the one connection and transaction)."""

    def __init__(self, cursor, progress):
        self.cursor, self.progress = cursor, progress
        self.bars: dict[str, Callable[[int], None]] = {}
        self.rows: dict[str, int] = defaultdict(int)
        self.work: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def expect(self, table: str, total: int) -> None:
        self.bars[table] = self.progress(table, total)

    def _run(self):
        while True:
            item = self.work.get()
            if item is None:
                return
            table, columns, lines, count = item
            if self.error is not None:
                continue
            try:
                with self.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    copy.write(lines)
                self.rows[table] += count
                if table in self.bars:
                    self.bars[table](count)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the generating thread
                self.error = exc

    def put(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        if self.error is not None:
            raise self.error
        if rows:
            text = "".join("\t".join(map(_q, row)) + "\n" for row in rows)
            self.work.put((table, columns, text, len(rows)))

    def finish(self) -> None:
        self.work.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


def _weighted(rng: random.Random, weights: list[float]):
    """A sampler of indexes by weight (cumulative table + bisect)."""
    from bisect import bisect
    from itertools import accumulate

    cum = list(accumulate(weights))
    total = cum[-1]
    return lambda: bisect(cum, rng.random() * total)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _round_half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass
class Customer:
    id: int
    name: str
    status: str
    tier: str
    size: str
    since: date
    until: date
    contacts: list = None  # (contact_id, can_create_tickets)
    sponsor: int | None = None
    contracts: list = None  # SimpleNamespace rows


def generate_dataset(session, scale: Scale, *, seed: int = 1, today: date, password_hash: str,
                     tax_rate: Decimal = Decimal("0"), progress: Progress | None = None,
                     log: Callable[[str], None] = lambda _: None) -> dict[str, int]:
    """Load a whole data set of `scale` into the (empty) database in the session's transaction; returns rows per table.

    The caller commits (and VACUUMs). :raises ValueError: the database already holds customers.
    """
    progress = progress or Progress()
    # Bulk loading is slow by nature: not for the slow-query log (as the migrations are not).
    session.connection().info[slow_queries.UNWATCHED] = True
    try:
        return _generate(session, scale, seed=seed, today=today, password_hash=password_hash, tax_rate=tax_rate,
                         progress=progress, log=log)
    finally:
        session.connection().info.pop(slow_queries.UNWATCHED, None)


def _generate(session, scale, *, seed, today, password_hash, tax_rate, progress, log):
    if session.scalar(sa.text("SELECT EXISTS (SELECT 1 FROM customers)")):
        raise ValueError("The database already holds customers: generate into an empty (migrated) database.")
    now = datetime(today.year, today.month, today.day, tzinfo=UTC)  # the data ends at midnight UTC (never ahead)
    start = today - timedelta(days=365 * scale.years)
    session.execute(sa.text("SET LOCAL session_replication_role = replica"))
    session.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
    session.execute(sa.text("SET LOCAL synchronous_commit = off"))
    session.execute(sa.text("SET LOCAL work_mem = '256MB'"))
    dropped = _drop_secondary_indexes(session)
    session.execute(sa.text(
        f"CREATE TEMP TABLE generated_tickets ON COMMIT DROP AS SELECT {', '.join(TICKET_COLUMNS[:-2])}"
        " FROM support_tickets WITH NO DATA"))
    session.execute(sa.text("ALTER TABLE generated_tickets ADD title_n int, ADD description_n int"))
    cursor = session.connection().connection.driver_connection.cursor()
    copier = Copier(cursor, progress)
    try:
        employees = _employees(copier, scale, seed, start, password_hash)
        customers = _customers(copier, scale, seed, start, today, password_hash)
        _contracts(copier, customers, seed, today)
        used = _tickets(copier, scale, customers, employees, seed, today, now)
        _projects(copier, scale, customers, employees, seed, today, now, entries=scale.entries - used,
                  first_entry=used + 1)
    finally:
        copier.finish()
    log("Search vectors ...")
    _finish_tickets(session)
    log("Pricing the invoices ...")
    copier = Copier(cursor, progress)
    try:
        generate_invoices(session, copier, seed=seed, today=today, tax_rate=tax_rate)
    finally:
        copier.finish()
    log("Sequences and indexes ...")
    _advance_sequences(session)
    bar = progress("indexes", len(dropped))
    for definition in dropped:
        session.execute(sa.text(definition))
        bar(1)
    log("Report summaries ...")
    # report_time_month is kept by statement triggers on time_entries, which did not fire during the
    # load: written here from the entries, as migration 0019 does for existing data.
    session.execute(sa.text("""
        INSERT INTO report_time_month (month, customer_id, employee_id, approved_hours)
        SELECT date_trunc('month', work_date)::date, customer_id, employee_id, SUM(hours_worked)
        FROM time_entries WHERE approval_status = 'approved' GROUP BY 1, 2, 3 HAVING SUM(hours_worked) <> 0"""))
    # pending_time_totals likewise (migration 0025's backfill).
    session.execute(sa.text(f"INSERT INTO pending_time_totals (employee_id, project_id, entries, hours, value) "
                            f"{PENDING_TIME_TOTALS}"))
    session.execute(sa.text("SET LOCAL session_replication_role = DEFAULT"))
    log("Checking every constraint and derived column ...")
    problems = check_dataset(session, today=today)
    if problems:
        raise ValueError("The generated data breaks its rules:\n  " + "\n  ".join(problems))
    # What the worker counts every five minutes (unbilled work, the portal's months not yet invoiced),
    # counted once so the pages have it before a worker runs.
    from portal.services import clock
    from portal.services.reports.unbilled import refresh_unbilled

    log("Unbilled work and months not yet invoiced ...")
    refresh_unbilled(session, clock.now())
    return {table: session.scalar(sa.text(f"SELECT count(*) FROM {table}")) for table in LOADED}


def _drop_secondary_indexes(session) -> list[str]:
    """Drop the indexes of the big tables that back no constraint; return their definitions."""
    rows = session.execute(sa.text("""
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
        WHERE t.relname = ANY(:tables) AND t.relnamespace = 'public'::regnamespace
          AND NOT i.indisunique AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY 1"""), {"tables": REBUILT}).all()
    for name, _ in rows:
        session.execute(sa.text(f"DROP INDEX {name}"))
    return [definition for _, definition in rows]


def _employees(copier, scale, seed, start, password_hash):
    rng = random.Random(f"{seed}-employees")
    pick_role = _weighted(rng, [w for _, w in ROLES])
    rows, accounts, employees = [], [], []
    for i in range(1, scale.employees + 1):
        role = ROLES[pick_role()][0] if i > len(ROLES) else ROLES[i - 1][0]  # one of each role first
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}.{i}@techserv.com"
        rate_in = {"technician": 45, "senior_technician": 65, "project_manager": 70, "account_manager": 60,
                   "admin": 75}[role] + rng.randint(0, 15)
        rate_out = round(rate_in * 2.2 / 5) * 5
        hired = start - timedelta(days=rng.randint(30, 2000))
        rows.append((i, f"EMP{i:05d}", first, last, email, f"303-555-{1000 + i % 9000:04d}", "active",
                     hired, None, role, None, f"{rate_in}.00", f"{rate_out}.00", "40.0", i % 9 == 0,
                     "Support" if "technician" in role else ("Projects" if role == "project_manager" else "Office")))
        accounts.append((email, password_hash, None, i, True))
        employees.append(SimpleNamespace(id=i, role=role, rate=f"{rate_out}.00", hired=hired))
    copier.expect("employees", len(rows))
    copier.put("employees", ["employee_id", "employee_number", "first_name", "last_name", "email", "phone",
                             "employment_status", "hire_date", "termination_date", "role", "skills_certifications",
                             "hourly_rate_internal", "hourly_rate_client", "capacity_hours_weekly", "is_on_call",
                             "department"], rows)
    copier.expect("accounts", scale.employees + scale.contacts)
    copier.put("accounts", ["email", "password_hash", "contact_id", "employee_id", "is_active"], accounts)
    return employees


def _customers(copier, scale, seed, start, today, password_hash):
    rng = random.Random(f"{seed}-customers")
    names = [(p, t, s) for p in PLACES for t in TRADES for s in SUFFIXES]
    rng.shuffle(names)
    customers, rows = [], []
    for i in range(1, scale.customers + 1):
        place, (trade, industry), suffix = names[i - 1]
        big = i <= len(scale.big)
        roll = rng.random()
        status = "active" if big or roll < 0.88 else ("suspended" if roll < 0.92 else
                                                      ("inactive" if roll < 0.96 else "prospect"))
        size = "large" if big else rng.choice(["small", "small", "small", "medium", "medium", "large"])
        tier = "enterprise" if big else rng.choice(["breakfix", "essential", "essential", "professional",
                                                    "professional", "enterprise"])
        since = start if big else start + timedelta(days=int(rng.random() ** 1.5 * 365 * scale.years * 0.9))
        until = today if status in ("active", "suspended") else (
            today - timedelta(days=rng.randint(60, 700)) if status == "inactive" else since)
        until = max(until, since + timedelta(days=90)) if status == "inactive" else until
        name = f"{place} {trade} {suffix}"
        domain = f"{place}{trade}{i}".lower().replace(" ", "").replace("&", "") + ".example.com"
        c = Customer(i, name, status, tier, size, since, min(until, today), [], None, [])
        c.domain = domain
        customers.append(c)
        rows.append((i, name, industry, size, f"{rng.randint(10, 99)}-{rng.randint(1000000, 9999999)}",
                     f"it@{domain}", tier, status, f"{0.5 + rng.random() / 2:.2f}",
                     f"{rng.randint(100, 9999)} Main St, Denver, CO", None, rng.choice(TIMEZONES),
                     datetime.combine(since, datetime.min.time(), UTC) - timedelta(days=30)))
    copier.expect("customers", len(rows))
    copier.put("customers", ["customer_id", "company_name", "industry", "company_size", "tax_id",
                             "primary_contact_email", "service_tier", "account_status", "account_health_score",
                             "billing_address", "service_address", "timezone", "created_at"], rows)
    # Contacts: the very large customers get more; every customer at least one (primary, billing, sponsor).
    weights = [40 if i < len(scale.big) else SIZE_FACTOR[c.size] for i, c in enumerate(customers)]
    counts = [1] * len(customers)
    pick = _weighted(rng, weights)
    for _ in range(scale.contacts - len(customers)):
        counts[pick()] += 1
    rows, accounts, contact_id = [], [], 0
    for c, n in zip(customers, counts):
        for k in range(n):
            contact_id += 1
            first, last = rng.choice(FIRST), rng.choice(LAST)
            primary = k == 0
            sponsor = primary or rng.random() < 0.1
            creates = primary or rng.random() < 0.9
            rows.append((contact_id, c.id, first, last, f"{first.lower()}.{last.lower()}.{contact_id}@{c.domain}",
                         f"720-555-{contact_id % 10000:04d}", None, rng.choice(TITLES), rng.choice(DEPARTMENTS),
                         primary, primary or rng.random() < 0.05, creates, sponsor,
                         rng.choice(["email", "email", "email", "phone", "sms"])))
            accounts.append((rows[-1][4], password_hash, contact_id, None, True))
            c.contacts.append((contact_id, creates))
            if primary:
                c.sponsor = contact_id
    copier.expect("contacts", len(rows))
    copier.put("contacts", ["contact_id", "customer_id", "first_name", "last_name", "email", "phone", "mobile",
                            "title", "department", "is_primary_contact", "is_billing_contact", "can_create_tickets",
                            "can_approve_projects", "communication_preference"], rows)
    copier.put("accounts", ["email", "password_hash", "contact_id", "employee_id", "is_active"], accounts)
    return customers


def _contracts(copier, customers, seed, today):
    """Chains of 1-3 year contracts over each customer's history; breakfix customers have none."""
    rng = random.Random(f"{seed}-contracts")
    rows, contract_id, per_year = [], 0, defaultdict(int)
    for c in customers:
        if c.status == "prospect" or c.tier == "breakfix":
            continue
        fee, included, rate, response, resolution = TIER_TERMS[c.tier]
        factor = SIZE_FACTOR[c.size] * (8 if c.id == 1 else (3 if c.id <= 4 else 1))
        day = c.since
        while day <= c.until:
            years = rng.choice([1, 2, 3, 3])
            end = date(day.year + years, day.month, min(day.day, 28)) - timedelta(days=1)
            contract_id += 1
            per_year[day.year] += 1
            status = "active" if day <= today <= end and c.status in ("active", "suspended") else (
                "expired" if end < today else "terminated")
            if status == "terminated":  # an inactive customer's last contract ended with the customer
                end = max(c.until, day + timedelta(days=30))
                status = "expired" if end < today else "terminated"
            k = SimpleNamespace(contract_id=contract_id, start_date=day, end_date=end,
                                included_hours=int(included * factor),
                                hourly_rate_additional=Decimal(rate), monthly_fee=Decimal(int(fee * factor)),
                                response_hours=response, resolution_hours=resolution, status=status,
                                number=format_number("contract", day.year, per_year[day.year]),
                                tier=c.tier)
            c.contracts.append(k)
            rows.append((contract_id, k.number, c.id, c.tier, f"{k.monthly_fee}.00", k.included_hours,
                         f"{rate}.00", day, end, True, "3.00", response, resolution, status,
                         "Standard managed services terms."))
            day = end + timedelta(days=1)
    copier.expect("service_contracts", len(rows))
    copier.put("service_contracts", ["contract_id", "contract_number", "customer_id", "service_tier", "monthly_fee",
                                     "included_hours", "hourly_rate_additional", "start_date", "end_date",
                                     "auto_renewal", "price_increase_annual", "response_time_hours",
                                     "resolution_time_hours", "contract_status", "terms_conditions"], rows)


def _billing(contracts):
    """Contracts that bill work (services/invoicing.billing_contracts): active or expired ones."""
    return [k for k in contracts if k.status in ("active", "expired")]


def _contract_on(contracts, day):
    for k in contracts:
        if k.start_date <= day <= k.end_date and k.status in ("active", "expired"):
            return k
    return None


def _approval(rng, author, approvers, work_day, today, now):
    """(status, approver, approved_at, rejected_at, rejected_by, reason) of an entry done on work_day."""
    age = (today - work_day).days
    roll = rng.random()
    approver = approvers[rng.randrange(len(approvers))]
    if approver == author:
        approver = approvers[(approvers.index(approver) + 1) % len(approvers)]
    at = min(datetime.combine(work_day, datetime.min.time(), UTC) + timedelta(days=1 + rng.randint(0, 4), hours=23),
             now)
    if age > 10:
        if roll < 0.98:
            return "approved", approver, at, None, None, None
        return "rejected", None, None, at, approver, rng.choice(REJECTIONS)
    if roll < 0.6:
        return "pending", None, None, None, None, None
    if roll < 0.98:
        return "approved", approver, at, None, None, None
    return "rejected", None, None, at, approver, rng.choice(REJECTIONS)


ENTRY_COLUMNS = ["entry_id", "employee_id", "customer_id", "ticket_id", "project_id", "work_date", "hours_worked",
                 "description", "work_category", "is_billable", "approval_status", "approved_by_employee_id",
                 "approved_at", "billing_rate", "created_at", "rejection_reason", "rejected_at",
                 "rejected_by_employee_id", "updated_at"]


def _projects(copier, scale, customers, employees, seed, today, now, *, entries: int, first_entry: int):
    """Projects with phases, and their time entries (the share of entries not on tickets)."""
    rng = random.Random(f"{seed}-projects")
    managers = [e for e in employees if e.role in ("project_manager", "admin")]
    workers = [e for e in employees if e.role in ("technician", "senior_technician", "project_manager")]
    approvers = [e.id for e in employees if e.role in ("senior_technician", "project_manager", "admin")]
    eligible = [c for c in customers if c.status != "prospect"]
    pick = _weighted(rng, [SIZE_FACTOR[c.size] * (5 if c.id <= 4 else 1) for c in eligible])
    project_rows, phase_rows, plist, per_year, phase_id = [], [], [], defaultdict(int), 0
    for pid in range(1, scale.projects + 1):
        c = eligible[pick()]
        span = max((c.until - c.since).days, 1)
        begin = c.since + timedelta(days=rng.randint(0, span))
        if c.status == "active" and rng.random() < 0.04:
            begin = today + timedelta(days=rng.randint(5, 60))  # planned, not started
        months = rng.choice([1, 2, 3, 3, 4, 6, 9])
        end = begin + timedelta(days=30 * months)
        budget = rng.choice([5, 8, 12, 20, 30, 50, 80, 120]) * 1000
        cancelled = rng.random() < 0.03
        if begin > today:
            status, done = "planning", 0
        elif end < today - timedelta(days=20):
            status, done = ("cancelled" if cancelled else "completed"), 100
        else:
            status = "on_hold" if rng.random() < 0.05 else "active"
            done = max(0, min(99, int(100 * (today - begin).days / max((end - begin).days, 1))))
        if cancelled and status == "cancelled":
            done = rng.randint(10, 80)
        per_year[begin.year] += 1
        number = format_number("project", begin.year, per_year[begin.year])
        manager = managers[rng.randrange(len(managers))]
        actual_end = min(end + timedelta(days=rng.randint(-5, 20)), today) if status == "completed" else None
        if actual_end is not None and actual_end < begin:
            actual_end = begin
        project = SimpleNamespace(id=pid, number=number, customer=c, begin=begin, end=end, status=status,
                                  manager=manager.id, cost_quarter_cents=0, budget=budget)
        plist.append(project)
        project_rows.append([pid, number, c.id, manager.id, f"{rng.choice(PROJECTS)}", "Scope agreed with the customer.",
                             f"{budget}.00", None, begin, end, actual_end, status, done,
                             datetime.combine(begin, datetime.min.time(), UTC) - timedelta(days=14)])
        n_phases = rng.randint(2, 5)
        shares = [rng.random() + 0.5 for _ in range(n_phases)]
        total_share = sum(shares) * 1.05  # a little kept in reserve: phases never exceed the budget
        length = (end - begin).days
        for k in range(n_phases):
            phase_id += 1
            p_start = begin + timedelta(days=length * k // n_phases)
            p_end = begin + timedelta(days=length * (k + 1) // n_phases)
            p_status = ("completed" if p_end < today else ("active" if p_start <= today else "planning")) \
                if status in ("active", "completed", "on_hold") else ("cancelled" if status == "cancelled"
                                                                      else "planning")
            needs = rng.random() < 0.3
            approved_at = approved_by = requested = None
            if needs:
                requested = datetime.combine(p_start, datetime.min.time(), UTC) - timedelta(days=7)
                if p_status in ("active", "completed"):
                    approved_at, approved_by = requested + timedelta(days=2), c.sponsor
            phase_rows.append((phase_id, pid, PHASES[k % len(PHASES)], None,
                               _money(int(budget * 100 * shares[k] / total_share)), p_start, p_end, p_status, needs,
                               approved_at, approved_by, requested))
    copier.expect("projects", len(project_rows))
    copier.expect("project_phases", len(phase_rows))
    # Entries on projects: spread over started projects by length.
    started = [p for p in plist if p.begin <= today]
    count = entries
    pick_project = _weighted(rng, [max((min(p.end, today) - p.begin).days, 1) for p in started])
    per_project = defaultdict(int)
    for _ in range(count):
        per_project[pick_project()] += 1
    entry_id = first_entry - 1
    rows = []
    for index in sorted(per_project):
        p = started[index]
        last = min(p.end, today - timedelta(days=1))
        days = max((last - p.begin).days, 0)
        team = [p.manager] + [workers[rng.randrange(len(workers))].id for _ in range(2)]
        rates = {e.id: e.rate for e in employees}
        for _ in range(per_project[index]):
            entry_id += 1
            author = team[rng.randrange(3)]
            day = p.begin + timedelta(days=rng.randint(0, days))
            quarters = rng.randint(2, 24)
            status, approver, approved_at, rejected_at, rejected_by, reason = _approval(
                rng, author, approvers, day, today, now)
            rate = rates[author]
            if status == "approved":
                p.cost_quarter_cents += quarters * int(rate.replace(".", ""))
            created = min(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=23), now)
            rows.append((entry_id, author, p.customer.id, None, p.id, day, _money(quarters * 25),
                         rng.choice(PROJECT_TEXTS), rng.choice(["project", "project", "consultation", "training"]),
                         rng.random() < 0.95, status, approver, approved_at, rate, created, reason, rejected_at,
                         rejected_by, approved_at or rejected_at or created))
            if len(rows) >= 50_000:
                copier.put("time_entries", ENTRY_COLUMNS, rows)
                rows = []
    copier.put("time_entries", ENTRY_COLUMNS, rows)
    for p, row in zip(plist, project_rows):
        row[7] = str(_round_half_up(Decimal(p.cost_quarter_cents) / 400))
    copier.put("projects", ["project_id", "project_number", "customer_id", "project_manager_id", "project_name",
                            "scope_description", "budget_amount", "actual_cost", "start_date", "planned_end_date",
                            "actual_end_date", "project_status", "completion_percentage", "created_at"],
               [tuple(r) for r in project_rows])
    copier.put("project_phases", ["phase_id", "project_id", "phase_name", "deliverables", "budget_allocation",
                                  "start_date", "end_date", "phase_status", "requires_approval", "approved_at",
                                  "approved_by_contact_id", "approval_requested_at"], phase_rows)


# Share of tickets not closed by age in days (services/generate.py's model), and the mix of their statuses.
def _status(rng, age_days):
    r = rng.random()
    stale = ticket_texts.STALE * pow(2.718281828, -age_days / ticket_texts.STALE_DAYS)
    working = ticket_texts.WORKING * pow(2.718281828, -age_days / ticket_texts.WORKING_DAYS)
    if r < stale:
        mix = ticket_texts.STALE_MIX
    elif r < stale + working:
        mix = ticket_texts.FRESH_MIX if age_days < 1 else ticket_texts.WORKING_MIX
    else:
        return "closed"
    x = rng.random() * sum(mix.values())
    for status, weight in mix.items():
        x -= weight
        if x < 0:
            return status
    return "resolved"


TICKET_COLUMNS = ["ticket_id", "ticket_number", "customer_id", "contract_id", "contact_id", "assigned_employee_id",
                  "title", "description", "category", "priority", "status", "created_at", "assigned_at",
                  "first_response_at", "resolved_at", "closed_at", "estimated_hours", "actual_hours",
                  "resolution_notes", "customer_satisfaction", "response_due_at", "resolution_due_at", "sla_due_at",
                  "sla_at_risk_at", "last_activity_at", "updated_at", "title_n", "description_n"]


def _tickets(copier, scale, customers, employees, seed, today, now) -> int:
    """Tickets in creation order, with their comments, status log and time entries, chunk by chunk."""
    rng = random.Random(f"{seed}-tickets")
    eligible = [c for c in customers if c.status != "prospect"]
    # Tickets per customer: the very large ones their share, the rest by size and length of history.
    counts = {}
    big = [c for c in eligible if c.id <= len(scale.big)]
    for c, share in zip(big, scale.big):
        counts[c.id] = int(scale.tickets * share)
    rest = [c for c in eligible if c.id not in counts]
    left = scale.tickets - sum(counts.values())
    pick = _weighted(rng, [SIZE_FACTOR[c.size] * max((c.until - c.since).days, 30) for c in rest])
    for c in rest:
        counts[c.id] = 0
    for _ in range(left):
        counts[rest[pick()].id] += 1
    # Creation times: within each customer's history, more tickets lately, office hours, few at weekends.
    pick_hour = _weighted(rng, HOURS)
    moments = []
    for c in eligible:
        first = datetime.combine(c.since, datetime.min.time(), UTC)
        last = datetime.combine(c.until, datetime.min.time(), UTC) if c.until < today else now - timedelta(hours=1)
        span = (last - first).total_seconds() / 86400
        for _ in range(counts[c.id]):
            day = int(span * rng.random() ** 0.8)
            moment = first + timedelta(days=day)
            if moment.weekday() >= 5 and rng.random() < 0.85:
                moment -= timedelta(days=moment.weekday() - 4)
            moment += MOUNTAIN + timedelta(hours=pick_hour(), seconds=rng.randrange(3600))
            if moment > last:
                moment = last - timedelta(seconds=rng.randrange(3600 * 6))
            moments.append((moment, c.id))
    moments.sort()
    by_id = {c.id: c for c in customers}
    workers = [e for e in employees if e.role in ("technician", "senior_technician", "admin")]
    pick_worker = _weighted(rng, [{"technician": 1.0, "senior_technician": 1.0, "admin": 0.3}[e.role]
                                  for e in workers])
    approvers = [e.id for e in employees if e.role in ("senior_technician", "project_manager", "admin")]
    rates = {e.id: e.rate for e in employees}
    categories = list(ticket_texts.CATEGORY_WEIGHTS)
    pick_category = _weighted(rng, list(ticket_texts.CATEGORY_WEIGHTS.values()))
    priorities = list(ticket_texts.PRIORITY_WEIGHTS)
    pick_priority = _weighted(rng, list(ticket_texts.PRIORITY_WEIGHTS.values()))
    title_offsets, titles = {}, []
    for category in categories:
        title_offsets[category] = (len(titles), len(ticket_texts.TITLES[category]))
        titles += ticket_texts.TITLES[category]
    n_impacts = len(ticket_texts.IMPACTS)
    pick_comments = _weighted(rng, [25, 20, 20, 14, 10, 7, 4])  # 0-6 comments
    ticket_entries = int(scale.entries * TICKET_ENTRY_SHARE)
    non_open_share = 0.995
    mean = ticket_entries / (scale.tickets * non_open_share)
    pick_entries = _weighted(rng, [1.0 / (1 + abs(k - mean)) ** 1.5 for k in range(0, int(mean * 2) + 1)])
    entry_id = 0
    per_year = defaultdict(int)
    copier.expect("support_tickets", len(moments))
    copier.expect("ticket_comments", int(len(moments) * 1.9))
    copier.expect("ticket_status_changes", len(moments) * 2)
    copier.expect("time_entries", scale.entries)
    tickets, comments, changes, entries = [], [], [], []
    comment_id = change_id = 0
    for ticket_id, (created, customer_id) in enumerate(moments, start=1):
        c = by_id[customer_id]
        age_h = (now - created).total_seconds() / 3600
        status = _status(rng, age_h / 24)
        category = categories[pick_category()]
        priority = priorities[pick_priority()]
        offset, n_titles = title_offsets[category]
        title_n = offset + rng.randrange(n_titles) + 1
        opener_n, impact_n = rng.randrange(len(ticket_texts.OPENERS)), rng.randrange(n_impacts)
        description_n = opener_n * n_impacts + impact_n + 1
        contract = _contract_on(c.contracts, created.date())
        response_h = contract.response_hours if contract else ticket_texts.DEFAULT_RESPONSE_HOURS
        resolution_h = contract.resolution_hours if contract else ticket_texts.DEFAULT_RESOLUTION_HOURS
        contacts = [k for k, creates in c.contacts if creates]
        contact = contacts[rng.randrange(len(contacts))] if contacts else None
        employee = workers[pick_worker()].id if status != "open" else None
        r = rng.random
        assigned = first_response = resolved = closed = None
        if status != "open":
            assigned = created + timedelta(hours=min(response_h * 0.5 * r(), 0.2 * age_h))
        if status in ("in_progress", "waiting_customer", "resolved", "closed") or (status == "assigned" and r() < 0.3):
            late = 1.6 if r() < 0.07 else 0.9
            first_response = created + timedelta(hours=min(response_h * late * r(), 0.4 * age_h))
            if assigned and first_response < assigned:
                first_response = assigned
        if status in ("resolved", "closed"):
            resolved = created + timedelta(hours=min(resolution_h * (0.1 + 1.05 * r() ** 1.5), 0.8 * age_h))
            resolved = max(resolved, first_response)
        if status == "closed":
            closed = min(resolved + timedelta(hours=24 + 144 * r()), now)
        # Comments: the first public staff reply is the first response.
        milestones = [t for t in (assigned, first_response, resolved, closed) if t is not None]
        last_milestone = max([created, *milestones])
        n_comments = pick_comments() if status != "open" else (1 if r() < 0.2 else 0)
        times = sorted(created + (last_milestone - created) * r() for _ in range(n_comments))
        for k, at in enumerate(times):
            comment_id += 1
            if status == "open" or (k % 2 == 1 and contact is not None):
                author_contact, author_employee, body, internal = contact, None, rng.choice(COMMENTS_CONTACT), False
                if author_contact is None:
                    author_contact, author_employee = None, workers[pick_worker()].id
            elif k % 3 == 2:
                author_contact, author_employee, body, internal = None, employee, rng.choice(COMMENTS_INTERNAL), True
            elif first_response is None:  # nobody answered yet: staff wrote only internal notes
                author_contact, author_employee, body, internal = None, employee, rng.choice(COMMENTS_INTERNAL), True
            else:
                author_contact, author_employee, body, internal = None, employee, rng.choice(COMMENTS_STAFF), False
            if author_contact is None and author_employee is None:
                author_employee = workers[pick_worker()].id
            comments.append((comment_id, ticket_id, author_contact, author_employee, body, internal, at))
        last_activity = max([last_milestone, *times]) if times else last_milestone
        # SLA columns as services/sla.py computes them (no closed pause: the log below has none).
        clock = compute_sla(created_at=created, status=TicketStatus(status), first_response_at=first_response,
                            response_hours=contract.response_hours if contract else None,
                            resolution_hours=contract.resolution_hours if contract else None, changes=())
        # The status log: opened, then the move to where it is now.
        change_id += 1
        changes.append((change_id, ticket_id, None, "open", created, "contact" if contact else "system", contact))
        if status != "open":
            change_id += 1
            changes.append((change_id, ticket_id, "open", status, last_milestone, "employee", employee))
        # Time on tickets someone worked on: entries between creation and resolution (or today).
        hours_q = 0
        if status != "open" and entry_id < ticket_entries:
            n_entries = min(pick_entries(), ticket_entries - entry_id)
            first_day = created.date()
            last_day = max(((resolved or now) - timedelta(seconds=1)).date(), first_day)
            span = (last_day - first_day).days
            for _ in range(n_entries):
                entry_id += 1
                author = employee if r() < 0.85 else workers[pick_worker()].id
                day = first_day + timedelta(days=rng.randint(0, span))
                quarters = rng.randint(1, 12)
                state, approver, approved_at, rejected_at, rejected_by, reason = _approval(
                    rng, author, approvers, day, today, now)
                if state == "approved":
                    hours_q += quarters
                at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=23)
                entries.append((entry_id, author, customer_id, ticket_id, None, day, _money(quarters * 25),
                                rng.choice(ENTRY_TEXTS), "support", r() < 0.9, state, approver, approved_at,
                                rates[author], min(at, now), reason, rejected_at, rejected_by,
                                approved_at or rejected_at or min(at, now)))
        year = created.year
        per_year[year] += 1
        number = format_number("ticket", year, per_year[year])
        estimated = (1, 2, 4, 6, 8)[rng.randrange(5)] if status != "open" and priority in (
            "high", "critical") and r() < 0.5 else None
        satisfaction = None
        if status == "closed" and r() < 0.35:
            x = r() * 100
            satisfaction = 1 if x < 3 else 2 if x < 7 else 3 if x < 17 else 4 if x < 45 else 5
        notes = rng.choice(ticket_texts.NOTES) if resolved else None
        tickets.append((ticket_id, number, customer_id, contract.contract_id if contract else None, contact, employee,
                        titles[title_n - 1], f"{ticket_texts.OPENERS[opener_n]} {ticket_texts.IMPACTS[impact_n]}",
                        category.value, priority.value, status, created, assigned, first_response, resolved, closed,
                        estimated, _money(hours_q * 25), notes, satisfaction, clock.response_due_at,
                        clock.resolution_due_at, clock.sla_due_at, clock.sla_at_risk_at, last_activity, last_activity,
                        title_n, description_n))
        if len(tickets) >= CHUNK:
            _flush_tickets(copier, tickets, comments, changes, entries)
            tickets, comments, changes, entries = [], [], [], []
    _flush_tickets(copier, tickets, comments, changes, entries)
    return entry_id


def _flush_tickets(copier, tickets, comments, changes, entries):
    copier.put("generated_tickets", TICKET_COLUMNS, tickets)
    if "support_tickets" in copier.bars:
        copier.bars["support_tickets"](len(tickets))
    copier.put("ticket_comments", ["comment_id", "ticket_id", "author_contact_id", "author_employee_id", "body",
                                   "is_internal", "created_at"], comments)
    copier.put("ticket_status_changes", ["change_id", "ticket_id", "from_status", "to_status", "changed_at",
                                         "actor_type", "actor_id"], changes)
    copier.put("time_entries", ENTRY_COLUMNS, entries)


def _finish_tickets(session):
    """Move the staged tickets into support_tickets with their search vectors: ticket_search_document()'s
    own expression, its title and description parts computed once per distinct text."""
    titles, descriptions = [], []
    for category in ticket_texts.CATEGORY_WEIGHTS:
        titles += ticket_texts.TITLES[category]
    for opener in ticket_texts.OPENERS:
        for impact in ticket_texts.IMPACTS:
            descriptions.append(f"{opener} {impact}")
    columns = [c for c in TICKET_COLUMNS if c not in ("title_n", "description_n")]
    session.execute(sa.text(f"""
        INSERT INTO support_tickets ({', '.join(columns)}, search_vector)
        SELECT {', '.join('g.' + c for c in columns)},
               setweight(to_tsvector('simple', g.ticket_number), 'A') || v.titles[g.title_n]
               || v.descriptions[g.description_n]
               || setweight(to_tsvector('english', coalesce(c.bodies, '')), 'C')
        FROM generated_tickets g
        LEFT JOIN (SELECT ticket_id, string_agg(body, ' ' ORDER BY created_at, comment_id) AS bodies
                   FROM ticket_comments GROUP BY ticket_id) c ON c.ticket_id = g.ticket_id
        CROSS JOIN (
            SELECT ARRAY(SELECT setweight(to_tsvector('english', t), 'A')
                         FROM unnest(CAST(:titles AS text[])) WITH ORDINALITY AS u(t, n) ORDER BY n) AS titles,
                   ARRAY(SELECT setweight(to_tsvector('english', d), 'B')
                         FROM unnest(CAST(:descriptions AS text[])) WITH ORDINALITY AS u(d, n) ORDER BY n) AS descriptions
        ) v
        ORDER BY g.ticket_id"""), {"titles": titles, "descriptions": descriptions})
    session.execute(sa.text("DROP TABLE generated_tickets"))
    session.execute(sa.text("ANALYZE support_tickets"))


def _advance_sequences(session):
    for table, column in (("customers", "customer_id"), ("contacts", "contact_id"), ("employees", "employee_id"),
                          ("accounts", "account_id"), ("service_contracts", "contract_id"),
                          ("support_tickets", "ticket_id"), ("ticket_comments", "comment_id"),
                          ("ticket_status_changes", "change_id"), ("time_entries", "entry_id"),
                          ("projects", "project_id"), ("project_phases", "phase_id"), ("invoices", "invoice_id"),
                          ("invoice_line_items", "line_item_id")):
        session.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                                f"GREATEST((SELECT max({column}) FROM {table}), 1))"))
    # Human-facing numbers: numbered per year from 1 here; the sequences move past the largest value.
    for sequence, table, column in (("ticket_number_seq", "support_tickets", "ticket_number"),
                                    ("invoice_number_seq", "invoices", "invoice_number"),
                                    ("contract_number_seq", "service_contracts", "contract_number"),
                                    ("project_number_seq", "projects", "project_number")):
        session.execute(sa.text(f"SELECT setval('{sequence}', GREATEST((SELECT max(split_part({column}, '-', 3)::int)"
                                f" FROM {table}), (SELECT last_value FROM {sequence})))"))


def generate_invoices(session, copier, *, seed: int, today: date, tax_rate: Decimal) -> None:
    """An invoice for every customer and month before this one that had anything to bill: the monthly
    fee of the contract covering the month's first day, and every approved billable entry of the month,
    priced by services/invoicing.price_time (included hours first, then the contract's additional rate;
    project work and work without a contract at the entry's rate) and labelled as generate_invoice does.

    Invoiced on the 1st of the next month, due 30 days later; paid when old, sent when recent,
    overdue when past due and unpaid, the last month's a few drafts. THE place to change when the
    invoicing rules change (the billing issue).
    """
    rng = random.Random(f"{seed}-invoices")
    this_month = today.replace(day=1)
    contracts = defaultdict(list)
    for row in session.execute(sa.text(
            "SELECT contract_id, customer_id, contract_number, service_tier, monthly_fee, included_hours,"
            " hourly_rate_additional, start_date, end_date, contract_status FROM service_contracts"
            " WHERE contract_status IN ('active', 'expired') ORDER BY customer_id, start_date")):
        contracts[row.customer_id].append(SimpleNamespace(
            contract_id=row.contract_id, contract_number=row.contract_number, tier=row.service_tier,
            monthly_fee=row.monthly_fee, included_hours=row.included_hours,
            hourly_rate_additional=row.hourly_rate_additional, start_date=row.start_date, end_date=row.end_date))
    total = session.scalar(sa.text(
        "SELECT count(*) FROM time_entries WHERE approval_status = 'approved' AND is_billable AND work_date < :m"),
        {"m": this_month})
    copier.expect("invoice_line_items", total)
    raw = session.connection().connection.driver_connection
    stream = raw.cursor(name="billable_entries")
    stream.itersize = 20_000
    stream.execute(
        "SELECT e.customer_id, e.entry_id, e.ticket_id, e.work_date, e.hours_worked, e.billing_rate, e.description,"
        " t.ticket_number, t.contract_id, p.project_number"
        " FROM time_entries e LEFT JOIN support_tickets t ON t.ticket_id = e.ticket_id"
        " LEFT JOIN projects p ON p.project_id = e.project_id"
        " WHERE e.approval_status = 'approved' AND e.is_billable AND e.work_date < %s"
        " ORDER BY e.customer_id, e.work_date, e.entry_id", (this_month,))
    invoices, lines = [], []
    days: dict = {}  # work_date -> "Nov 03", formatted once per day (millions of lines)
    state = SimpleNamespace(invoice_id=0, line_id=0, per_year=defaultdict(int))

    def bill(customer_id, month, month_entries):
        # services/invoicing.billing_contracts: the active or expired contracts touching the period.
        customer_contracts = [k for k in contracts.get(customer_id, [])
                              if k.start_date <= _month_end(month) and k.end_date >= month]
        items = []
        # services/invoicing.plan_invoice: a fee line per contract month in force (prorated by days).
        for k, fee_month in fee_months(customer_contracts, month, _month_end(month)):
            days_in, of = _share(k, fee_month)
            share = "" if days_in == of else f", {days_in} of {of} days"
            fee = month_fee(k, fee_month)
            items.append((None, f"Monthly fee, {k.tier} plan, {fee_month:%B %Y} ({k.contract_number}){share}",
                          Decimal("1"), fee, fee, "monthly_fee", k.contract_id, fee_month, Decimal("0")))
        priced = price_time(((e, e.contract_id) for e in month_entries), customer_contracts)
        for p in priced:
            e = p.entry
            what = e.ticket_number or e.project_number or ""
            day = days.get(e.work_date) or days.setdefault(e.work_date, f"{e.work_date:%b %d}")
            label = f"{day}: {what} {e.description}".strip()[:400]
            if p.contract is None:
                quantity, rate, text = p.billable, p.rate, label
            elif p.billable == 0:
                quantity, rate, text = e.hours_worked, Decimal("0.00"), f"{label} (included in plan)"
            elif p.included > 0:
                quantity, rate = p.billable, p.rate
                text = f"{label} ({_hours(p.included)} h included, {_hours(p.billable)} h additional)"
            else:
                quantity, rate, text = p.billable, p.rate, label
            items.append((e.entry_id, text, quantity, rate, to_cents(quantity * rate), "hourly_work",
                          p.contract.contract_id if p.contract else None, p.month,
                          p.included if p.contract else Decimal("0")))
        if not items:
            return
        state.invoice_id += 1
        invoice_date = _next_month(month)
        state.per_year[invoice_date.year] += 1
        subtotal = sum(item[4] for item in items)
        tax = _round_half_up(subtotal * tax_rate)
        due = invoice_date + timedelta(days=30)
        age = (today - due).days
        roll = rng.random()
        sent_at = datetime.combine(invoice_date, datetime.min.time(), UTC) + timedelta(hours=16)
        if invoice_date == this_month and roll < 0.1:
            status, sent_at, paid_at, paid = "draft", None, None, Decimal("0")
        elif age > 20 and roll < 0.97 or age > 0 and roll < 0.6:
            status = "paid"
            paid_at = min(sent_at + timedelta(days=rng.randint(5, 45)),
                          datetime.combine(today, datetime.min.time(), UTC))
            paid = subtotal + tax
        elif age > 0:
            status, paid_at, paid = "overdue", None, Decimal("0")
        else:
            status, paid_at, paid = "sent", None, Decimal("0")
        active = _contract_on_billing(customer_contracts, _month_end(month)) or (
            customer_contracts[-1] if customer_contracts else None)
        invoices.append((state.invoice_id, format_number("invoice", invoice_date.year,
                                                         state.per_year[invoice_date.year]),
                         customer_id, active.contract_id if active else None, invoice_date, due, subtotal,
                         tax_rate, tax, subtotal + tax, status, "Net 30", sent_at, paid_at, paid,
                         sent_at or datetime.combine(invoice_date, datetime.min.time(), UTC), month, _month_end(month)))
        for entry_id, text, quantity, rate, amount, kind, contract_id, billing_month, included in items:
            state.line_id += 1
            lines.append((state.line_id, state.invoice_id, entry_id, text, quantity, rate, amount, kind, contract_id,
                          billing_month, included))

    current, month, month_entries = None, None, []
    months_with_fees = _fee_months(contracts, this_month)
    billed_months = set()
    for row in stream:
        customer_id, entry_id, ticket_id, work_date, hours, rate, description, ticket_number, contract_id, project = row
        key_month = work_date.replace(day=1)
        if (customer_id, key_month) != (current, month):
            if current is not None:
                bill(current, month, month_entries)
                billed_months.add((current, month))
            current, month, month_entries = customer_id, key_month, []
        month_entries.append(SimpleNamespace(entry_id=entry_id, ticket_id=ticket_id, work_date=work_date,
                                             hours_worked=hours, billing_rate=rate, description=description,
                                             ticket_number=ticket_number, contract_id=contract_id,
                                             project_number=project))
        if len(lines) >= 50_000:
            _flush_invoices(copier, invoices, lines)
            invoices, lines = [], []
    if current is not None:
        bill(current, month, month_entries)
        billed_months.add((current, month))
    stream.close()
    # Months with a fee but no billable time still get their fee invoice.
    for customer_id, fee_month in sorted(months_with_fees - billed_months):
        bill(customer_id, fee_month, [])
    _flush_invoices(copier, invoices, lines)


def _flush_invoices(copier, invoices, lines):
    copier.put("invoices", ["invoice_id", "invoice_number", "customer_id", "contract_id", "invoice_date", "due_date",
                            "subtotal", "tax_rate", "tax_amount", "total_amount", "invoice_status", "payment_terms",
                            "sent_at", "paid_at", "paid_amount", "updated_at", "period_start", "period_end"], invoices)
    copier.put("invoice_line_items", ["line_item_id", "invoice_id", "time_entry_id", "description", "quantity",
                                      "unit_price", "line_total", "item_type", "contract_id", "billing_month",
                                      "included_hours"], lines)


def _contract_on_billing(contracts, day):
    return next((k for k in contracts if k.start_date <= day <= k.end_date), None)


def _fee_months(contracts, this_month):
    months = set()
    for customer_id, ks in contracts.items():
        for k in ks:
            if k.monthly_fee <= 0:
                continue
            m = k.start_date.replace(day=1)
            while m < this_month and m <= k.end_date:
                months.add((customer_id, m))  # in force on some day of it: a (prorated) fee month
                m = _next_month(m)
    return months


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def _month_end(day: date) -> date:
    return _next_month(day) - timedelta(days=1)


# --- checks ---------------------------------------------------------------------------------------

DERIVED = {
    "tickets' actual_hours = their approved hours": """
        SELECT count(*) FROM support_tickets t LEFT JOIN (
            SELECT ticket_id, sum(hours_worked) AS h FROM time_entries
            WHERE approval_status = 'approved' AND ticket_id IS NOT NULL GROUP BY ticket_id) e USING (ticket_id)
        WHERE t.actual_hours <> coalesce(e.h, 0)""",
    "projects' actual_cost = their approved hours x rate": """
        SELECT count(*) FROM projects p LEFT JOIN (
            SELECT project_id, round(sum(hours_worked * billing_rate), 2) AS c FROM time_entries
            WHERE approval_status = 'approved' AND project_id IS NOT NULL GROUP BY project_id) e USING (project_id)
        WHERE p.actual_cost <> coalesce(e.c, 0)""",
    "invoices' subtotal = their lines, tax and total by the rate": """
        SELECT count(*) FROM invoices i LEFT JOIN (
            SELECT invoice_id, sum(CASE WHEN item_type = 'discount' THEN -line_total ELSE line_total END) AS s
            FROM invoice_line_items GROUP BY invoice_id) l USING (invoice_id)
        WHERE i.subtotal <> coalesce(l.s, 0) OR i.tax_amount <> round(i.subtotal * i.tax_rate, 2)
           OR i.total_amount <> i.subtotal + i.tax_amount""",
    "every approved billable entry of a past month is billed once": """
        SELECT count(*) FROM time_entries e
        WHERE e.approval_status = 'approved' AND e.is_billable AND e.work_date < date_trunc('month', CAST(:today AS date))
          AND NOT EXISTS (SELECT 1 FROM invoice_line_items l WHERE l.time_entry_id = e.entry_id)""",
    "only approved billable entries are billed": """
        SELECT count(*) FROM invoice_line_items l JOIN time_entries e ON e.entry_id = l.time_entry_id
        WHERE e.approval_status <> 'approved' OR NOT e.is_billable""",
    "an entry's customer is its ticket's or project's": """
        SELECT count(*) FROM time_entries e LEFT JOIN support_tickets t ON t.ticket_id = e.ticket_id
        LEFT JOIN projects p ON p.project_id = e.project_id
        WHERE e.customer_id <> coalesce(t.customer_id, p.customer_id)""",
    "report_time_month = the approved hours per month, customer and employee (the reports' summary)": """
        SELECT count(*) FROM (
            SELECT date_trunc('month', work_date)::date AS month, customer_id, employee_id, sum(hours_worked) AS h
            FROM time_entries WHERE approval_status = 'approved' GROUP BY 1, 2, 3 HAVING sum(hours_worked) <> 0) e
        FULL JOIN report_time_month s USING (month, customer_id, employee_id)
        WHERE s.approved_hours IS DISTINCT FROM e.h""",
    "pending_time_totals = the pending entries, hours and value per author and project (approvals' totals)": f"""
        SELECT count(*) FROM ({PENDING_TIME_TOTALS}) e
        FULL JOIN pending_time_totals s USING (employee_id, project_id)
        WHERE (s.entries, s.hours, s.value) IS DISTINCT FROM (e.entries, e.hours, e.value)""",
    "fee months billed once (a live fee line per contract and month)": """
        SELECT count(*) FROM (SELECT contract_id, billing_month FROM invoice_line_items
                              WHERE item_type = 'monthly_fee' AND live GROUP BY 1, 2 HAVING count(*) > 1) d""",
    "invoices' periods and lines' billing months (the billing rules read them)": """
        SELECT (SELECT count(*) FROM invoices WHERE period_start IS NULL OR period_end IS NULL)
             + (SELECT count(*) FROM invoice_line_items WHERE billing_month IS NULL
                   OR (item_type = 'monthly_fee' AND contract_id IS NULL))""",
    "nobody approved their own time": """
        SELECT count(*) FROM time_entries WHERE approved_by_employee_id = employee_id
           OR rejected_by_employee_id = employee_id""",
    "a ticket's contract and contact are its customer's": """
        SELECT count(*) FROM support_tickets t LEFT JOIN service_contracts k ON k.contract_id = t.contract_id
        LEFT JOIN contacts c ON c.contact_id = t.contact_id
        WHERE k.customer_id <> t.customer_id OR c.customer_id <> t.customer_id""",
    "phase budgets within the project's": """
        SELECT count(*) FROM projects p JOIN (SELECT project_id, sum(budget_allocation) b FROM project_phases
        GROUP BY project_id) ph USING (project_id) WHERE ph.b > p.budget_amount""",
}
# ticket_search_document() aggregates a ticket's comments with no ORDER BY, so with several comments
# the positions in its vector follow the rows' physical order (as the trigger's do). The loader
# joins them by (created_at, comment_id); compared here where the order cannot matter.
SEARCH_SAMPLE = """
    SELECT count(*) || ' (first: ticket ' || min(t.ticket_id) || ')' FROM (
        SELECT * FROM support_tickets s
        WHERE (SELECT count(*) FROM ticket_comments c WHERE c.ticket_id = s.ticket_id) <= 1
        ORDER BY ticket_id DESC LIMIT 2000) t
    WHERE t.search_vector IS DISTINCT FROM ticket_search_document(t.ticket_id, t.ticket_number, t.title, t.description)
"""


def foreign_key_checks(session) -> dict[str, str]:
    """An anti-join per foreign key of the loaded tables (what ALTER TABLE ... VALIDATE CONSTRAINT runs)."""
    rows = session.execute(sa.text("""
        SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text,
               (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n),
               (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n)
        FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(:tables)
        ORDER BY 1"""), {"tables": LOADED}).all()
    checks = {}
    for name, child, parent, columns, keys in rows:
        present = " AND ".join(f"c.{col} IS NOT NULL" for col in columns)
        match = " AND ".join(f"p.{key} = c.{col}" for col, key in zip(columns, keys))
        checks[f"foreign key {name}"] = (f"SELECT count(*) FROM {child} c WHERE {present} "
                                         f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {match})")
    return checks


def check_dataset(session, *, today: date) -> list[str]:
    """What the triggers and foreign keys would have enforced, checked over the whole data set."""
    problems = []
    for what, sql in {**DERIVED, **foreign_key_checks(session), "search vectors (newest 2,000 tickets with at most one comment)": SEARCH_SAMPLE
                      }.items():
        bad = session.scalar(sa.text(sql), {"today": today})
        if bad and not str(bad).startswith("0 "):
            problems.append(f"{what}: {bad} rows")
    return problems
