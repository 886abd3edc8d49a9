"""The staff workspace: home and people (/staff), the ticket queue, timesheets and approvals, projects,
and the admins' System page."""

from portal.web.staff import home, integrations, projects, system, tickets, time

blueprints = (home.bp, tickets.bp, time.bp, projects.bp, system.bp, integrations.bp)
