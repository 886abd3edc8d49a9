"""The data model: the ten seed tables (with the errata of shared/DESIGN.md) and the portal's own."""

from portal.models.accounts import (
    Account,
    AuthToken,
    LoginAttempt,
    LoginSession,
    PasswordResetRequest,
    PortalSetting,
)
from portal.models.api import (
    ApiClient,
    ApiIdempotencyKey,
    ApiRateWindow,
    ApiToken,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from portal.models.audit import AuditEvent
from portal.models.base import (
    AccountStatus,
    ActorType,
    ApprovalStatus,
    Base,
    CommunicationPreference,
    CompanySize,
    ContractStatus,
    EmployeeRole,
    EmploymentStatus,
    InvoiceStatus,
    LineItemType,
    PhaseStatus,
    ProjectStatus,
    ServiceTier,
    TicketCategory,
    TicketPriority,
    TicketStatus,
    WorkCategory,
)
from portal.models.contracts import ContractExpiryNotice, ServiceContract
from portal.models.customers import Contact, Customer
from portal.models.employees import Employee
from portal.models.invoices import (
    Invoice,
    InvoiceDocument,
    InvoiceLineItem,
    InvoiceRun,
    InvoiceRunItem,
    Payment,
)
from portal.models.mail import Holiday, InboundMail, OutboundMessage
from portal.models.projects import Project, ProjectPhase
from portal.models.reports import ReportTimeMonth, ReportUnbilled, ReportUninvoicedMonth
from portal.models.tickets import SupportTicket, TicketAttachment, TicketComment, TicketStatusChange
from portal.models.time_entries import SUPPORT_WORK, PendingTimeTotal, TimeEntry

__all__ = [
    "PendingTimeTotal", "ReportTimeMonth", "SUPPORT_WORK",
    "ReportUnbilled", "ReportUninvoicedMonth",
    "ApiClient", "ApiIdempotencyKey", "ApiRateWindow", "ApiToken", "WebhookAttempt", "WebhookDelivery",
    "WebhookSubscription",
    "Account", "AccountStatus", "AuthToken", "LoginAttempt", "LoginSession", "PasswordResetRequest",
    "PortalSetting", "ActorType", "ApprovalStatus", "AuditEvent", "Base",
    "CommunicationPreference", "CompanySize", "Contact", "ContractExpiryNotice", "ContractStatus", "Customer",
    "Employee",
    "EmployeeRole", "EmploymentStatus", "Invoice", "InvoiceLineItem", "InvoiceStatus",
    "LineItemType", "PhaseStatus", "Project", "ProjectPhase", "ProjectStatus", "ServiceContract",
    "ServiceTier", "SupportTicket", "TicketCategory", "TicketComment", "TicketPriority",
    "TicketAttachment", "TicketStatus", "TicketStatusChange", "TimeEntry", "WorkCategory",
    "InvoiceDocument", "InvoiceRun", "InvoiceRunItem", "Payment",
    "Holiday", "InboundMail", "OutboundMessage",
]
