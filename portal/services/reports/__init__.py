"""The owner's reports: the seed's seven business queries, corrected (DESIGN.md errata 7, 9, 10).

One module per report, each with NAME, TITLE, DESCRIPTION, FILTERS, COLUMNS and
`build(session, principal, args, today) -> Report` (rows, parameters, the business day it was
computed for). `run` is the one entry point: it asks the policy, so the pages, their CSV and the
API (`GET /api/reports/<name>`) answer the same rows to the same people.
"""

from __future__ import annotations

from datetime import date

from portal.services import clock, policy
from portal.services.errors import Forbidden, NotFound
from portal.services.reports import budget_burn, mrr, overdue, profitability, renewals, sla_compliance, utilization
from portal.services.reports.common import Report

MODULES = (mrr, renewals, utilization, sla_compliance, profitability, overdue, budget_burn)
REPORTS = {module.NAME: module for module in MODULES}
NAMES = tuple(REPORTS)


def available(principal: policy.Principal) -> list:
    """The report modules `principal` may read, in the index's order."""
    return [module for module in MODULES if policy.may_read_report(principal, module.NAME)]


def run(session, principal: policy.Principal, name: str, args=None, today: date | None = None) -> Report:
    """The report `name` with the parameters in `args` (a mapping of strings, as in a URL).

    :raises NotFound: no such report. :raises Forbidden: the principal may not read it.
    :raises Invalid: a parameter is out of range or malformed (named by its field).
    """
    module = REPORTS.get(name)
    if module is None:
        raise NotFound("No such report.")
    if not policy.may_read_report(principal, name):
        raise Forbidden("This report is not open to your role.")
    args = args or {}
    today = today or clock.today()
    return module.build(session, principal, args, today)
