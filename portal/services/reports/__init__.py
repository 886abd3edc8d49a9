"""The owner's reports: the seed's seven business queries, corrected (DESIGN.md errata 7, 9, 10).

One module per report, each with NAME, TITLE, DESCRIPTION, FILTERS, COLUMNS and
`build(session, principal, args, today) -> Report` (rows, parameters, the business day it was
computed for). `run` is the one entry point: it asks the policy, so the pages, their CSV and the
API (`GET /api/reports/<name>`) answer the same rows to the same people.

`RecentReports` keeps what `run` computed for a short while (REPORT_CACHE_SECONDS, a minute by
default), per person, report, parameters and business day, in each app process: the pages and their
CSV read it, so paging through a report or downloading its CSV within the minute computes it once per
process. The page says when its figures were computed and offers to recompute them; the API always
computes.
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime

from cachetools import TTLCache

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


class RecentReports:
    """Reports computed in the last `seconds`, in this process. A report is found again only by the same
    principal (so a project manager's own budget burn is never shown to anyone else), with the same
    parameters, for the same business day, and not if it was computed before `not_before` (the moment
    a page the person is paging through was computed: another process may hold an older one).
    At most `rows` table rows are kept in all, the least recently read report dropped first; `seconds`
    0 keeps nothing."""

    def __init__(self, seconds: float, rows: int = 100_000, timer=time.monotonic):
        self.seconds = seconds
        self._kept = (TTLCache(maxsize=rows, ttl=seconds, timer=timer, getsizeof=lambda report: len(report.rows) + 1)
                      if seconds > 0 else None)
        self._lock = threading.Lock()  # TTLCache is not safe across threads (the dev server's)

    def get(self, key, not_before: datetime | None = None):
        if self._kept is None:
            return None
        with self._lock:
            self._kept.expire()  # frees the memory of expired reports now, not at the next write
            report = self._kept.get(key)
        if report is not None and not_before is not None and report.computed_at < not_before:
            return None
        return report

    def put(self, key, report: Report) -> None:
        if self._kept is None or len(report.rows) + 1 > self._kept.maxsize:
            return  # larger than everything kept together: computed each time
        with self._lock:
            self._kept[key] = report


def run(session, principal: policy.Principal, name: str, args=None, today: date | None = None, *,
        recent: RecentReports | None = None, fresh: bool = False, not_before: datetime | None = None) -> Report:
    """The report `name` with the parameters in `args` (a mapping of strings, as in a URL); with `recent`,
    the one computed for the same principal, parameters and day within its seconds (and not before
    `not_before`), unless `fresh`.

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
    key = (name, principal, tuple(str(args.get(field) or "") for field, *_ in module.FILTERS), today)
    if recent is not None and not fresh:
        report = recent.get(key, not_before)
        if report is not None:
            return report
    report = module.build(session, principal, args, today)
    report.computed_at = clock.now()
    if recent is not None:
        recent.put(key, report)
    return report
