"""Invoices and their line items."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, InvoiceStatus, LineItemType, created_at, touched_at

if TYPE_CHECKING:
    from portal.models.contracts import ServiceContract
    from portal.models.customers import Customer
    from portal.models.time_entries import TimeEntry


class Invoice(Base):
    """An invoice. `subtotal`, `tax_amount` and `total_amount` are kept by database triggers."""

    __tablename__ = "invoices"
    __table_args__ = (
        sa.CheckConstraint(
            "subtotal >= 0 AND tax_amount >= 0 AND total_amount = subtotal + tax_amount"
            " AND paid_amount >= 0",
            name="chk_invoice_amounts",
        ),
        sa.CheckConstraint("due_date >= invoice_date", name="chk_invoice_dates"),
        sa.CheckConstraint("tax_rate >= 0 AND tax_rate < 1", name="chk_tax_rate"),
        sa.CheckConstraint("period_end >= period_start", name="chk_invoice_period"),
        sa.Index("idx_invoices_customer", "customer_id"),
        sa.Index("idx_invoices_status", "invoice_status"),
        sa.Index("idx_invoices_dates", "invoice_date", "due_date"),
        sa.Index(
            "idx_invoices_overdue",
            "due_date",
            "invoice_status",
            postgresql_where=sa.text("invoice_status IN ('sent', 'overdue')"),
        ),
        sa.Index("idx_invoices_updated", "updated_at", "invoice_id"),  # the API's lists and updated_since
        # The staff list, newest first, and its bounded count; what is owed, from the index alone (0023).
        sa.Index("idx_invoices_newest", "invoice_date", "invoice_id"),
        sa.Index("idx_invoices_owed", "customer_id",
                 postgresql_include=["total_amount", "paid_amount", "invoice_date", "due_date", "invoice_status"],
                 postgresql_where=sa.text("invoice_status IN ('sent', 'overdue')")),
    )

    invoice_id: Mapped[int] = mapped_column(primary_key=True)
    invoice_number: Mapped[str] = mapped_column(sa.String(20), unique=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.customer_id"))
    contract_id: Mapped[int | None] = mapped_column(sa.ForeignKey("service_contracts.contract_id"))
    invoice_date: Mapped[date] = mapped_column(server_default=sa.func.current_date())
    due_date: Mapped[date]
    subtotal: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), server_default=sa.text("0"))
    # Errata 6: tax is a rate on the invoice; the trigger derives tax_amount and total_amount.
    tax_rate: Mapped[Decimal] = mapped_column(sa.Numeric(6, 4), server_default=sa.text("0"))
    tax_amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), server_default=sa.text("0"))
    total_amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), server_default=sa.text("0"))
    invoice_status: Mapped[InvoiceStatus] = mapped_column(server_default=InvoiceStatus.DRAFT.value)
    payment_terms: Mapped[str] = mapped_column(sa.String(100), server_default="Net 30")
    sent_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    paid_amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), server_default=sa.text("0"))
    # The billing period the invoice was made for (issue 11); None only on invoices made before it.
    period_start: Mapped[date | None]
    period_end: Mapped[date | None]
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = touched_at()

    customer: Mapped[Customer] = relationship(back_populates="invoices")
    contract: Mapped[ServiceContract | None] = relationship()
    line_items: Mapped[list[InvoiceLineItem]] = relationship(
        back_populates="invoice", order_by="InvoiceLineItem.line_item_id", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Invoice {self.invoice_number} {self.invoice_status}>"


class InvoiceLineItem(Base):
    __tablename__ = "invoice_line_items"
    __table_args__ = (
        sa.CheckConstraint(
            "quantity > 0 AND unit_price >= 0 AND line_total = quantity * unit_price",
            name="chk_line_amounts",
        ),
        sa.Index("idx_line_items_invoice", "invoice_id"),
        # Errata 11: a time entry is billed at most once (the seed's 1:1), even by two runs at once;
        # a cancelled invoice's lines are not live, so cancelling frees its entries.
        sa.Index(
            "idx_line_items_time_entry",
            "time_entry_id",
            unique=True,
            postgresql_where=sa.text("time_entry_id IS NOT NULL AND live"),
        ),
        # A contract month's fee is billed once, by the database (issue 11).
        sa.Index("idx_line_items_fee_month", "contract_id", "billing_month", unique=True,
                 postgresql_where=sa.text("item_type = 'monthly_fee' AND live")),
        sa.Index("idx_line_items_contract_month", "contract_id", "billing_month",
                 postgresql_where=sa.text("contract_id IS NOT NULL AND live")),
        sa.CheckConstraint("billing_month IS NULL OR extract(day FROM billing_month) = 1",
                           name="chk_line_billing_month"),
        sa.CheckConstraint("included_hours >= 0", name="chk_line_included_hours"),
    )

    line_item_id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.invoice_id", ondelete="CASCADE"))
    time_entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("time_entries.entry_id"))
    description: Mapped[str] = mapped_column(sa.String(500))
    quantity: Mapped[Decimal] = mapped_column(sa.Numeric(8, 2), server_default=sa.text("1"))
    unit_price: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))
    line_total: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    item_type: Mapped[LineItemType]
    # Kept by triggers: false once the invoice is cancelled (the line stays, for the record).
    live: Mapped[bool] = mapped_column(server_default=sa.true())
    # The contract month the line bills: its fee, or the allowance its hours used (included_hours).
    contract_id: Mapped[int | None] = mapped_column(sa.ForeignKey("service_contracts.contract_id"))
    billing_month: Mapped[date | None]
    included_hours: Mapped[Decimal] = mapped_column(sa.Numeric(8, 2), server_default=sa.text("0"))

    invoice: Mapped[Invoice] = relationship(back_populates="line_items")
    time_entry: Mapped[TimeEntry | None] = relationship()

    @property
    def signed_total(self) -> Decimal:
        """What the line adds to the invoice: discounts subtract (errata 6)."""
        return -self.line_total if self.item_type == LineItemType.DISCOUNT else self.line_total


class Payment(Base):
    """A payment received for an invoice; their sum is the invoice's paid_amount."""

    __tablename__ = "payments"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="chk_payment_amount"),
        sa.CheckConstraint("method IN ('bank_transfer', 'card', 'check', 'cash', 'other')", name="chk_payment_method"),
        sa.Index("idx_payments_invoice", "invoice_id"),
        sa.Index("idx_payments_date", "payment_date", "payment_id"),
    )

    payment_id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.invoice_id"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.customer_id"))
    payment_date: Mapped[date]
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    method: Mapped[str] = mapped_column(sa.String(20))
    reference: Mapped[str] = mapped_column(sa.String(100), server_default="")
    recorded_by_employee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("employees.employee_id"))
    created_at: Mapped[datetime] = created_at()


