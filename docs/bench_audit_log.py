"""The audit log page on a few million events: generate them, then time each common view and show its plan.

    python docs/bench_audit_log.py --events 3000000            # an embedded PostgreSQL of its own, removed after
    DATABASE_URL=postgresql://... python docs/bench_audit_log.py  # an empty database on your server

It migrates, loads the demo data, adds `--events` generated events (set-based INSERT ... SELECT
over generate_series, spread over three years like a busy portal's: tickets 55 %, time 18 %,
sign-ins 15 %, projects 4 %, invoices 2 %, the rest rarer; employees 60 % of the actors, contacts
25 %, the system 12 %, API clients 3 %), runs VACUUM ANALYZE, then calls `audit_page` for each
view as the admin: 3 warm-ups and the median of 10 end to end, and EXPLAIN (ANALYZE, BUFFERS) of
the events query it sent. Results are in docs/performance.md ("The audit log").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GENERATE = """
INSERT INTO audit_events (occurred_at, actor_type, actor_id, actor_label, action, table_name, row_id, changes,
                          ip_address)
SELECT at, actor_type::actor_type, actor_id, actor_label, action, table_name, row_id, changes, ip
FROM (
    SELECT g,
           now() - interval '3 years' + (g::float8 / :total) * interval '3 years'
               - abs(hashint8extended(g, 1) % 600) * interval '1 second' AS at,
           a AS actor_roll, k AS kind_roll, r AS row_roll
    FROM generate_series(:first, :last) AS g,
         LATERAL (SELECT abs(hashint8extended(g, 2)) % 1000 AS a, abs(hashint8extended(g, 3)) % 1000 AS k,
                         abs(hashint8extended(g, 4)) AS r) AS rolls
) AS e,
LATERAL (SELECT
    CASE WHEN actor_roll < 600 THEN 'employee' WHEN actor_roll < 850 THEN 'contact'
         WHEN actor_roll < 970 THEN 'system' ELSE 'api_client' END AS actor_type) AS t,
LATERAL (SELECT
    CASE t.actor_type WHEN 'employee' THEN 1 + row_roll % 5 WHEN 'contact' THEN 1 + row_roll % 10
                      WHEN 'api_client' THEN 1 + row_roll % 3 END AS actor_id) AS i,
LATERAL (SELECT
    CASE t.actor_type WHEN 'employee' THEN (ARRAY['John Davis', 'Amanda Lee', 'Carlos Martinez', 'Jessica Brown',
                                                  'Priya Natarajan'])[i.actor_id]
                      WHEN 'contact' THEN 'Contact ' || i.actor_id
                      WHEN 'api_client' THEN (ARRAY['Zapier', 'RMM sync', 'Accounting'])[i.actor_id]
                      ELSE (ARRAY['scheduler', 'monthly invoice run'])[1 + row_roll % 2] END AS actor_label) AS l,
LATERAL (SELECT
    CASE WHEN kind_roll < 550 THEN (ARRAY['ticket.assigned', 'ticket.status_changed', 'ticket.replied',
                                          'ticket.note_added', 'ticket.created', 'ticket.updated'])[1 + row_roll % 6]
         WHEN kind_roll < 730 THEN (ARRAY['time_entry.logged', 'time_entry.approved'])[1 + row_roll % 2]
         WHEN kind_roll < 880 THEN (ARRAY['login.succeeded', 'logout', 'login.failed'])[1 + row_roll % 3]
         WHEN kind_roll < 920 THEN (ARRAY['project.updated', 'phase.updated', 'phase.approved'])[1 + row_roll % 3]
         WHEN kind_roll < 940 THEN (ARRAY['invoice.generated', 'invoice.sent', 'invoice.paid',
                                          'invoice.overdue'])[1 + row_roll % 4]
         WHEN kind_roll < 960 THEN 'contact.profile_updated'
         WHEN kind_roll < 980 THEN 'contract.expiring'
         WHEN kind_roll < 999 THEN 'password.changed'
         ELSE 'employee.updated' END AS action) AS ac,
LATERAL (SELECT
    CASE split_part(ac.action, '.', 1) WHEN 'ticket' THEN 'support_tickets' WHEN 'time_entry' THEN 'time_entries'
         WHEN 'login' THEN 'accounts' WHEN 'logout' THEN 'accounts' WHEN 'password' THEN 'accounts'
         WHEN 'project' THEN 'projects' WHEN 'phase' THEN 'project_phases' WHEN 'invoice' THEN 'invoices'
         WHEN 'contact' THEN 'contacts' WHEN 'contract' THEN 'service_contracts' ELSE 'employees' END AS table_name) AS tb,
