"""The reports and the staff homes on 1,000,000 tickets and 5,000,000 time entries: fill, then time.

    python docs/bench_reports.py                      # postgresql://postgres@127.0.0.1:5432/techserv_reports_bench
    python docs/bench_reports.py --tickets 200000 --entries 1000000 --keep
    BENCH_DATABASE_URL=postgresql://... python docs/bench_reports.py

It (re)creates the database, migrates it (`flask db upgrade`), loads the demo data (`flask seed`),
adds `--tickets` tickets with the existing `flask generate --tickets N`, then adds `--entries` time
entries and a month of invoices per customer over three years by set-based SQL (generate_series):
entries spread over the generated tickets (work date the ticket's day, 0.25-4 h, 95 % approved, 85 %
billable), every approved billable entry older than 60 days on an invoice line (an invoice per
customer and month, 3 % of them cancelled, the rest paid, sent or overdue). The row triggers on
time_entries and invoice_line_items are off during the bulk insert (they would recompute a
ticket, a project or an invoice per row); the sums they keep are then computed once by SQL, and
report_time_month is rebuilt from the entries, as its triggers would have kept it. VACUUM ANALYZE.

Then, as a signed-in admin through the app (the test client: routing, session, policy, queries,
templates), each report's page and each role's staff home: 2 warm-ups and the median of 7; and
the service call alone. Anything over 200 ms gets EXPLAIN (ANALYZE, BUFFERS) of its slowest
statement. The database is dropped at the end unless --keep. Figures: docs/performance.md ("Reports").
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/techserv_reports_bench"
PASSWORD = "bench-password-2026"
KEY = os.environ.get("ENCRYPTION_KEYS") or __import__("cryptography.fernet").fernet.Fernet.generate_key().decode()

ENTRIES = """
INSERT INTO time_entries (employee_id, customer_id, ticket_id, work_date, hours_worked, description, work_category,
                          is_billable, approval_status, approved_by_employee_id, approved_at, billing_rate,
                          created_at, updated_at)
SELECT e.employee_id, t.customer_id, t.ticket_id, (t.created_at AT TIME ZONE 'America/Denver')::date,
       (1 + abs(hashint8extended(g, 11)) % 16) * 0.25, 'Generated work', 'support',
       abs(hashint8extended(g, 12)) % 100 < 85,
       CASE WHEN abs(hashint8extended(g, 13)) % 100 < 95 THEN 'approved'
            ELSE 'pending' END::approval_status,
       CASE WHEN abs(hashint8extended(g, 13)) % 100 < 95 THEN :approver END,
       CASE WHEN abs(hashint8extended(g, 13)) % 100 < 95 THEN t.created_at + interval '2 days' END,
       e.hourly_rate_client, t.created_at, t.created_at
FROM generate_series(:first, :last) AS g
JOIN LATERAL (SELECT :min_ticket + abs(hashint8extended(g, 10)) % (:max_ticket - :min_ticket + 1) AS id) AS pick ON true
JOIN support_tickets t ON t.ticket_id = pick.id
JOIN LATERAL (SELECT (:techs)[1 + abs(hashint8extended(g, 14)) % cardinality(:techs)] AS employee_id) AS who ON true
JOIN employees e ON e.employee_id = who.employee_id
"""

INVOICES = """
INSERT INTO invoices (invoice_number, customer_id, invoice_date, due_date, invoice_status, paid_amount, sent_at, paid_at)
SELECT 'INV-B-' || lpad(row_number() OVER (ORDER BY m, c.customer_id)::text, 8, '0'), c.customer_id,
       (m + interval '1 month')::date, (m + interval '1 month' + interval '30 days')::date,
       CASE WHEN abs(hashint8extended(c.customer_id * 1000 + extract(epoch FROM m)::bigint, 20)) % 100 < 3 THEN 'cancelled'
            WHEN m + interval '3 months' > now() THEN 'sent'
            WHEN abs(hashint8extended(c.customer_id * 1000 + extract(epoch FROM m)::bigint, 21)) % 100 < 4 THEN 'overdue'
            ELSE 'paid' END::invoice_status, 0, m + interval '1 month', NULL
FROM customers c, generate_series(date_trunc('month', now() - interval '3 years'),
                                  date_trunc('month', now() - interval '61 days'), interval '1 month') AS m
WHERE EXISTS (SELECT 1 FROM time_entries te WHERE te.customer_id = c.customer_id)
"""

LINES = """
INSERT INTO invoice_line_items (invoice_id, time_entry_id, description, quantity, unit_price, line_total, item_type)
SELECT i.invoice_id, te.entry_id, 'Support', te.hours_worked, te.billing_rate, te.hours_worked * te.billing_rate,
       'hourly_work'
