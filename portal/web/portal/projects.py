"""The customer portal's projects pages.

Sponsors and primary contacts see their company's projects; sponsors approve or reject the
phases the project manager sends them. A decision answers in place for htmx (the phase and a
toast) and with a redirect to the project for a plain form.
"""

from __future__ import annotations

from flask import request, url_for

from portal.extensions import db
from portal.services import policy
from portal.services.errors import NotFound
from portal.services.projects import customer_project, customer_projects, decide_phase
from portal.web.errors import error_page
from portal.web.forms import PhaseDecisionForm, parse
from portal.web.portal.blueprint import bp
from portal.web.rendering import after_change, is_htmx, render
from portal.web.security import current_principal, require


@bp.get("/projects")
@require(policy.may_see_company_projects)
def projects():
    listing = customer_projects(db.session, current_principal(), request.args.get("page", 1, type=int))
    return render("portal/projects/list.html", block="project_list", listing=listing,
                  may_decide=policy.may_decide_phase(current_principal()))


def _project_page(project_id: int, *, error=None, error_phase: int | None = None):
    return render("portal/projects/show.html", view=customer_project(db.session, current_principal(), project_id),
                  may_decide=policy.may_decide_phase(current_principal()),
                  error=error, error_phase=error_phase, reason=request.form.get("reason", "") if error else "")


@bp.get("/projects/<int:project_id>")
@require(policy.may_see_company_projects)
def show_project(project_id: int):
    return _project_page(project_id)


def _phase_answer(project_id: int, phase_id: int, *, error=None):
    """The phase's card (and, out of band, the project's "awaiting your approval" line) for htmx."""
    view = customer_project(db.session, current_principal(), project_id)
    item = next((p for p in view.phases if p.phase.phase_id == phase_id), None)
    if item is None:
        raise NotFound("No such phase.")
    return render("portal/projects/_phase_answer.html", view=view, item=item,
                  may_decide=policy.may_decide_phase(current_principal()),
                  error=error, error_phase=phase_id, reason=request.form.get("reason", "") if error else "")


def _decision_error(error, project_id: int, phase_id: int):
    if is_htmx():
        return _phase_answer(project_id, phase_id, error=error)
    return _project_page(project_id, error=error, error_phase=phase_id)


def _decide(project_id: int, phase_id: int, approve: bool):
    form = parse(PhaseDecisionForm)
    decision = decide_phase(db.session, current_principal(), phase_id, approve=approve,
                            reason=None if approve else form.reason.data, project_id=project_id)
    message = (f"Phase \u201c{decision.phase.phase_name}\u201d " + ("approved." if approve else "rejected.")
               + (" The project manager will be emailed." if decision.manager_told else ""))
    return after_change(message, url_for("portal.show_project", project_id=project_id) + f"#phase-{phase_id}",
                        lambda: _phase_answer(project_id, phase_id))


@bp.post("/projects/<int:project_id>/phases/<int:phase_id>/approve")
@require(policy.may_decide_phase)
@error_page(_decision_error)
def approve_phase(project_id: int, phase_id: int):
    return _decide(project_id, phase_id, approve=True)


@bp.post("/projects/<int:project_id>/phases/<int:phase_id>/reject")
@require(policy.may_decide_phase)
@error_page(_decision_error)
def reject_phase(project_id: int, phase_id: int):
    return _decide(project_id, phase_id, approve=False)
