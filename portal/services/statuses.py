"""The named sets of statuses and roles that rules share, so each word means one thing everywhere.

"Open" alone is ambiguous (the staff queue lists resolved tickets too, a customer's "open" does
not), so every set says what it holds.
"""

from __future__ import annotations

from portal.models import EmployeeRole, InvoiceStatus, ProjectStatus, TicketStatus

T = TicketStatus

# Not closed: what the staff queue lists (a resolved ticket still needs closing or may reopen).
TICKETS_NOT_CLOSED = (T.OPEN, T.ASSIGNED, T.IN_PROGRESS, T.WAITING_CUSTOMER, T.RESOLVED)
# Not yet resolved: work still to do. A customer's "open tickets", the home pages' counts.
TICKETS_UNRESOLVED = (T.OPEN, T.ASSIGNED, T.IN_PROGRESS, T.WAITING_CUSTOMER)
# Resolved or closed: the work is done (a resolved ticket can still be reopened by a reply).
TICKETS_DONE = (T.RESOLVED, T.CLOSED)

# Who works tickets (takes, answers, is assigned them): policy.may_work_tickets and assignment.
TICKET_WORKER_ROLES = (EmployeeRole.TECHNICIAN, EmployeeRole.SENIOR_TECHNICIAN, EmployeeRole.ADMIN)
# Who may manage a project (and so be named its manager).
PROJECT_MANAGER_ROLES = (EmployeeRole.PROJECT_MANAGER, EmployeeRole.ADMIN)

# Projects still going on: time can be logged, sponsors still decide phases.
PROJECTS_OPEN = (ProjectStatus.PLANNING, ProjectStatus.ACTIVE, ProjectStatus.ON_HOLD)
PROJECTS_ENDED = (ProjectStatus.COMPLETED, ProjectStatus.CANCELLED)

# What a customer may see of its invoices: everything but drafts.
INVOICES_ISSUED = (InvoiceStatus.SENT, InvoiceStatus.PAID, InvoiceStatus.OVERDUE, InvoiceStatus.CANCELLED)
# Still to be paid, in part or in full.
INVOICES_DUE = (InvoiceStatus.SENT, InvoiceStatus.OVERDUE)


def is_unresolved(column):
    """`column IN ('open', 'assigned', 'in_progress', 'waiting_customer')` with the values written
    into the SQL (not bound): the partial index idx_tickets_customer_open (migration 0021) has the
    same predicate, and the planner proves it from literal values even in a prepared statement."""
    import sqlalchemy as sa

    return column.in_(sa.bindparam("unresolved_statuses", list(TICKETS_UNRESOLVED), expanding=True,
                                   literal_execute=True, type_=column.type))


# A count that stops here: a very large company's history is never counted row by row (issue 14);
# lists then say "10,000+" and page up to it.
COUNT_CAP = 10_000


def bounded_count(session, query_from_where) -> tuple[int, bool]:
    """(count, more): the rows of `query_from_where` (a SELECT of one column) counted up to COUNT_CAP,
    and whether there are more."""
    import sqlalchemy as sa

    n = session.scalar(sa.select(sa.func.count()).select_from(query_from_where.limit(COUNT_CAP + 1).subquery()))
    return min(n, COUNT_CAP), n > COUNT_CAP
