"""The customer portal (/portal): what a contact sees. One blueprint, a module per area:
home and tickets, invoices, projects, account (contract usage and profile)."""

from portal.web.portal import account, invoices, projects, tickets  # noqa: F401  (their routes)
from portal.web.portal.blueprint import bp

__all__ = ["bp"]