LATERAL (SELECT
    CASE tb.table_name WHEN 'support_tickets' THEN 1 + row_roll % 100000 WHEN 'time_entries' THEN 1 + row_roll % 300000
         WHEN 'accounts' THEN 1 + row_roll % 20 WHEN 'projects' THEN 1 + row_roll % 200
         WHEN 'project_phases' THEN 1 + row_roll % 800 WHEN 'invoices' THEN 1 + row_roll % 5000
         WHEN 'contacts' THEN 1 + row_roll % 15 WHEN 'service_contracts' THEN 1 + row_roll % 30
         ELSE 1 + row_roll % 5 END AS row_id) AS r,
LATERAL (SELECT
    CASE ac.action WHEN 'ticket.assigned' THEN jsonb_build_object('assigned_employee_id',
                        jsonb_build_object('old', NULL, 'new', 1 + row_roll % 5))
         WHEN 'ticket.status_changed' THEN '{"status": {"old": "assigned", "new": "in_progress"}}'::jsonb
         WHEN 'time_entry.logged' THEN '{"hours_worked": {"old": null, "new": "1.50"}}'::jsonb
         WHEN 'invoice.overdue' THEN '{"invoice_status": {"old": "sent", "new": "overdue"}}'::jsonb
         WHEN 'employee.updated' THEN '{"hourly_rate_client": {"old": "100.00", "new": "105.00"}}'::jsonb
         ELSE NULL END AS changes,
    ('10.' || (row_roll % 250) || '.' || (row_roll % 7) || '.' || (1 + row_roll % 200))::inet AS ip) AS c
