"""What the database holds, for the demo's home page until the portals land. A fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from portal.models import (
    Account,
    Contact,
    ContractStatus,
    Customer,
    Employee,
    Invoice,
    InvoiceLineItem,
    InvoiceStatus,
    Project,
    ProjectPhase,
    ServiceContract,
    SupportTicket,
    TicketComment,
    TicketStatus,
    TimeEntry,
)

COUNTED = [
    ("Customers", Customer),
    ("Contacts", Contact),
    ("Employees", Employee),
    ("Service contracts", ServiceContract),
    ("Support tickets", SupportTicket),
    ("Ticket comments", TicketComment),
    ("Projects", Project),
    ("Project phases", ProjectPhase),
    ("Time entries", TimeEntry),
    ("Invoices", Invoice),
    ("Invoice line items", InvoiceLineItem),
    ("Logins", Account),
]


@dataclass(frozen=True)
class CustomerRow:
    customer_id: int
    company_name: str
    industry: str | None
    service_tier: str
    account_status: str
    contract_number: str | None
    contract_end: date | None
    days_left: int | None
    monthly_fee: Decimal | None
    open_tickets: int


@dataclass(frozen=True)
class Overview:
    counts: list[tuple[str, int]]
    customers: list[CustomerRow]
    tickets_by_status: list[tuple[str, int]]
    invoices_by_status: list[tuple[str, int, Decimal]]

    @property
    def is_empty(self) -> bool:
        return all(count == 0 for _, count in self.counts)


def database_overview(session, today: date) -> Overview:
    """Row counts of every table, customers with their active contract, tickets and invoices by status."""
    count_query = sa.select(
        *[sa.select(sa.func.count()).select_from(model).scalar_subquery() for _, model in COUNTED]
    )
    counts = list(zip([label for label, _ in COUNTED], session.execute(count_query).one()))

    active_contract = (
        sa.select(ServiceContract)
        .where(
            ServiceContract.customer_id == Customer.customer_id,
            ServiceContract.contract_status == ContractStatus.ACTIVE,
            ServiceContract.start_date <= today,
            ServiceContract.end_date >= today,
        )
        .order_by(ServiceContract.end_date.desc())
        .limit(1)
        .lateral("active_contract")
    )
    open_tickets = (
        sa.select(sa.func.count())
        .where(
            SupportTicket.customer_id == Customer.customer_id,
            SupportTicket.status.not_in([TicketStatus.RESOLVED, TicketStatus.CLOSED]),
        )
        .scalar_subquery()
    )
    rows = session.execute(
        sa.select(
            Customer.customer_id,
            Customer.company_name,
            Customer.industry,
            Customer.service_tier,
            Customer.account_status,
            active_contract.c.contract_number,
            active_contract.c.end_date,
            active_contract.c.monthly_fee,
            open_tickets,
        )
        .outerjoin(active_contract, sa.true())
        .order_by(Customer.company_name)
    ).all()
    customers = [
        CustomerRow(
            customer_id=r[0], company_name=r[1], industry=r[2], service_tier=r[3].value,
            account_status=r[4].value, contract_number=r[5], contract_end=r[6],
            days_left=(r[6] - today).days if r[6] else None, monthly_fee=r[7], open_tickets=r[8],
        )
        for r in rows
    ]

    by_status = dict(
        session.execute(
            sa.select(SupportTicket.status, sa.func.count()).group_by(SupportTicket.status)
        ).all()
    )
    tickets_by_status = [(status.value, by_status.get(status, 0)) for status in TicketStatus]

    invoice_rows = {
        status: (count, total)
        for status, count, total in session.execute(
            sa.select(Invoice.invoice_status, sa.func.count(), sa.func.coalesce(sa.func.sum(Invoice.total_amount), 0))
            .group_by(Invoice.invoice_status)
        ).all()
    }
    invoices_by_status = [
        (status.value, *invoice_rows.get(status, (0, Decimal("0.00")))) for status in InvoiceStatus
    ]
    return Overview(counts, customers, tickets_by_status, invoices_by_status)