FROM time_entries te
JOIN invoices i ON i.customer_id = te.customer_id
              AND i.invoice_date = (date_trunc('month', te.work_date) + interval '1 month')::date
              AND i.invoice_number LIKE 'INV-B-%'
WHERE te.approval_status = 'approved' AND te.is_billable AND te.work_date < now() - interval '61 days'
  AND te.description = 'Generated work'
"""

TOTALS = """
UPDATE invoices i SET subtotal = s.total, tax_amount = 0, total_amount = s.total,
       paid_amount = CASE WHEN i.invoice_status = 'paid' THEN s.total ELSE 0 END,
       paid_at = CASE WHEN i.invoice_status = 'paid' THEN i.sent_at + interval '20 days' END
FROM (SELECT invoice_id, SUM(line_total) AS total FROM invoice_line_items GROUP BY invoice_id) AS s
WHERE s.invoice_id = i.invoice_id AND i.invoice_number LIKE 'INV-B-%'
"""


def sh(env, *args):
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("flask")), *args], cwd=ROOT, env=env, check=True)
    print(f"  flask {' '.join(args)}: {time.perf_counter() - started:.1f} s", flush=True)


def fill(url: str, tickets: int, entries: int) -> None:
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    name = url.rsplit("/", 1)[1]
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    env = {**os.environ, "DATABASE_URL": url, "PUBLIC_BASE_URL": "http://127.0.0.1:5399",
           "ENCRYPTION_KEYS": KEY, "FLASK_APP": "wsgi.py",
           "SLOW_QUERY_MS": "0"}
    sh(env, "db", "upgrade")
    sh(env, "seed", "--password", PASSWORD)
    sh(env, "generate", "--tickets", str(tickets))
    engine = sa.create_engine(url)
    with engine.begin() as c:
        started = time.perf_counter()
        lo, hi = c.execute(sa.text("SELECT min(ticket_id), max(ticket_id) FROM support_tickets")).one()
        techs = c.execute(sa.text("SELECT array_agg(employee_id) FROM employees WHERE role IN "
                                  "('technician', 'senior_technician') AND employment_status = 'active'")).scalar()
        approver = c.execute(sa.text("SELECT employee_id FROM employees WHERE role = 'admin' LIMIT 1")).scalar()
        c.execute(sa.text("ALTER TABLE time_entries DISABLE TRIGGER USER"))
        c.execute(sa.text("ALTER TABLE invoice_line_items DISABLE TRIGGER USER"))
        c.execute(sa.text("ALTER TABLE invoices DISABLE TRIGGER USER"))
        for first in range(1, entries + 1, 500_000):
            c.execute(sa.text(ENTRIES), {"first": first, "last": min(first + 499_999, entries), "min_ticket": lo,
                                         "max_ticket": hi, "techs": techs, "approver": approver})
            print(f"  {min(first + 499_999, entries):,} entries ({time.perf_counter() - started:.0f} s)", flush=True)
        c.execute(sa.text(INVOICES))
        c.execute(sa.text(LINES))
        c.execute(sa.text(TOTALS))
        c.execute(sa.text("DELETE FROM report_time_month"))
        c.execute(sa.text("""INSERT INTO report_time_month (month, customer_id, employee_id, approved_hours)
                             SELECT date_trunc('month', work_date)::date, customer_id, employee_id, SUM(hours_worked)
                             FROM time_entries WHERE approval_status = 'approved' GROUP BY 1, 2, 3"""))
        from portal.models.time_entries import PENDING_TIME_TOTALS

        c.execute(sa.text("DELETE FROM pending_time_totals"))
        c.execute(sa.text("INSERT INTO pending_time_totals (employee_id, project_id, entries, hours, value) "
                          + PENDING_TIME_TOTALS))
        c.execute(sa.text("""UPDATE projects p SET actual_cost = COALESCE((SELECT round(SUM(hours_worked * billing_rate), 2)
                             FROM time_entries te WHERE te.project_id = p.project_id
                             AND te.approval_status = 'approved'), 0)"""))
        for table in ("time_entries", "invoice_line_items", "invoices"):
            c.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        print(f"  entries, invoices, lines and sums: {time.perf_counter() - started:.1f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(sa.text("VACUUM ANALYZE"))
        counts = c.execute(sa.text("SELECT (SELECT count(*) FROM support_tickets), (SELECT count(*) FROM time_entries), "
                                   "(SELECT count(*) FROM invoices), (SELECT count(*) FROM invoice_line_items)")).one()
        print(f"  rows: {counts[0]:,} tickets, {counts[1]:,} time entries, {counts[2]:,} invoices, "
              f"{counts[3]:,} invoice lines", flush=True)
    engine.dispose()


def measure(url: str, runs: int) -> None:
    os.environ.update({"DATABASE_URL": url, "PUBLIC_BASE_URL": "http://127.0.0.1:5399",
                       "ENCRYPTION_KEYS": KEY, "SLOW_QUERY_MS": "0"})
    from portal import create_app
    from portal.extensions import db
    from portal.services import clock, policy, reports
    from portal.services.dashboards import role_home, staff_summary
    from portal.services.reports.unbilled import refresh_unbilled

    app = create_app({"SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False})
    logins = {"admin": "priya.natarajan@techserv.com", "account_manager": "jessica.brown@techserv.com",
              "project_manager": "carlos.martinez@techserv.com", "senior_technician": "john.davis@techserv.com",
              "technician": "amanda.lee@techserv.com"}
    with app.app_context():
        started = time.perf_counter()
        refresh_unbilled(db.session, clock.now())
        db.session.commit()
        print(f"\nscan.unbilled_work (the worker's refresh of report_unbilled): {time.perf_counter() - started:.2f} s")
        engine = db.engine
    statements: list = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cur, stmt, params, ctx, many: statements.append((stmt, params, time.perf_counter())))

    def timed(action):
        for _ in range(2):
            action()
        samples = []
        for _ in range(runs):
            statements.clear()
            t = time.perf_counter()
            action()
            samples.append(time.perf_counter() - t)
        return statistics.median(samples) * 1000, [s for s in statements if not s[0].lstrip().upper().startswith(
            ("SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT", "BEGIN"))]

    def slowest_plan(captured):
        # The statement followed by the longest gap is the slowest one.
        gaps = [(captured[i + 1][2] - captured[i][2] if i + 1 < len(captured) else 0, captured[i])
                for i in range(len(captured))]
        _, (stmt, params, _) = max(gaps, key=lambda g: g[0])
        with engine.connect() as c:
            with c.connection.driver_connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + stmt, params)
                return "\n".join("      " + row[0] for row in cursor.fetchall())

    def page(client, path):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.headers.get("Location"))

    def signed_in(email):
        client = app.test_client()
        response = client.post("/login", data={"email": email, "password": PASSWORD})
        assert response.status_code == 302 and "/login" not in response.headers["Location"], email
        return client

    def service(action):
        with app.app_context():
            action()
            db.session.rollback()

    admin = signed_in(logins["admin"])
    principal = policy.Principal(account_id=None, email="", name="bench", employee_id=1, role=policy.EmployeeRole.ADMIN)
    today = clock.today()
    print(f"\n{'page':48} {'HTTP ms':>8} {'service ms':>11} {'statements':>10}")
    for name in reports.NAMES:
        queries = {"sla": ["", f"?start={today.replace(year=today.year - 1).isoformat()}"],
                   "profitability": ["", "?months=36"]}.get(name, [""])
        for query in queries:
            http_ms, captured = timed(lambda: page(admin, f"/staff/reports/{name}{query}"))
            args = dict(p.split("=") for p in query.lstrip("?").split("&") if p)
            service_ms, _ = timed(lambda: service(lambda: reports.run(db.session, principal, name, args)))
            print(f"{'/staff/reports/' + name + query:48} {http_ms:8.1f} {service_ms:11.1f} {len(captured):10}", flush=True)
            if http_ms > 200:
                print(slowest_plan(captured))
    for role, email in logins.items():
        client = signed_in(email)
        http_ms, captured = timed(lambda: page(client, "/staff/"))
        who = policy.Principal(account_id=None, email="", name="bench", employee_id=1, role=policy.EmployeeRole(role))
        service_ms, _ = timed(lambda: service(lambda: (role_home(db.session, who, today, clock.now()),
                                                       staff_summary(db.session, who, today))))
        print(f"{'/staff/ (' + role + ')':48} {http_ms:8.1f} {service_ms:11.1f} {len(captured):10}", flush=True)
        if http_ms > 200:
            print(slowest_plan(captured))

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--measure-only", action="store_true", help="time an already filled database")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if not re.search(r"/[A-Za-z0-9_]+$", url):
        raise SystemExit("BENCH_DATABASE_URL must end in a database name")
    try:
        if not args.measure_only:
            fill(url, args.tickets, args.entries)
        measure(url, args.runs)
    finally:
        if not args.keep:
            engine = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
            with engine.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
            engine.dispose()


if __name__ == "__main__":
    main()
