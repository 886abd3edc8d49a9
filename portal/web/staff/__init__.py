"""The staff workspace: home and people (/staff), the ticket queue, timesheets and approvals, projects."""

from portal.web.staff import home, integrations, projects, tickets, time

blueprints = (home.bp, tickets.bp, time.bp, projects.bp, integrations.bp)
