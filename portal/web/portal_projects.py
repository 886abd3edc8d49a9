"""The customer portal's projects pages (routes on the portal blueprint of portal.web.customer).

Sponsors and primary contacts see their company's projects; sponsors approve or reject the
phases the project manager sends them. A decision answers in place for htmx (the phase and a
toast) and with a redirect to the project for a plain form.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, redirect, request, url_for

from portal.extensions import db
from portal.services import policy
from portal.services.errors import Conflict, DomainError, Forbidden, NotFound
from portal.services.projects import customer_project, customer_projects, decide_phase
from portal.web.customer import bp
from portal.web.rendering import is_htmx, render, with_toast
from portal.web.security import client_ip, current_principal, require


def _now() -> datetime:
    return datetime.now(UTC)


@bp.get("/projects")
@require(policy.may_see_company_projects)
def projects():
    listing = customer_projects(db.session, current_principal(), request.args.get("page", 1, type=int))
    return render("portal/projects/list.html", block="project_list", listing=listing,
                  may_decide=policy.may_decide_phase(current_principal()))


def _project(project_id: int):
    try:
        return customer_project(db.session, current_principal(), project_id)
    except NotFound:
        abort(404)


def _project_page(project_id: int, *, error: DomainError | None = None, error_phase: int | None = None,
                  reason: str = "", status: int = 200):
    return render("portal/projects/show.html", view=_project(project_id),
                  may_decide=policy.may_decide_phase(current_principal()),
                  error=error, error_phase=error_phase, reason=reason, status=status)


@bp.get("/projects/<int:project_id>")
@require(policy.may_see_company_projects)
def show_project(project_id: int):
    return _project_page(project_id)


def _phase_answer(project_id: int, phase_id: int, *, error: DomainError | None = None, reason: str = "",
                  status: int = 200):
    """The phase's card (and, out of band, the project's "awaiting your approval" line) for htmx."""
    view = _project(project_id)
    item = next((p for p in view.phases if p.phase.phase_id == phase_id), None)
    if item is None:
        abort(404)
    return render("portal/projects/_phase_answer.html", view=view, item=item,
                  may_decide=policy.may_decide_phase(current_principal()),
                  error=error, error_phase=phase_id, reason=reason, status=status)


def _decide(project_id: int, phase_id: int, approve: bool):
    principal = current_principal()
    reason = request.form.get("reason", "")
    try:
        decision = decide_phase(db.session, principal, phase_id, approve=approve, reason=None if approve else reason,
                                now=_now(), ip=client_ip(), project_id=project_id)
        message = (f"Phase \u201c{decision.phase.phase_name}\u201d "
                   + ("approved." if approve else "rejected.")
                   + (" The project manager has been told." if decision.manager_told else ""))
    except DomainError as error:
        db.session.rollback()
        if isinstance(error, NotFound):
            abort(404)
        if isinstance(error, Forbidden):
            abort(403, description=error.message)
        status = 409 if isinstance(error, Conflict) else 422
        if is_htmx():
            return with_toast(_phase_answer(project_id, phase_id, error=error, reason=reason, status=status),
                              error.message, "error")
        return _project_page(project_id, error=error, error_phase=phase_id, reason=reason, status=status)
    db.session.commit()  # the service queued the project manager's email: it goes out now
    if not is_htmx():
        flash(message, "success")
        return redirect(url_for("portal.show_project", project_id=project_id) + f"#phase-{phase_id}", code=303)
    return with_toast(_phase_answer(project_id, phase_id), message)


@bp.post("/projects/<int:project_id>/phases/<int:phase_id>/approve")
@require(policy.may_decide_phase)
def approve_phase(project_id: int, phase_id: int):
    return _decide(project_id, phase_id, approve=True)


@bp.post("/projects/<int:project_id>/phases/<int:phase_id>/reject")
@require(policy.may_decide_phase)
def reject_phase(project_id: int, phase_id: int):
    return _decide(project_id, phase_id, approve=False)