"""


def _views(admin_filters):
    """(name, filters) of the views measured; `admin_filters` builds AuditFilters."""
    F = admin_filters
    return [
        ("default: newest 50", F()),
        ("page 2 (keyset)", "page2"),
        ("page deep in the past (1.5 M events back)", "deep"),
        ("one ticket's history (table + id)", F(table="support_tickets", object="4242")),
        ("one ticket by number (TKT-...)", "ticket_number"),
        ("one invoice by number (INV-...)", "invoice_number"),
        ("kind of object: invoices (2 %)", F(table="invoices")),
        ("kind of object: employees (0.1 %)", F(table="employees")),
        ("actor: one employee (12 %)", F(actor="employee:2")),
        ("actor: one contact (2.5 %)", F(actor="contact:3")),
        ("actor: the system (12 %)", F(actor="system")),
        ("actor: any contact (25 %)", F(actor="contact")),
        ("actor: one API client (1 %)", F(actor="api_client:2")),
        ("action: invoice.overdue (0.5 %)", F(action="invoice.overdue")),
        ("action: employee.updated (0.1 %)", F(action="employee.updated")),
        ("date range: one day a year ago", "one_day"),
        ("actor + kind + dates: an employee's ticket changes in a month", "combined"),
        ("two filters that rarely meet: one contact and employees", F(actor="contact:3", table="employees")),
        ("two filters that rarely meet: any API client opening tickets", F(actor="api_client",
                                                                          action="ticket.created")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--keep", action="store_true", help="leave the embedded server's data in place")
    args = parser.parse_args()

    handle = server = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        from tests.pgserver import start_server

        server, handle = start_server()
        url = server.url_for(server.create_database("techserv_audit_bench"))
    try:
        run(url, args.events)
    finally:
        if handle is not None and not args.keep:
            from tests.pgserver import stop_server

            stop_server(server, handle)


def run(url: str, total: int) -> None:
    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db
    from portal.models import Employee, Invoice, SupportTicket
    from portal.services import auth, clock
    from portal.services.audit_log import AuditFilters, audit_csv, audit_page
    from portal.services.seed import load_demo_data

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "MAIL_BACKEND": "memory"})
    with app.app_context():
        s = db.session
        upgrade()
        if not s.scalar(sa.select(sa.func.count()).select_from(Employee)):
            load_demo_data(s, password="correct horse battery", tax_rate=Decimal("0"))
            s.commit()
        have = s.scalar(sa.text("SELECT count(*) FROM audit_events"))
        if have < total:
            started = time.perf_counter()
            step = 500_000
            for first in range(have + 1, total + 1, step):
                s.execute(sa.text(GENERATE), {"first": first, "last": min(first + step - 1, total), "total": total})
                s.commit()
                print(f"  {min(first + step - 1, total):,} events", flush=True)
            print(f"generated {total - have:,} events in {time.perf_counter() - started:.1f} s")
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM (ANALYZE) audit_events"))
        sizes = s.execute(sa.text(
            "SELECT count(*), pg_size_pretty(pg_relation_size('audit_events')),"
            " pg_size_pretty(pg_total_relation_size('audit_events')) FROM audit_events")).one()
        print(f"audit_events: {sizes[0]:,} rows; heap {sizes[1]}, with indexes {sizes[2]}")
        for name, size in s.execute(sa.text(
                "SELECT indexrelname, pg_size_pretty(pg_relation_size(indexrelid)) FROM pg_stat_user_indexes"
                " WHERE relname = 'audit_events' ORDER BY indexrelname")):
            print(f"  {name}: {size}")

        admin_id = s.scalar(sa.select(Employee.employee_id).where(Employee.employee_number == "EMP005"))
        account = s.scalar(sa.text("SELECT account_id FROM accounts WHERE employee_id = :e"), {"e": admin_id})
        me = auth.principal_for(s, account)
        ticket_number = s.scalar(sa.select(SupportTicket.ticket_number).where(SupportTicket.ticket_id == 10))
        invoice_number = s.scalar(sa.select(Invoice.invoice_number).order_by(Invoice.invoice_id).limit(1))
        first_page = audit_page(s, me, AuditFilters())
        deep = s.scalar(sa.text("SELECT event_id FROM audit_events ORDER BY occurred_at DESC, event_id DESC"
                                " OFFSET :n LIMIT 1"), {"n": total // 2})
        a_year_ago = clock.today() - timedelta(days=365)
        special = {
            "page2": AuditFilters(before=first_page.older),
            "deep": AuditFilters(before=deep),
            "ticket_number": AuditFilters(object=ticket_number),
            "invoice_number": AuditFilters(object=invoice_number),
            "one_day": AuditFilters(date_from=a_year_ago, date_to=a_year_ago),
            "combined": AuditFilters(actor="employee:2", table="support_tickets",
                                     date_from=a_year_ago, date_to=a_year_ago + timedelta(days=30)),
        }
        s.rollback()

        sent: list = []
        event.listen(db.engine, "before_cursor_execute",
                     lambda conn, cursor, statement, params, context, many: sent.append((statement, params)))
        print("\n| view | rows | median ms (10 runs) | events query: index, buffers, ms |\n|---|---|---|---|")
        plans = []
        for name, filters in _views(AuditFilters):
            filters = special.get(filters, filters) if isinstance(filters, str) else filters
            times = []
            for _ in range(13):
                sent.clear()
                started = time.perf_counter()
                page = audit_page(s, me, filters)
                times.append((time.perf_counter() - started) * 1000)
                s.rollback()
            statement, params = next((sql, p) for sql, p in sent if "FROM audit_events" in sql)
            with db.engine.connect() as conn:
                plan = [row[0] for row in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)]
            index = sorted({word for line in plan for word in line.replace("(", " ").split()
                            if word.startswith("idx_audit") or word == "audit_events_pkey"})
            buffers = next((line.split("Buffers:")[1].strip() for line in plan if "Buffers:" in line), "")
            execution = next(line for line in plan if line.startswith("Execution Time"))
            print(f"| {name} | {len(page.rows)} | {statistics.median(times[3:]):.1f} | "
                  f"{', '.join(index) or 'none'}; {buffers}; {execution.split(':')[1].strip()} |", flush=True)
            plans.append((name, plan))
        started = time.perf_counter()
        text, count = audit_csv(s, me, special["one_day"])
        print(f"\nCSV of one day: {count:,} events, {len(text):,} bytes, {(time.perf_counter() - started) * 1000:.0f} ms")
        started = time.perf_counter()
        text, count = audit_csv(s, me, AuditFilters())
        print(f"CSV of everything (capped): {count:,} events, {len(text):,} bytes, "
              f"{(time.perf_counter() - started) * 1000:.0f} ms")
        s.rollback()
        for name, plan in plans:
            print(f"\n-- {name}\n" + "\n".join(plan))


if __name__ == "__main__":
    main()
