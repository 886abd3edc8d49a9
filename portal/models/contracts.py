"""Service contracts: what a customer pays for and the SLA it buys."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, ContractStatus, ServiceTier, created_at, updated_at

if TYPE_CHECKING:
    from portal.models.customers import Customer


class ServiceContract(Base):
    __tablename__ = "service_contracts"
    __table_args__ = (
        sa.CheckConstraint("end_date > start_date", name="chk_contract_dates"),
        sa.CheckConstraint("monthly_fee >= 0", name="chk_monthly_fee"),
        sa.CheckConstraint("hourly_rate_additional > 0", name="chk_hourly_rate"),
        sa.CheckConstraint(
            "price_increase_annual >= 0 AND price_increase_annual <= 50", name="chk_price_increase"
        ),
        sa.CheckConstraint(
            "(coverage_days IS NULL AND coverage_start IS NULL AND coverage_end IS NULL)"
            " OR (cardinality(coverage_days) BETWEEN 1 AND 7 AND coverage_days <@ ARRAY[1,2,3,4,5,6,7]::smallint[]"
            " AND coverage_start IS NOT NULL AND coverage_end IS NOT NULL AND coverage_start < coverage_end)",
            name="chk_contract_coverage"),
        sa.Index("idx_contracts_customer", "customer_id"),
        sa.Index("idx_contracts_status_dates", "contract_status", "start_date", "end_date"),
        sa.Index(
            "idx_contracts_renewal",
            "end_date",
            "auto_renewal",
            postgresql_where=sa.text("auto_renewal = TRUE"),
        ),
        sa.Index("idx_contracts_updated", "updated_at", "contract_id"),  # the API's lists and updated_since
    )

    contract_id: Mapped[int] = mapped_column(primary_key=True)
    contract_number: Mapped[str] = mapped_column(sa.String(20), unique=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.customer_id"))
    service_tier: Mapped[ServiceTier]
    monthly_fee: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2), server_default=sa.text("0"))
    included_hours: Mapped[int] = mapped_column(server_default="0")
    hourly_rate_additional: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2), server_default="125.00")
    start_date: Mapped[date]
    end_date: Mapped[date]
    auto_renewal: Mapped[bool] = mapped_column(server_default=sa.true())
    price_increase_annual: Mapped[Decimal] = mapped_column(sa.Numeric(5, 2), server_default="3.00")
    response_time_hours: Mapped[int] = mapped_column(server_default="24")
    resolution_time_hours: Mapped[int] = mapped_column(server_default="72")
    contract_status: Mapped[ContractStatus] = mapped_column(server_default=ContractStatus.DRAFT.value)
    terms_conditions: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    # The hours the SLA counts (migration 0020), in the customer's time zone: no days = 24x7;
    # else ISO weekdays (1 Monday .. 7 Sunday) from coverage_start to coverage_end.
    coverage_days: Mapped[list[int] | None] = mapped_column(postgresql.ARRAY(sa.SmallInteger))
    coverage_start: Mapped[time | None] = mapped_column(sa.Time)
    coverage_end: Mapped[time | None] = mapped_column(sa.Time)

    customer: Mapped[Customer] = relationship(back_populates="contracts")

    def covers(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date

    def __repr__(self) -> str:
        return f"<ServiceContract {self.contract_number}>"


class ContractExpiryNotice(Base):
    """A "contract.expiring" stage (90, 60 or 30 days before `end_date`) already emitted for a contract."""

    __tablename__ = "contract_expiry_notices"
    __table_args__ = (sa.CheckConstraint("days_before IN (30, 60, 90)", name="chk_expiry_stage"),)

    contract_id: Mapped[int] = mapped_column(
        sa.ForeignKey("service_contracts.contract_id", ondelete="CASCADE"), primary_key=True)
    end_date: Mapped[date] = mapped_column(primary_key=True)
    days_before: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    emitted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
