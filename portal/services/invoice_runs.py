"""The month-end run: every active customer billed for a calendar month, by the worker, a chunk at a time.

- `start_run` records the run (one running run per period: a partial unique index, so two people
  pressing the button at once get the same run) and defers its first step.
- `run_step` (the worker's job) bills the next CHUNK customers of one lane (customer_id modulo
  LANES) that have no outcome in the run yet, each in a savepoint of its own (one customer's
  failure is recorded with its reason and rolls back only its invoice), records an outcome per
  customer (the key (run, customer) makes a second outcome impossible), adds to the counters and
  defers the lane's next step, all in the step's one transaction; the page's progress bar reads
  the counters. The lanes run side by side on several workers (or one worker's concurrency); two
  jobs on one lane: the second finds the lane's advisory lock taken and leaves it to the first.
  The last lane to finish marks the run done (a bit per lane, set atomically).
- Running it again for the same month makes nothing twice: each customer's generation bills only
  what no live line bills yet (services/invoicing.py), so a second run finds "nothing to bill".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.models import AccountStatus, Customer, Invoice, InvoiceRun, InvoiceRunItem
from portal.services import clock, events, policy
from portal.services.errors import DomainError, Forbidden, Invalid, NotFound
from portal.services.invoicing import InvoiceRequest, generate_invoice, month_end
from portal.services.policy import Principal

RUN_TASK = "invoice_run.step"
RUN_LOCK = 7302  # advisory lock of a run's step (the run is the second key)
CHUNK = 100
LANES = 4  # the run's customers in four lanes (customer_id modulo 4), billed side by side by the workers
SHOWN = 100  # customers listed per outcome on the run's page
MONTH_END = Principal.system("month-end run")


def _require(principal: policy.Principal) -> None:
    if not policy.may_bill(principal):
        raise Forbidden("Only account managers and administrators run the month end.")


def parse_month(value: str | None, *, today: date) -> date:
    """The first day of the month "YYYY-MM"; it must have ended (a month is billed once it is over).

    :raises Invalid: not a month, or a month not over yet (field "month").
    """
    text = (value or "").strip()
    try:
        year, month = (int(part) for part in text.split("-"))
        first = date(year, month, 1)
    except ValueError:
        raise Invalid("Enter the month as year and month, like "
                      f"{(today.replace(day=1) - timedelta(days=1)):%Y-%m}.", "month") from None
    if month_end(first) >= today:
        raise Invalid(f"{first:%B %Y} is not over yet: run the month end once it has ended.", "month")
    if first.year < 2000:
        raise Invalid("Choose a month from January 2000 onwards.", "month")
    return first


NOTHING = "There is nothing to bill for this customer in this period."
# The customers of a chunk with something to bill in the run's month: approved billable work on no
# live line, or a contract with a fee whose month no live line bills (the run's period is one
# calendar month, so its fee month is the period's first day). The same conditions as plan_invoice.
SOMETHING_TO_BILL = sa.text("""
    SELECT c.customer_id FROM customers c
     WHERE c.customer_id = ANY(CAST(:ids AS integer[])) AND (
           EXISTS (SELECT 1 FROM time_entries t
                    WHERE t.customer_id = c.customer_id AND t.approval_status = 'approved' AND t.is_billable
                      AND t.work_date BETWEEN :start AND :end
                      AND NOT EXISTS (SELECT 1 FROM invoice_line_items l WHERE l.time_entry_id = t.entry_id AND l.live))
        OR EXISTS (SELECT 1 FROM service_contracts k
                    WHERE k.customer_id = c.customer_id AND k.contract_status IN ('active', 'expired')
                      AND k.monthly_fee > 0 AND k.start_date <= :end AND k.end_date >= :start
                      AND NOT EXISTS (SELECT 1 FROM invoice_line_items l
                                       WHERE l.contract_id = k.contract_id AND l.billing_month = :start
                                         AND l.item_type = 'monthly_fee' AND l.live)))""")


def _active_customers():
    return Customer.account_status == AccountStatus.ACTIVE


def start_run(session, principal: policy.Principal, month: date, *, lanes: int = LANES) -> tuple[InvoiceRun, bool]:
    """Start the month-end run for `month` (its first day), or answer the one running already.

    Returns (run, started): started is False when a run for the month was running already (its
    lanes' next steps are deferred again, so a run whose worker died moves on; a lane already at
    work keeps its lock and the repeat finds nothing to do).
    :raises Forbidden: not an account manager or admin.
    """
    _require(principal)
    first, last = month.replace(day=1), month_end(month)
    total = session.scalar(sa.select(sa.func.count()).select_from(Customer).where(_active_customers()))
    run_id = session.scalar(
        insert(InvoiceRun).values(period_start=first, period_end=last, started_by=principal.actor.label, total=total,
                                  lanes=lanes)
        .on_conflict_do_nothing(index_elements=["period_start", "period_end"],
                                index_where=sa.text("status = 'running'"))
        .returning(InvoiceRun.run_id))
    started = run_id is not None
    if not started:
        run_id = session.scalar(sa.select(InvoiceRun.run_id).where(
            InvoiceRun.period_start == first, InvoiceRun.period_end == last, InvoiceRun.status == "running"))
    run = session.get(InvoiceRun, run_id)
    if started:
        events.emit(session, principal, "invoice_run.started", ("invoice_runs", run_id),
                    {"run_id": run_id, "period_start": first.isoformat(), "period_end": last.isoformat()},
                    changes={"period": (None, f"{first} to {last}"), "customers": (None, total)})
    from portal.jobs.queue import Job, defer

    defer(session, [Job(RUN_TASK, {"run_id": run_id, "lane": lane}, queue="default") for lane in range(run.lanes)])
    return run, started


def run_step(session, run_id: int, *, lane: int = 0, tax_rate: Decimal, chunk: int = CHUNK,
             now: datetime | None = None) -> bool:
    """Bill the next `chunk` customers of one lane of a run (customer_id modulo lanes); returns whether
    more remain in the lane (its next step is then deferred)."""
    if not session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(RUN_LOCK + lane, run_id))):
        return False  # another worker is on this lane's step; it defers the next
    run = session.get(InvoiceRun, run_id, populate_existing=True)
    if run is None or run.status != "running" or not 0 <= lane < run.lanes:
        return False
    invoice_date = clock.today(run.started_at)
    done_already = sa.exists().where(InvoiceRunItem.run_id == run_id,
                                     InvoiceRunItem.customer_id == Customer.customer_id)
    customers = session.scalars(
        sa.select(Customer.customer_id).where(_active_customers(), Customer.customer_id % run.lanes == lane,
                                              ~done_already)
        .order_by(Customer.customer_id).limit(chunk)).all()
    billable = set(session.scalars(SOMETHING_TO_BILL, {"ids": list(customers), "start": run.period_start,
                                                       "end": run.period_end}))
    outcomes = []
    for customer_id in customers:
        if customer_id not in billable:  # what generate_invoice would find, asked for the whole chunk at once
            outcomes.append({"run_id": run_id, "customer_id": customer_id, "outcome": "nothing", "invoice_id": None,
                             "reason": NOTHING})
            continue
        savepoint = session.begin_nested()
        try:
            invoice = generate_invoice(session, MONTH_END, InvoiceRequest(customer_id, run.period_start, run.period_end),
                                       invoice_date=invoice_date, tax_rate=tax_rate)
            savepoint.commit()
            outcomes.append({"run_id": run_id, "customer_id": customer_id, "outcome": "made",
                             "invoice_id": invoice.invoice_id, "reason": None})
        except Invalid as error:
            savepoint.rollback()
            outcomes.append({"run_id": run_id, "customer_id": customer_id, "outcome": "nothing", "invoice_id": None,
                             "reason": error.message})
        except Exception as error:  # noqa: BLE001 - one customer's failure is recorded, the run goes on
            savepoint.rollback()
            reason = error.message if isinstance(error, DomainError) else f"{type(error).__name__}: {error}"
            outcomes.append({"run_id": run_id, "customer_id": customer_id, "outcome": "failed", "invoice_id": None,
                             "reason": reason[:1000]})
    written = 0
    if outcomes:
        written = len(session.execute(insert(InvoiceRunItem).values(outcomes).on_conflict_do_nothing()
                                      .returning(InvoiceRunItem.customer_id)).all())
    more = len(customers) == chunk
    counts = {kind: sum(1 for o in outcomes if o["outcome"] == kind) for kind in ("made", "nothing", "failed")}
    lane_bit = 0 if more else 1 << lane
    # Counters and the lane's bit in one atomic UPDATE: lanes run side by side on the same row.
    lanes_done, lanes = session.execute(
        sa.update(InvoiceRun).where(InvoiceRun.run_id == run_id)
        .values(made=InvoiceRun.made + counts["made"], nothing=InvoiceRun.nothing + counts["nothing"],
                failed=InvoiceRun.failed + counts["failed"], processed=InvoiceRun.processed + written,
                lanes_done=InvoiceRun.lanes_done.op("|")(lane_bit))
        .returning(InvoiceRun.lanes_done, InvoiceRun.lanes)
        .execution_options(synchronize_session=False)).one()
    if more:
        from portal.jobs.queue import Job, defer

        defer(session, [Job(RUN_TASK, {"run_id": run_id, "lane": lane}, queue="default")])
        return True
    if lanes_done == (1 << lanes) - 1:
        finished = session.execute(
            sa.update(InvoiceRun).where(InvoiceRun.run_id == run_id, InvoiceRun.status == "running")
            .values(status="done", finished_at=now or clock.now(),
                    total=sa.func.greatest(InvoiceRun.total, InvoiceRun.processed))
            .returning(InvoiceRun.made, InvoiceRun.nothing, InvoiceRun.failed)
            .execution_options(synchronize_session=False)).one_or_none()
        if finished is not None:
            events.emit(session, MONTH_END, "invoice_run.finished", ("invoice_runs", run_id),
                        {"run_id": run_id, "made": finished.made, "nothing": finished.nothing,
                         "failed": finished.failed},
                        changes={"status": ("running", "done")})
    return False


@dataclass(frozen=True)
class RunOutcome:
    customer_id: int
    company_name: str
    invoice_id: int | None
    invoice_number: str | None
    total_amount: Decimal | None
    reason: str | None


@dataclass(frozen=True)
class RunView:
    run: InvoiceRun
    made: list[RunOutcome]
    failed: list[RunOutcome]
    nothing: list[RunOutcome]

    @property
    def percent(self) -> int:
        return 100 if self.run.status == "done" else min(99, int(self.run.processed * 100 / max(self.run.total, 1)))


def run_view(session, principal: policy.Principal, run_id: int) -> RunView:
    """A run with its counters and (up to SHOWN of each) the customers per outcome, in two queries.

    :raises NotFound: no such run.
    """
    _require(principal)
    run = session.get(InvoiceRun, run_id, populate_existing=True)
    if run is None:
        raise NotFound("No such month-end run.")
    ranked = (sa.select(InvoiceRunItem.customer_id, InvoiceRunItem.outcome, InvoiceRunItem.invoice_id,
                        InvoiceRunItem.reason,
                        sa.func.row_number().over(partition_by=InvoiceRunItem.outcome,
                                                  order_by=InvoiceRunItem.customer_id).label("n"))
              .where(InvoiceRunItem.run_id == run_id).subquery())
    rows = session.execute(
        sa.select(ranked.c.customer_id, ranked.c.outcome, ranked.c.invoice_id, ranked.c.reason, Customer.company_name,
                  Invoice.invoice_number, Invoice.total_amount)
        .join(Customer, Customer.customer_id == ranked.c.customer_id)
        .outerjoin(Invoice, Invoice.invoice_id == ranked.c.invoice_id)
        .where(ranked.c.n <= SHOWN).order_by(Customer.company_name)).all()
    by: dict[str, list[RunOutcome]] = {"made": [], "failed": [], "nothing": []}
    for r in rows:
        by[r.outcome].append(RunOutcome(r.customer_id, r.company_name, r.invoice_id, r.invoice_number,
                                        r.total_amount, r.reason))
    return RunView(run=run, made=by["made"], failed=by["failed"], nothing=by["nothing"])


def recent_runs(session, principal: policy.Principal, limit: int = 12) -> list[InvoiceRun]:
    """The latest runs, newest first."""
    _require(principal)
    return list(session.scalars(sa.select(InvoiceRun).order_by(InvoiceRun.started_at.desc(), InvoiceRun.run_id.desc())
                                .limit(limit)))
