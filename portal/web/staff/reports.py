"""The owner's reports (/staff/reports): the index, a page per report (filters in the URL, summary,
chart, table in pages) and its CSV (exactly the table, every page). The rows come from
services/reports, which the API's /api/reports/<name> calls too."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, make_response, request

from portal.extensions import db
from portal.services import clock, policy, reports
from portal.web.errors import error_page
from portal.web.rendering import render
from portal.web.security import current_principal, require

bp = Blueprint("reports", __name__, url_prefix="/staff/reports")


def recent_reports() -> reports.RecentReports:
    """This app's reports computed within REPORT_CACHE_SECONDS (one per process)."""
    recent = current_app.extensions.get("recent_reports")
    if recent is None:
        recent = current_app.extensions["recent_reports"] = reports.RecentReports(
            current_app.config.get("REPORT_CACHE_SECONDS", 60))
    return recent


def _computed_at(value) -> datetime | None:
    """The `at` of a page's paging and CSV links: when the report they come from was computed."""
    try:
        at = datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None
    return at if at is None or at.tzinfo is not None else at.replace(tzinfo=UTC)


def _run(name: str):
    """The report for this request: recomputed when the URL asks (`fresh=1`), else as recently computed,
    never older than the page its link came from (`at`: another process may keep an older one)."""
    return reports.run(db.session, current_principal(), name, request.args, clock.today(),
                       recent=recent_reports(), fresh=request.args.get("fresh") == "1",
                       not_before=_computed_at(request.args.get("at")))


def endpoint_of(name: str) -> str:
    """"budget-burn" -> "budget_burn": the page's endpoint (reports.budget_burn; its CSV reports.budget_burn_csv)."""
    return name.replace("-", "_")


@bp.get("/")
@require(policy.may_read_any_report)
def index():
    return render("staff/reports/index.html", modules=reports.available(current_principal()),
                  endpoint_of=endpoint_of)


def _filters(module, values: dict, error=None) -> list[dict]:
    """The report's filters as the page shows them: name, label, kind, hint, value, choices, error."""
    choices = {"stage": [("", "Every stage")] + [(s, s) for s in getattr(module, "STAGES", ())],
               "over": list(getattr(module, "OVER_CHOICES", ()))}
    shown = []
    for name, label, kind, hint in module.FILTERS:
        value = values.get(name)
        if kind == "choice" and name == "over":
            value = "1" if value is True or value == "1" else ""
        shown.append({"name": name, "label": label, "kind": kind, "hint": hint,
                      "value": "" if value is None else (value.isoformat() if hasattr(value, "isoformat") else value),
                      "choices": choices.get(name, []),
                      "error": (error.errors.get(name) if error is not None else None)})
    return shown


def _show(name: str, error=None):
    module = reports.REPORTS[name]
    report = None
    if error is None:
        report = _run(name)
        values = report.parameters
    else:
        values = {key: request.args.get(key) for key, *_ in module.FILTERS}
    rows, page, pages = report.page(request.args.get("page", 1, type=int) or 1) if report else ([], 1, 1)
    return render("staff/reports/report.html", module=module, report=report, rows=rows, page=page, pages=pages,
                  filters=_filters(module, values, error), error=error, endpoint=endpoint_of(name),
                  args={**{key: value for key, value in request.args.items() if key not in ("page", "fresh", "at")},
                        **({"at": report.computed_at.isoformat()} if report and report.computed_at else {})},
                  kept_seconds=recent_reports().seconds, status=422 if error else 200)


def _csv(name: str):
    report = _run(name)
    response = make_response(report.csv())
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{report.as_of.isoformat()}.csv"'
    return response


def _register(name: str) -> None:
    check = lambda principal: policy.may_read_report(principal, name)  # noqa: E731

    def page():
        return _show(name)

    def download():
        return _csv(name)

    page.__doc__ = f"The {name} report's page."
    download.__doc__ = f"The {name} report's table as CSV."
    shown_error = error_page(lambda error: _show(name, error), toast=False)
    bp.add_url_rule(f"/{name}", endpoint_of(name), require(check)(shown_error(page)), methods=["GET"])
    bp.add_url_rule(f"/{name}.csv", endpoint_of(name) + "_csv", require(check)(shown_error(download)),
                    methods=["GET"])


for _name in reports.NAMES:
    _register(_name)
