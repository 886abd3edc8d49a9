"""Service contracts: the renewal notices the worker sends before a contract ends."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.models import ContractExpiryNotice, ContractStatus, ServiceContract
from portal.services import events, policy
from portal.services.errors import Forbidden

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
