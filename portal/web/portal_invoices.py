"""The customer portal's invoices pages (routes on the portal blueprint of portal.web.customer)."""

from __future__ import annotations

from portal.web.customer import bp  # noqa: F401
