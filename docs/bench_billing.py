"""Billing at scale (issue 11): one customer-month of 1,000 time entries, and the month-end run for 2,000 customers.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python docs/bench_billing.py
    python docs/bench_billing.py            # an embedded PostgreSQL of its own, removed after

It makes a database of its own (dropped at the end), migrates it, then:

1. Generation: 12 customers, each with a contract (20 h included) and 1,000 approved support
   entries in one month (set-based INSERT ... SELECT). `generate_invoice` is timed end to end
   (plan, lock, the 1,000 lines written, triggers, the event) for each customer in its own
   transaction, committed: 2 warm-ups, then median, best and worst of 10.
2. Month-end: 1,800 active customers with a contract and 1 to 8 approved entries in the month,
   200 more with a contract and no work (their fee only), and the 12 above (billed already); then
   `start_run` and its four lanes' `run_step`s, each lane in a thread of its own as the worker's
   four job slots (WORKER_CONCURRENCY, default 4) run them, each step committed as the worker
   does, timed from the start to the last lane's end. Then the same month again (everything is
   billed: a second run must make nothing).
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import orm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MONTH = date(2026, 10, 1)
MONTH_END = date(2026, 10, 31)

SETUP = """
INSERT INTO employees (employee_number, first_name, last_name, email, role, hire_date, hourly_rate_internal,
                       hourly_rate_client)
VALUES ('B0001', 'Bench', 'Tech', 'bench.tech@techserv.example', 'technician', '2020-01-01', 50, 100);
"""
CUSTOMERS = """
INSERT INTO customers (company_name, primary_contact_email, account_status, service_tier)
SELECT :prefix || g, 'it' || g || '@' || replace(lower(:prefix), ' ', '') || '.example', :status, 'professional'
FROM generate_series(1, :n) g
"""
CONTRACTS = """
INSERT INTO service_contracts (contract_number, customer_id, service_tier, monthly_fee, included_hours,
                               hourly_rate_additional, start_date, end_date, contract_status)
SELECT 'CON-B-' || customer_id, customer_id, 'professional', 1200, 20, 150, '2026-01-01', '2026-12-31', 'active'
FROM customers WHERE company_name LIKE :prefix || '%'
"""
TICKETS = """
INSERT INTO support_tickets (ticket_number, customer_id, contract_id, title, description, category)
SELECT 'TKT-B-' || c.customer_id, c.customer_id, k.contract_id, 'Bench ticket', 'Bench', 'software'
FROM customers c JOIN service_contracts k USING (customer_id) WHERE c.company_name LIKE :prefix || '%'
"""
ENTRIES = """
INSERT INTO time_entries (employee_id, customer_id, ticket_id, work_date, hours_worked, description, work_category,
                          is_billable, approval_status, billing_rate)
SELECT (SELECT employee_id FROM employees WHERE employee_number = 'B0001'), t.customer_id, t.ticket_id,
       DATE '2026-10-01' + (g % 31), 0.25 * (1 + g % 3), 'Bench work ' || g, 'support', true, 'approved', 100
FROM support_tickets t JOIN customers c USING (customer_id), generate_series(1, :per) g
WHERE c.company_name LIKE :prefix || '%' AND (:varied = 0 OR g <= 1 + (c.customer_id % 8))
"""


def main() -> None:
    from tests.pgserver import start_server, stop_server
    from tests.test_migrations import migrate_database

    server, handle = start_server()
    name = server.create_database("techserv_bench_billing")
    try:
        migrate_database(server, name)
        engine = sa.create_engine(server.url_for(name), pool_size=8)
        with engine.begin() as conn:
            conn.execute(sa.text(SETUP))
        if not os.environ.get("BENCH_SKIP_GENERATION"):
            bench_generation(engine)
        bench_month_end(engine)
        engine.dispose()
    finally:
        server.drop_database(name)
        stop_server(server, handle)


def _load(engine, prefix: str, n: int, per: int, *, varied: bool, status: str = "active") -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(CUSTOMERS), {"prefix": prefix, "n": n, "status": status})
        conn.execute(sa.text(CONTRACTS), {"prefix": prefix})
        conn.execute(sa.text(TICKETS), {"prefix": prefix})
        if per:
            conn.execute(sa.text(ENTRIES), {"prefix": prefix, "per": per, "varied": int(varied)})
        conn.execute(sa.text("ANALYZE"))


def bench_generation(engine) -> None:
    from portal.services.invoicing import InvoiceRequest, generate_invoice
    from portal.services.policy import Principal

    _load(engine, "Gen customer ", 12, 1000, varied=False)
    Session = orm.sessionmaker(engine)
    with Session() as s:
        ids = s.scalars(sa.text("SELECT customer_id FROM customers WHERE company_name LIKE 'Gen customer %'"
                                " ORDER BY customer_id")).all()
    timings = []
    system = Principal.system("bench")
    for customer_id in ids:
        with Session() as s:
            started = time.perf_counter()
            invoice = generate_invoice(s, system, InvoiceRequest(customer_id, MONTH, MONTH_END),
                                       invoice_date=date(2026, 11, 1), tax_rate=Decimal("0.0825"))
            s.commit()
            timings.append((time.perf_counter() - started) * 1000)
            lines = len(invoice.line_items)
    measured = timings[2:]
    print(f"generate_invoice, 1,000 entries ({lines} lines), {len(measured)} runs after 2 warm-ups: "
          f"median {statistics.median(measured):.0f} ms, best {min(measured):.0f} ms, worst {max(measured):.0f} ms")


def bench_month_end(engine) -> None:
    from portal.services import invoice_runs
    from portal.services.policy import Principal

    _load(engine, "Run customer ", 1800, 8, varied=True)
    _load(engine, "Quiet customer ", 200, 0, varied=False)  # a contract but no work: only its fee
    with engine.begin() as conn:
        entries = conn.execute(sa.text("SELECT count(*) FROM time_entries WHERE work_date BETWEEN :a AND :b"),
                               {"a": MONTH, "b": MONTH_END}).scalar()
        active = conn.execute(sa.text("SELECT count(*) FROM customers WHERE account_status = 'active'")).scalar()
    Session = orm.sessionmaker(engine)
    manager = Principal.system("bench account manager")
    for attempt in ("first", "second"):
        started = time.perf_counter()
        with Session() as s:
            run, _ = invoice_runs.start_run(s, manager, MONTH)
            run_id, lanes = run.run_id, run.lanes
            s.commit()
        steps = []

        def lane_worker(lane: int) -> None:  # one of the worker's concurrent job slots, on one lane
            while True:
                with Session() as s:
                    more = invoice_runs.run_step(s, run_id, lane=lane, tax_rate=Decimal("0.0825"))
                    s.commit()
                steps.append(lane)
                if not more:
                    return

        threads = [threading.Thread(target=lane_worker, args=(lane,)) for lane in range(lanes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        steps = len(steps)
        seconds = time.perf_counter() - started
        with Session() as s:
            view = s.execute(sa.text("SELECT made, nothing, failed, processed FROM invoice_runs WHERE run_id = :r"),
                             {"r": run_id}).one()
        print(f"month-end run ({attempt}) over {active} active customers, {entries} entries in the month: "
              f"{seconds:.1f} s in {steps} steps; made {view.made}, nothing to bill {view.nothing}, "
              f"failed {view.failed}")


if __name__ == "__main__":
    os.environ.setdefault("PORTAL_BENCH", "1")
    main()
