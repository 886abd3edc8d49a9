"""Declarative base, naming conventions and the enumerated types of the data model.

Constraint names follow PostgreSQL's own defaults (`customers_pkey`, `contacts_email_key`,
`contacts_customer_id_fkey`), which is what the seed's SQL produces; CHECK constraints and
indexes carry the seed's explicit `chk_*` / `idx_*` names.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ck": "%(constraint_name)s",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


def pg_enum(enum_class: type[enum.Enum], name: str) -> sa.Enum:
    """A named PostgreSQL enum type storing the members' values (not their Python names)."""
    return sa.Enum(
        enum_class,
        name=name,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class ServiceTier(enum.StrEnum):
    BREAKFIX = "breakfix"
    ESSENTIAL = "essential"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


class CompanySize(enum.StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class AccountStatus(enum.StrEnum):
    PROSPECT = "prospect"
    ACTIVE = "active"
    INACTIVE = "inactive"
    SUSPENDED = "suspended"


class CommunicationPreference(enum.StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    SMS = "sms"


class ContractStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    EXPIRED = "expired"
    TERMINATED = "terminated"


class EmploymentStatus(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    TERMINATED = "terminated"


class EmployeeRole(enum.StrEnum):
    TECHNICIAN = "technician"
    SENIOR_TECHNICIAN = "senior_technician"
    PROJECT_MANAGER = "project_manager"
    ACCOUNT_MANAGER = "account_manager"
    ADMIN = "admin"


class TicketCategory(enum.StrEnum):
    HARDWARE = "hardware"
    SOFTWARE = "software"
    NETWORK = "network"
    SECURITY = "security"
    EMAIL = "email"
    BACKUP = "backup"
    OTHER = "other"


class TicketPriority(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class TicketStatus(enum.StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    WAITING_CUSTOMER = "waiting_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class ProjectStatus(enum.StrEnum):
    PLANNING = "planning"
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class PhaseStatus(enum.StrEnum):
    PLANNING = "planning"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class WorkCategory(enum.StrEnum):
    SUPPORT = "support"
    PROJECT = "project"
    CONSULTATION = "consultation"
    TRAINING = "training"
    TRAVEL = "travel"


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class InvoiceStatus(enum.StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    PAID = "paid"
    OVERDUE = "overdue"
    CANCELLED = "cancelled"


class LineItemType(enum.StrEnum):
    HOURLY_WORK = "hourly_work"
    MONTHLY_FEE = "monthly_fee"
    EXPENSE = "expense"
    DISCOUNT = "discount"


class ActorType(enum.StrEnum):
    EMPLOYEE = "employee"
    CONTACT = "contact"
    API_CLIENT = "api_client"
    SYSTEM = "system"


# The PostgreSQL type name of every enumerated column (seed names, errata 1).
ENUM_TYPES: dict[str, type[enum.Enum]] = {
    "service_tier": ServiceTier,
    "company_size": CompanySize,
    "account_status": AccountStatus,
    "communication_preference": CommunicationPreference,
    "contract_status": ContractStatus,
    "employment_status": EmploymentStatus,
    "employee_role": EmployeeRole,
    "ticket_category": TicketCategory,
    "ticket_priority": TicketPriority,
    "ticket_status": TicketStatus,
    "project_status": ProjectStatus,
    "phase_status": PhaseStatus,
    "work_category": WorkCategory,
    "approval_status": ApprovalStatus,
    "invoice_status": InvoiceStatus,
    "line_item_type": LineItemType,
    "actor_type": ActorType,
}

PG_ENUMS: dict[type[enum.Enum], sa.Enum] = {cls: pg_enum(cls, name) for name, cls in ENUM_TYPES.items()}


class Base(DeclarativeBase):
    # The map sits on the registry, not the class: Flask-SQLAlchemy subclasses this base, and
    # SQLAlchemy 2.1 refuses a subclass that inherits both a registry and a type_annotation_map.
    registry = sa.orm.registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={
            datetime: sa.DateTime(timezone=True),
            date: sa.Date(),
            time: sa.Time(),
            Decimal: sa.Numeric(12, 2),
            str: sa.Text(),
            **PG_ENUMS,
        },
    )


def created_at() -> sa.orm.MappedColumn:
    """`created_at timestamptz NOT NULL DEFAULT now()`, as every table has."""
    return sa.orm.mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def updated_at() -> sa.orm.MappedColumn:
    """`updated_at`, kept current by the ORM on every UPDATE it issues."""
    return sa.orm.mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now(), nullable=False
    )


def touched_at() -> sa.orm.MappedColumn:
    """`updated_at` kept by the trigger `portal_touch_updated_at` (migration 0013) on every UPDATE,
    including those of other triggers and of contacts' requests, which may not write the column."""
    return sa.orm.mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now(),
                                server_onupdate=sa.FetchedValue(), nullable=False)


# Human-facing numbers (TKT-2026-000123 ...) come from these, never from max()+1.
TICKET_NUMBER_SEQ = sa.Sequence("ticket_number_seq", metadata=Base.metadata)
INVOICE_NUMBER_SEQ = sa.Sequence("invoice_number_seq", metadata=Base.metadata)
CONTRACT_NUMBER_SEQ = sa.Sequence("contract_number_seq", metadata=Base.metadata)
PROJECT_NUMBER_SEQ = sa.Sequence("project_number_seq", metadata=Base.metadata)


def in_our_schema(name, type_, parent_names) -> bool:
    """Autogenerate's filter (Alembic `include_name`): procrastinate's job tables are not our models."""
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))
