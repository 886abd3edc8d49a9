"""Projects and phases for staff (/staff/projects): managers plan, everyone else reads."""

from __future__ import annotations

from flask import Blueprint, request, url_for

from portal.extensions import db
from portal.services import choices, policy
from portal.services.projects import (
    PROJECT_MOVES,
    PhasePlan,
    ProjectPlan,
    add_phase,
    change_phase_status,
    create_project,
    new_project_errors,
    project_for_staff,
    project_list,
    project_money,
    project_phase,
    request_phase_approval,
    staff_phases,
    update_phase,
    update_project,
)
from portal.web.errors import error_page
from portal.web.forms import PhaseForm, PhaseStatusForm, ProjectForm, page_form, parse
from portal.web.rendering import after_change, render
from portal.web.security import current_principal, require

bp = Blueprint("projects", __name__, url_prefix="/staff/projects")


def _project_plan(form: ProjectForm) -> ProjectPlan:
    return ProjectPlan(**{name: form[name].data for name in ProjectPlan.__dataclass_fields__})


def _phase_plan(form: PhaseForm) -> PhasePlan:
    return PhasePlan(**{name: form[name].data for name in PhasePlan.__dataclass_fields__})


@bp.get("/")
@require(policy.may_use_staff)
def list_projects():
    principal = current_principal()
    return render("staff/projects/list.html", rows=project_list(db.session, principal),
                  may_create=policy.may_manage_project(principal))


def _new_project_page(error=None):
    principal = current_principal()
    form = page_form(ProjectForm, error, customer_id=choices.customers(db.session),
                     project_manager_id=choices.project_managers(db.session))
    return render("staff/projects/new.html", project_form=form, is_admin=policy.may_administer(principal))


@bp.route("/new", methods=["GET", "POST"])
@require(policy.may_manage_project)
@error_page(lambda error: _new_project_page(error))
def new_project():
    if request.method == "GET":
        return _new_project_page()
    form = parse(ProjectForm, rules=lambda form: new_project_errors(db.session, current_principal(),
                                                                     _project_plan(form)))
    project = create_project(db.session, current_principal(), _project_plan(form))
    return after_change(f"Project {project.project_number} created. Plan its phases next.",
                        url_for("projects.show_project", project_id=project.project_id))


def _detail(project_id: int, *, error=None, error_scope: str = ""):
    principal = current_principal()
    project = project_for_staff(db.session, project_id)

    def form_for(form_class, scope: str, data: dict):
        return page_form(form_class, error if error_scope == scope else None, data=data)

    phase_forms = {phase.phase_id: form_for(PhaseForm, f"phase-{phase.phase_id}", {
        name: getattr(phase, name) for name in PhasePlan.__dataclass_fields__}) for phase in project.phases}
    plan_form = form_for(ProjectForm, "plan", {name: getattr(project, name) for name in ProjectPlan.__dataclass_fields__
                                               if name != "customer_id"})
    plan_form.project_manager_id.options = choices.project_managers(db.session)
    status = project.project_status
    plan_form.project_status.options = [(status.value, f"{status.value.replace('_', ' ').capitalize()} (now)")] + [
        (move.value, move.value.replace("_", " ").capitalize()) for move in PROJECT_MOVES[status]]
    return render("staff/projects/show.html", project=project, may_change=policy.may_change_project(principal, project),
                  phases=staff_phases(principal, project), project_money=project_money(principal, project),
                  is_admin=policy.may_administer(principal), error=error, error_scope=error_scope,
                  phase_forms=phase_forms, new_phase_form=form_for(PhaseForm, "new-phase", {}), plan_form=plan_form)


def _detail_error(scope):
    """Show a refused change on the project page, beside the form it came from (`scope`: its section)."""
    return lambda error, project_id, phase_id=None: _detail(
        project_id, error=error, error_scope=scope if phase_id is None else f"phase-{phase_id}")


def _changed(project_id: int, message: str, anchor: str):
    return after_change(message, url_for("projects.show_project", project_id=project_id) + f"#{anchor}")


@bp.get("/<int:project_id>")
@require(policy.may_use_staff)
def show_project(project_id: int):
    return _detail(project_id)


@bp.post("/<int:project_id>")
@require(policy.may_manage_project)
@error_page(_detail_error("plan"))
def update_project_details(project_id: int):
    form = parse(ProjectForm)
    update_project(db.session, current_principal(), project_for_staff(db.session, project_id), _project_plan(form))
    return _changed(project_id, "Project saved.", "plan")


@bp.post("/<int:project_id>/phases")
@require(policy.may_manage_project)
@error_page(_detail_error("new-phase"))
def add_project_phase(project_id: int):
    form = parse(PhaseForm)
    phase = add_phase(db.session, current_principal(), project_for_staff(db.session, project_id), _phase_plan(form))
    return _changed(project_id, f"Phase \u201c{phase.phase_name}\u201d added.", "phases")


@bp.post("/<int:project_id>/phases/<int:phase_id>")
@require(policy.may_manage_project)
@error_page(_detail_error("phase"))
def update_project_phase(project_id: int, phase_id: int):
    form = parse(PhaseForm)
    update_phase(db.session, current_principal(), project_phase(db.session, project_id, phase_id), _phase_plan(form))
    return _changed(project_id, "Phase saved.", f"phase-{phase_id}")


@bp.post("/<int:project_id>/phases/<int:phase_id>/status")
@require(policy.may_manage_project)
@error_page(_detail_error("phase"))
def change_project_phase_status(project_id: int, phase_id: int):
    form = parse(PhaseStatusForm)
    phase = change_phase_status(db.session, current_principal(), project_phase(db.session, project_id, phase_id),
                                form.phase_status.data)
    return _changed(project_id, f"Phase \u201c{phase.phase_name}\u201d is now {phase.phase_status.value}.",
                    f"phase-{phase_id}")


@bp.post("/<int:project_id>/phases/<int:phase_id>/request-approval")
@require(policy.may_manage_project)
@error_page(_detail_error("phase"))
def request_approval(project_id: int, phase_id: int):
    sponsors = request_phase_approval(db.session, current_principal(),
                                      project_phase(db.session, project_id, phase_id))
    names = ", ".join(s.full_name for s in sponsors)
    return _changed(project_id, f"Approval requested from {names}.", f"phase-{phase_id}")
