"""Service contracts: the renewal notices the worker sends before a contract ends; the staff's
contracts of a customer (create, change, renew), with the seed's rules said beside each field."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.models import ContractExpiryNotice, ContractStatus, ServiceContract, ServiceTier
from portal.services import events, policy
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound
from portal.services.money import format_money, to_cents
from portal.services.numbering import next_number

# Days before the end at which `contract.expiring` is emitted, most urgent first.
EXPIRY_STAGES = (30, 60, 90)


def expiry_stage(days_left: int) -> int | None:
    """The notice a contract with `days_left` is due: the nearest stage not yet passed (None outside 0-90 days).

    A scan that did not run for a while emits only the most urgent stage reached, never a stale
    "90 days" after the "60 days".
    """
    if not 0 <= days_left <= EXPIRY_STAGES[-1]:
        return None
    return next(stage for stage in EXPIRY_STAGES if days_left <= stage)


def notify_expiring(session, principal: policy.Principal, *, today: date) -> int:
    """Emit `contract.expiring` for active contracts ending in 90, 60 and 30 days, once per stage; returns how many.

    Once is held by the database (the notice's primary key; ON CONFLICT DO NOTHING), so two scans
    at once, or the same scan twice, emit each notice once. A contract whose end date moves gets
    notices for its new end date.
    :raises Forbidden: only the system (or an admin, by hand) runs the scheduled scans.
    """
    if not policy.may_run_scheduled_work(principal):
        raise Forbidden("Only the scheduler or an administrator sends renewal notices.")
    contracts = session.scalars(sa.select(ServiceContract).where(
        ServiceContract.contract_status == ContractStatus.ACTIVE,
        ServiceContract.end_date.between(today, today + timedelta(days=EXPIRY_STAGES[-1])))
        .order_by(ServiceContract.end_date, ServiceContract.contract_id)).all()
    emitted = 0
    for contract in contracts:
        days_left = (contract.end_date - today).days
        stage = expiry_stage(days_left)
        new = session.scalar(insert(ContractExpiryNotice).values(
            contract_id=contract.contract_id, end_date=contract.end_date, days_before=stage)
            .on_conflict_do_nothing().returning(ContractExpiryNotice.contract_id))
        if new is None:
            continue
        events.emit(session, principal, "contract.expiring", contract,
                    {"contract_id": contract.contract_id, "contract_number": contract.contract_number,
                     "customer_id": contract.customer_id, "end_date": contract.end_date.isoformat(),
                     "days_until_expiration": days_left, "stage": stage, "auto_renewal": contract.auto_renewal},
                    changes={"days_until_expiration": (None, days_left)})
        emitted += 1
    return emitted


# --- staff: create, change and renew a customer's contracts ----------------------------------------

FEE_LIMIT = Decimal("1000000")  # dollars a month: beyond it, a slip of the keyboard
RATE_LIMIT = Decimal("10000")  # dollars an extra hour
HOURS_IN_A_MONTH = 744  # 31 days: more included hours than a month has is a typo
SLA_LIMIT = 2160  # 90 days, in hours
EARLIEST_DAY = date(2000, 1, 1)

# The seed's rules, as the staff form says them beside each field.
CONTRACT_RULES = {
    "service_tier": "The support level this contract buys.",
    "contract_status": "Tickets are priced and timed by the active contract in force on their day. Active "
                       "contracts of one customer may not overlap.",
    "start_date": "The first day it is in force.",
    "end_date": "The last day it is in force: after the start.",
    "monthly_fee": "Dollars a month, $0 or more (at most $1,000,000.00).",
    "included_hours": f"Support hours a month the fee covers: a whole number from 0 to {HOURS_IN_A_MONTH}.",
    "hourly_rate_additional": "Dollars for each hour beyond the included ones: more than $0, at most $10,000.00.",
    "response_time_hours": f"SLA: hours to the first response, from 1 to {SLA_LIMIT}.",
    "resolution_time_hours": f"SLA: hours to resolution, at least the response time, at most {SLA_LIMIT}.",
    "coverage_days": "The SLA clock runs on the ticked weekdays only, between the two times, in the customer's "
                     "time zone, holidays excepted. None ticked: around the clock (24x7).",
    "coverage_start": "From, like 08:00 (with days ticked).",
    "coverage_end": "Until, like 18:00: after the start.",
    "price_increase_annual": "Percent the prices rise at each renewal, from 0 to 50, like 3.",
    "auto_renewal": "",
    "terms_conditions": "Optional.",
}
CONTRACT_FIELD_ORDER = list(CONTRACT_RULES)


@dataclass(frozen=True)
class ContractTerms:
    """A contract as the staff form gives it (None: not given)."""

    service_tier: ServiceTier | None = None
    contract_status: ContractStatus | None = None
    start_date: date | None = None
    end_date: date | None = None
    monthly_fee: Decimal | None = None
    included_hours: int | None = None
    hourly_rate_additional: Decimal | None = None
    response_time_hours: int | None = None
    resolution_time_hours: int | None = None
    coverage_days: tuple[int, ...] = ()  # ISO weekdays; none: 24x7
    coverage_start: time | None = None
    coverage_end: time | None = None
    price_increase_annual: Decimal | None = None
    auto_renewal: bool = False
    terms_conditions: str = ""

    @classmethod
    def of(cls, contract: ServiceContract) -> "ContractTerms":
        values = {f.name: getattr(contract, f.name) for f in fields(cls)}
        return cls(**{**values, "coverage_days": tuple(contract.coverage_days or ())})


def _money(value: Decimal | None, label: str, *, zero_ok: bool, limit: Decimal) -> Decimal:
    if value is None:
        raise Invalid(f"Enter the {label}, like 1,500.00.")
    if not value.is_finite() or value < 0 or (value == 0 and not zero_ok):
        raise Invalid(f"The {label} must be {'$0 or more' if zero_ok else 'more than $0'}.")
    if value > limit:
        raise Invalid(f"The {label} can be at most {format_money(limit)}.")
    if value != value.quantize(Decimal("0.01")):
        raise Invalid(f"Give the {label} in dollars and cents (two decimals at most).")
    return value.quantize(Decimal("0.01"))


def _whole(value: int | None, label: str, low: int, high: int) -> int:
    if value is None:
        raise Invalid(f"Enter the {label} as a whole number.")
    if not low <= value <= high:
        raise Invalid(f"The {label} must be from {low} to {high:,}.")
    return value


def _percent(value: Decimal | None) -> Decimal:
    if value is None:
        raise Invalid("Enter the annual price increase in percent, like 3 (0 for none).")
    if not value.is_finite() or not 0 <= value <= 50:
        raise Invalid("The annual price increase is from 0 to 50 percent.")
    if value != value.quantize(Decimal("0.01")):
        raise Invalid("Give the annual price increase with two decimals at most, like 3.5.")
    return value.quantize(Decimal("0.01"))


def _required(value, message: str):
    if value is None:
        raise Invalid(message)
    return value


def _day(value: date | None, label: str) -> date:
    if value is None:
        raise Invalid(f"Enter the {label} as YYYY-MM-DD.")
    if value < EARLIEST_DAY or value.year > 2100:
        raise Invalid(f"Check the year of the {label}.")
    return value


def _checked(session, customer_id: int, terms: ContractTerms, contract_id: int | None) -> tuple[dict, dict[str, str]]:
    """(the values to store, the message of every wrong field). Reads, never writes."""
    checks = {
        "service_tier": lambda: _required(terms.service_tier, "Choose a service tier."),
        "contract_status": lambda: _required(terms.contract_status, "Choose a status."),
        "start_date": lambda: _day(terms.start_date, "start date"),
        "end_date": lambda: _day(terms.end_date, "end date"),
        "monthly_fee": lambda: _money(terms.monthly_fee, "monthly fee", zero_ok=True, limit=FEE_LIMIT),
        "included_hours": lambda: _whole(terms.included_hours, "included hours", 0, HOURS_IN_A_MONTH),
        "hourly_rate_additional": lambda: _money(terms.hourly_rate_additional, "additional hourly rate",
                                                 zero_ok=False, limit=RATE_LIMIT),
        "response_time_hours": lambda: _whole(terms.response_time_hours, "response time", 1, SLA_LIMIT),
        "resolution_time_hours": lambda: _whole(terms.resolution_time_hours, "resolution time", 1, SLA_LIMIT),
        "price_increase_annual": lambda: _percent(terms.price_increase_annual),
    }
    values, errors = {}, {}
    for name, check in checks.items():
        try:
            values[name] = check()
        except Invalid as error:
            errors[name] = error.message
    values["auto_renewal"] = bool(terms.auto_renewal)
    values["terms_conditions"] = (terms.terms_conditions or "").strip() or None
    if len(values["terms_conditions"] or "") > 20_000:
        errors["terms_conditions"] = "The terms can be at most 20,000 characters."
    start, end = values.get("start_date"), values.get("end_date")
    if start and end and end <= start:
        errors["end_date"] = (f"The contract must end after it starts ({start.isoformat()}): "
                              "choose a later end date.")
    values.update(_coverage(terms, errors))
    response, resolution = values.get("response_time_hours"), values.get("resolution_time_hours")
    if response and resolution and resolution < response:
        errors["resolution_time_hours"] = "The resolution time cannot be shorter than the response time."
    if start and end and "end_date" not in errors and values.get("contract_status") == ContractStatus.ACTIVE:
        other = session.scalar(sa.select(ServiceContract.contract_number).where(
            ServiceContract.customer_id == customer_id, ServiceContract.contract_id != (contract_id or 0),
            ServiceContract.contract_status == ContractStatus.ACTIVE,
            ServiceContract.start_date <= end, ServiceContract.end_date >= start)
            .order_by(ServiceContract.start_date).limit(1))
        if other:
            errors["start_date"] = (f"The active contract {other} is in force on some of these days: "
                                    "change the dates, or end that contract first.")
    return values, errors


def _coverage(terms: ContractTerms, errors: dict[str, str]) -> dict:
    """The coverage columns (all None: 24x7), or messages in `errors` (chk_contract_coverage's rule)."""
    days = sorted(set(terms.coverage_days or ()))
    start, end = terms.coverage_start, terms.coverage_end
    if not days:
        if start is not None or end is not None:
            errors["coverage_days"] = ("Tick the weekdays these hours cover, or clear both times for around the "
                                       "clock (24x7).")
        return {"coverage_days": None, "coverage_start": None, "coverage_end": None}
    if any(day not in range(1, 8) for day in days):
        errors["coverage_days"] = "Choose the days from Monday to Sunday."
    if start is None:
        errors["coverage_start"] = "Enter the time cover starts on those days, like 08:00."
    if end is None:
        errors["coverage_end"] = "Enter the time cover ends on those days, like 18:00."
    elif start is not None and end <= start:
        errors["coverage_end"] = f"Cover must end after it starts ({start:%H:%M}) on the same day."
    return {"coverage_days": days, "coverage_start": start, "coverage_end": end}


SLA_TERMS = ("response_time_hours", "resolution_time_hours", "coverage_days", "coverage_start", "coverage_end")


def _refresh_open_tickets(session, contract_id: int) -> int:
    """Recompute the stored SLA times of the contract's tickets not closed yet (its SLA terms changed)."""
    from portal.models import SupportTicket
    from portal.services.sla import refresh_sla
    from portal.services.statuses import TICKETS_NOT_CLOSED

    tickets = session.scalars(sa.select(SupportTicket).where(
        SupportTicket.contract_id == contract_id, SupportTicket.status.in_(TICKETS_NOT_CLOSED))
        .with_for_update()).all()
    for ticket in tickets:
        refresh_sla(session, ticket)
    return len(tickets)


def _refuse(errors: dict[str, str]) -> None:
    if errors:
        first = next(name for name in CONTRACT_FIELD_ORDER if name in errors)
        message = errors[first] if len(errors) == 1 else f"Check the {len(errors)} fields marked below."
        raise Invalid(message, first, errors)


def contract_errors(session, principal: policy.Principal, customer_id: int, terms: ContractTerms,
                    contract_id: int | None = None) -> dict[str, str]:
    """What is wrong with these terms, field by field, without saving."""
    return _checked(session, customer_id, terms, contract_id)[1]


def _plain(value):
    if isinstance(value, time):
        return f"{value:%H:%M}"
    if isinstance(value, (date, Decimal)):
        return str(value)
    return value.value if hasattr(value, "value") else value


def contract_of(session, principal: policy.Principal, customer_id: int, contract_id: int, *,
                lock: bool = False) -> ServiceContract:
    """:raises NotFound: no such contract of this customer."""
    if not policy.may_see_customer(principal, customer_id):
        raise NotFound("No such contract.")
    query = sa.select(ServiceContract).where(ServiceContract.contract_id == contract_id,
                                             ServiceContract.customer_id == customer_id)
    contract = session.scalar(query.with_for_update().execution_options(populate_existing=True) if lock else query)
    if contract is None:
        raise NotFound("No such contract.")
    return contract


def _customer_locked(session, principal, customer_id: int):
    """The customer's row, locked: two contract changes of one customer are serialised, so the
    overlap rule holds under concurrent saves."""
    from portal.services.crm import visible_customer

    return visible_customer(session, principal, customer_id, lock=True)


def create_contract(session, principal: policy.Principal, customer_id: int, terms: ContractTerms, *,
                    today: date | None = None) -> ServiceContract:
    """A new contract of the customer, numbered CON-<year of its start>-NNN; audited with every value.

    :raises Forbidden: only account managers and administrators. :raises NotFound: no such customer.
    :raises Invalid: a term breaks a rule (every wrong field named).
    """
    if not policy.may_manage_contracts(principal):
        raise Forbidden("Only account managers and administrators make contracts.")
    _customer_locked(session, principal, customer_id)
    values, errors = _checked(session, customer_id, terms, None)
    _refuse(errors)
    contract = ServiceContract(customer_id=customer_id, contract_number=next_number(
        session, "contract", values["start_date"]), **values)
    session.add(contract)
    session.flush()
    events.emit(session, principal, "contract.created", contract,
                {"contract_id": contract.contract_id, "contract_number": contract.contract_number,
                 "customer_id": customer_id},
                changes={name: (None, _plain(value)) for name, value in values.items() if value is not None})
    return contract


def update_contract(session, principal: policy.Principal, customer_id: int, contract_id: int,
                    terms: ContractTerms, *, expected_updated_at: datetime | None) -> ServiceContract:
    """Change a contract's terms; audited with old and new values.

    :raises Forbidden: only account managers and administrators. :raises NotFound: no such contract here.
    :raises Conflict: someone changed it since the form was made. :raises Invalid: a term breaks a rule.
    """
    if not policy.may_manage_contracts(principal):
        raise Forbidden("Only account managers and administrators change contracts.")
    _customer_locked(session, principal, customer_id)
    contract = contract_of(session, principal, customer_id, contract_id, lock=True)
    if expected_updated_at is None or contract.updated_at != expected_updated_at:
        raise Conflict(f"Someone changed {contract.contract_number} since you opened this page. Here it is as it "
                       "is now; make your change again.")
    values, errors = _checked(session, customer_id, terms, contract_id)
    _refuse(errors)
    changes = events.apply_changes(contract, values)
    if not changes:
        return contract
    session.flush()
    if set(changes) & set(SLA_TERMS):
        _refresh_open_tickets(session, contract.contract_id)
    events.emit(session, principal, "contract.updated", contract,
                {"contract_id": contract.contract_id, "contract_number": contract.contract_number,
                 "customer_id": customer_id},
                changes={name: (_plain(old), _plain(new)) for name, (old, new) in changes.items()})
    session.refresh(contract)
    return contract


# --- renewal -----------------------------------------------------------------------------------

RENEWABLE = (ContractStatus.ACTIVE, ContractStatus.EXPIRED)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def one_year_from(start: date) -> date:
    """The last day of a one-year term starting on `start` (a new contract's suggested end)."""
    return _add_months(start, 12) - timedelta(days=1)


# What the new-contract form suggests (the seed's column defaults).
NEW_CONTRACT_DEFAULTS = {"included_hours": 0, "hourly_rate_additional": Decimal("125.00"), "response_time_hours": 24,
                         "resolution_time_hours": 72, "price_increase_annual": Decimal("3.00"), "auto_renewal": True}
# A new contract's coverage as the form first shows it: business hours, except enterprise's 24x7 (as in the demo).
BUSINESS_HOURS = {"coverage_days": (1, 2, 3, 4, 5), "coverage_start": time(8), "coverage_end": time(18)}


def default_coverage(tier: ServiceTier | None) -> dict:
    return {} if tier == ServiceTier.ENTERPRISE else dict(BUSINESS_HOURS)


def renewed_term(start: date, end: date) -> tuple[date, date]:
    """The term that follows [start, end]: from the day after `end`, as long as the old one (whole
    months when the old term was whole months, like 1 Jan-31 Dec or 15 Jan-14 Jan; else as many days)."""
    new_start = end + timedelta(days=1)
    months = (new_start.year - start.year) * 12 + new_start.month - start.month
    if months > 0 and _add_months(start, months) == new_start:
        return new_start, _add_months(new_start, months) - timedelta(days=1)
    return new_start, new_start + (end - start)


def raised(amount: Decimal, percent: Decimal) -> Decimal:
    """`amount` after the annual increase of `percent`, rounded half up to cents."""
    return to_cents(amount * (1 + percent / 100))


@dataclass(frozen=True)
class Renewal:
    """What renewing a contract would make, shown before it is confirmed."""

    contract: ServiceContract
    terms: ContractTerms
    fee_change: Decimal
    rate_change: Decimal
    renewed_by: str | None  # the number of the contract that already renews it, if any
    refusal: str | None  # why it cannot be renewed, if it cannot

    @property
    def fee_change_percent(self) -> Decimal:
        if not self.contract.monthly_fee:
            return Decimal("0")
        return (self.fee_change * 100 / self.contract.monthly_fee).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def renewal_of(session, principal: policy.Principal, customer_id: int, contract_id: int, *,
               lock: bool = False) -> Renewal:
    """The renewal of a contract: the same terms from the day after it ends, prices raised by its annual increase.

    :raises Forbidden: only account managers and administrators. :raises NotFound: no such contract here.
    """
    if not policy.may_manage_contracts(principal):
        raise Forbidden("Only account managers and administrators renew contracts.")
    contract = contract_of(session, principal, customer_id, contract_id, lock=lock)
    start, end = renewed_term(contract.start_date, contract.end_date)
    terms = ContractTerms(
        service_tier=contract.service_tier, contract_status=ContractStatus.ACTIVE, start_date=start, end_date=end,
        monthly_fee=raised(contract.monthly_fee, contract.price_increase_annual),
        included_hours=contract.included_hours,
        hourly_rate_additional=raised(contract.hourly_rate_additional, contract.price_increase_annual),
        response_time_hours=contract.response_time_hours, resolution_time_hours=contract.resolution_time_hours,
        coverage_days=tuple(contract.coverage_days or ()), coverage_start=contract.coverage_start,
        coverage_end=contract.coverage_end,
        price_increase_annual=contract.price_increase_annual, auto_renewal=contract.auto_renewal,
        terms_conditions=contract.terms_conditions or "")
    renewed_by = session.scalar(sa.select(ServiceContract.contract_number).where(
        ServiceContract.customer_id == customer_id, ServiceContract.start_date == start,
        ServiceContract.contract_status != ContractStatus.TERMINATED).limit(1))
    refusal = None
    if contract.contract_status not in RENEWABLE:
        refusal = (f"{contract.contract_number} is {contract.contract_status.value}: only an active or expired "
                   "contract is renewed.")
    elif renewed_by:
        refusal = f"{contract.contract_number} is renewed already, by {renewed_by}."
    return Renewal(contract, terms, terms.monthly_fee - contract.monthly_fee,
                   terms.hourly_rate_additional - contract.hourly_rate_additional, renewed_by, refusal)


def renew_contract(session, principal: policy.Principal, customer_id: int, contract_id: int, *,
                   expected_updated_at: datetime | None, today: date | None = None) -> ServiceContract:
    """Make the renewal shown by `renewal_of` (the old contract stays as it is, to its end); once.

    Two renewals at once are serialised by the customer's row lock: the second finds the first's
    contract and is refused.
    :raises Forbidden: only account managers and administrators. :raises NotFound: no such contract here.
    :raises Conflict: the contract changed since the preview, or is renewed already.
    :raises Invalid: it cannot be renewed (its status), or the new term breaks a rule (an overlap).
    """
    if not policy.may_manage_contracts(principal):
        raise Forbidden("Only account managers and administrators renew contracts.")
    _customer_locked(session, principal, customer_id)
    renewal = renewal_of(session, principal, customer_id, contract_id, lock=True)
    old = renewal.contract
    if expected_updated_at is None or old.updated_at != expected_updated_at:
        raise Conflict(f"Someone changed {old.contract_number} since you opened this page. Here is its renewal "
                       "as it is now; confirm again.")
    if renewal.renewed_by:
        raise Conflict(renewal.refusal)
    if renewal.refusal:
        raise Invalid(renewal.refusal)
    values, errors = _checked(session, customer_id, renewal.terms, None)
    if errors:
        raise Invalid(" ".join(errors.values()), None, errors)
    contract = ServiceContract(customer_id=customer_id, contract_number=next_number(
        session, "contract", values["start_date"]), **values)
    session.add(contract)
    session.flush()
    events.emit(session, principal, "contract.renewed", contract,
                {"contract_id": contract.contract_id, "contract_number": contract.contract_number,
                 "customer_id": customer_id, "renews_contract_id": old.contract_id,
                 "renews_contract_number": old.contract_number},
                changes={"renews": (None, old.contract_number),
                         "monthly_fee": (str(old.monthly_fee), str(contract.monthly_fee)),
                         "hourly_rate_additional": (str(old.hourly_rate_additional),
                                                    str(contract.hourly_rate_additional)),
                         "start_date": (None, str(contract.start_date)), "end_date": (None, str(contract.end_date))})
    return contract


def customer_contracts(session, principal: policy.Principal, customer_id: int):
    """The customer and its contracts, latest first; two statements.

    :raises Forbidden: only account managers and administrators. :raises NotFound: no such customer.
    """
    from portal.services.crm import visible_customer

    if not policy.may_manage_contracts(principal):
        raise Forbidden("Only account managers and administrators manage contracts.")
    customer = visible_customer(session, principal, customer_id)
    contracts = session.scalars(sa.select(ServiceContract).where(ServiceContract.customer_id == customer_id)
                                .order_by(ServiceContract.start_date.desc(), ServiceContract.contract_id.desc())).all()
    return customer, list(contracts)


def renewals_among(contracts: list[ServiceContract]) -> dict[int, str]:
    """{contract id: the number of the contract that renews it} within one customer's contracts (no query).

    renewal_of's rule: a contract not terminated that starts the day after this one ends.
    """
    starting = {c.start_date: c.contract_number for c in contracts if c.contract_status != ContractStatus.TERMINATED}
    return {c.contract_id: starting[c.end_date + timedelta(days=1)] for c in contracts
            if c.end_date + timedelta(days=1) in starting}
