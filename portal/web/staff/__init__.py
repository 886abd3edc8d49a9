"""The staff workspace: home and people (/staff), the ticket queue, timesheets and approvals, projects,
and the admins' System page, API clients and webhooks, and the admin area (/staff/admin: employees,
the audit log), and the owner's reports (/staff/reports)."""

from portal.web.staff import (admin, customers, home, integrations, invoices, mail, projects, reports, system,
                               tickets, time)

blueprints = (home.bp, tickets.bp, time.bp, projects.bp, system.bp, integrations.bp, admin.bp, invoices.bp,
              customers.bp, mail.bp, reports.bp)