class InvoiceDocument(Base):
    """The PDF made when the invoice was sent: what the customer received, never changed (a trigger refuses)."""

    __tablename__ = "invoice_documents"

    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.invoice_id"), primary_key=True)
    pdf: Mapped[bytes] = mapped_column(sa.LargeBinary)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    rendered_at: Mapped[datetime] = created_at()


class InvoiceRun(Base):
    """A month-end run: every active customer billed for a period, by the worker, with its progress."""

    __tablename__ = "invoice_runs"
    __table_args__ = (
        sa.CheckConstraint("status IN ('running', 'done')", name="chk_run_status"),
        sa.CheckConstraint("period_end >= period_start", name="chk_run_period"),
        sa.CheckConstraint("lanes BETWEEN 1 AND 16", name="chk_run_lanes"),
        sa.Index("idx_invoice_runs_one_at_a_time", "period_start", "period_end", unique=True,
                 postgresql_where=sa.text("status = 'running'")),
        sa.Index("idx_invoice_runs_started", "started_at"),
    )

    run_id: Mapped[int] = mapped_column(primary_key=True)
    period_start: Mapped[date]
    period_end: Mapped[date]
    status: Mapped[str] = mapped_column(sa.String(20), server_default="running")
    started_by: Mapped[str] = mapped_column(sa.String(255))
    total: Mapped[int] = mapped_column(server_default="0")
    processed: Mapped[int] = mapped_column(server_default="0")
    made: Mapped[int] = mapped_column(server_default="0")
    nothing: Mapped[int] = mapped_column(server_default="0")
    failed: Mapped[int] = mapped_column(server_default="0")
    lanes: Mapped[int] = mapped_column(sa.SmallInteger, server_default="4")
    lanes_done: Mapped[int] = mapped_column(server_default="0")  # a bit per lane that has billed all its customers
    started_at: Mapped[datetime] = created_at()
    finished_at: Mapped[datetime | None]


class InvoiceRunItem(Base):
    """What a run did for one customer: made an invoice, found nothing to bill, or failed (why)."""

    __tablename__ = "invoice_run_items"
    __table_args__ = (
        sa.CheckConstraint("outcome IN ('made', 'nothing', 'failed')", name="chk_run_outcome"),
        sa.Index("idx_invoice_run_items_outcome", "run_id", "outcome", "customer_id"),
    )

    run_id: Mapped[int] = mapped_column(sa.ForeignKey("invoice_runs.run_id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.customer_id"), primary_key=True)
    outcome: Mapped[str] = mapped_column(sa.String(20))
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.invoice_id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(sa.Text)
