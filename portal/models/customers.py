"""Customers and their contacts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from portal.models.base import (
    AccountStatus,
    Base,
    CommunicationPreference,
    CompanySize,
    ServiceTier,
    created_at,
    touched_at,
    updated_at,
)

if TYPE_CHECKING:
    from portal.models.contracts import ServiceContract
    from portal.models.invoices import Invoice
    from portal.models.projects import Project
    from portal.models.tickets import SupportTicket

EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        sa.CheckConstraint(
            "account_health_score >= 0 AND account_health_score <= 1", name="chk_health_score"
        ),
        sa.CheckConstraint(f"primary_contact_email ~* '{EMAIL_PATTERN}'", name="chk_email_format"),
        # An IANA zone PostgreSQL knows (migration 0020's function): the SLA counts business hours in it.
        sa.CheckConstraint("portal_valid_time_zone(timezone)", name="chk_customer_time_zone"),
        sa.Index("idx_customers_company", "company_name"),
        sa.Index("idx_customers_tier_status", "service_tier", "account_status"),
        sa.Index("idx_customers_email", "primary_contact_email"),
        sa.Index("idx_customers_email_lower", sa.text("lower(primary_contact_email)")),  # who an address is (0024)
        sa.Index("idx_customers_updated", "updated_at", "customer_id"),  # the API's lists and updated_since
        sa.Index("idx_customers_account_manager", "account_manager_id"),  # the staff list's filter (0022_crm)
    )

    customer_id: Mapped[int] = mapped_column(primary_key=True)
    company_name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    industry: Mapped[str | None] = mapped_column(sa.String(100))
    company_size: Mapped[CompanySize] = mapped_column(server_default=CompanySize.SMALL.value)
    tax_id: Mapped[str | None] = mapped_column(sa.String(20))
    primary_contact_email: Mapped[str | None] = mapped_column(sa.String(255))
    service_tier: Mapped[ServiceTier] = mapped_column(server_default=ServiceTier.BREAKFIX.value)
    account_status: Mapped[AccountStatus] = mapped_column(server_default=AccountStatus.PROSPECT.value)
    account_health_score: Mapped[Decimal] = mapped_column(sa.Numeric(3, 2), server_default="0.75")
    billing_address: Mapped[str | None] = mapped_column(sa.Text)
    service_address: Mapped[str | None] = mapped_column(sa.Text)
    timezone: Mapped[str] = mapped_column(sa.String(50), server_default="America/Denver")
    # The employee who looks after the customer (an account manager or admin); None: nobody yet.
    account_manager_id: Mapped[int | None] = mapped_column(sa.ForeignKey("employees.employee_id"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="customer", order_by="Contact.contact_id", passive_deletes=True
    )
    # passive_deletes: the database decides what deleting a customer does (its foreign keys
    # refuse while contracts, tickets, projects or invoices exist); the ORM never nulls them.
    contracts: Mapped[list[ServiceContract]] = relationship(
        back_populates="customer", order_by="ServiceContract.start_date", passive_deletes="all"
    )
    tickets: WriteOnlyMapped[SupportTicket] = relationship(back_populates="customer", passive_deletes="all")
    projects: WriteOnlyMapped[Project] = relationship(back_populates="customer", passive_deletes="all")
    invoices: WriteOnlyMapped[Invoice] = relationship(back_populates="customer", passive_deletes="all")

    def __repr__(self) -> str:
        return f"<Customer {self.customer_id} {self.company_name!r}>"


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        sa.CheckConstraint(f"email ~* '{EMAIL_PATTERN}'", name="chk_email_format"),
        sa.Index("idx_contacts_customer", "customer_id"),
        sa.Index("idx_contacts_email", "email"),
        sa.Index("idx_contacts_email_lower", sa.text("lower(email)")),  # who an address is (0024)
        sa.Index(
            "idx_contacts_primary",
            "customer_id",
            "is_primary_contact",
            postgresql_where=sa.text("is_primary_contact = TRUE"),
        ),
        sa.Index("idx_contacts_updated", "updated_at", "contact_id"),  # the API's lists and updated_since
    )

    contact_id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("customers.customer_id", ondelete="CASCADE")
    )
    first_name: Mapped[str] = mapped_column(sa.String(100))
    last_name: Mapped[str] = mapped_column(sa.String(100))
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    mobile: Mapped[str | None] = mapped_column(sa.String(20))
    title: Mapped[str | None] = mapped_column(sa.String(100))
    department: Mapped[str | None] = mapped_column(sa.String(100))
    is_primary_contact: Mapped[bool] = mapped_column(server_default=sa.false())
    is_billing_contact: Mapped[bool] = mapped_column(server_default=sa.false())
    can_create_tickets: Mapped[bool] = mapped_column(server_default=sa.true())
    can_approve_projects: Mapped[bool] = mapped_column(server_default=sa.false())
    communication_preference: Mapped[CommunicationPreference] = mapped_column(
        server_default=CommunicationPreference.EMAIL.value
    )
    last_login: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = touched_at()

    customer: Mapped[Customer] = relationship(back_populates="contacts")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def __repr__(self) -> str:
        return f"<Contact {self.contact_id} {self.email!r}>"
