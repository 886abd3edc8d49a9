"""Projects and phases for staff (/staff/projects): managers plan, everyone else reads."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, request, url_for

from portal.extensions import db
from portal.models import Customer, Employee, EmployeeRole, ProjectPhase
from portal.services import policy
from portal.services.errors import DomainError, Forbidden, NotFound
from portal.services.projects import (
    PROJECT_MOVES,
    PhaseForm,
    ProjectForm,
    add_phase,
    change_phase_status,
    create_project,
    phase_moves,
    project_for_staff,
    project_list,
    project_money,
    request_phase_approval,
    update_phase,
    update_project,
)
from portal.web.rendering import render
from portal.web.security import client_ip, current_principal, require

bp = Blueprint("projects", __name__, url_prefix="/staff/projects")


def _now() -> datetime:
    return datetime.now(UTC)


def _project_form() -> ProjectForm:
    f = request.form
    return ProjectForm(**{name: f.get(name, "") for name in ProjectForm.__dataclass_fields__})


def _phase_form() -> PhaseForm:
    f = request.form
    return PhaseForm(phase_name=f.get("phase_name", ""), deliverables=f.get("deliverables", ""),
                     budget_allocation=f.get("budget_allocation", ""), start_date=f.get("start_date", ""),
                     end_date=f.get("end_date", ""), requires_approval=f.get("requires_approval") == "1")


def _choices():
    customers = db.session.execute(sa.select(Customer.customer_id, Customer.company_name)
                                   .order_by(Customer.company_name)).all()
    managers = db.session.execute(sa.select(Employee.employee_id, Employee.first_name + " " + Employee.last_name)
                                  .where(Employee.role.in_([EmployeeRole.PROJECT_MANAGER, EmployeeRole.ADMIN]))
                                  .order_by(Employee.first_name)).all()
    return customers, managers


@bp.get("/")
@require(policy.may_use_staff)
def list_projects():
    principal = current_principal()
    return render("staff/projects/list.html", rows=project_list(db.session, principal),
                  may_create=policy.may_manage_project(principal))


@bp.route("/new", methods=["GET", "POST"])
@require(policy.may_manage_project)
def new_project():
    principal = current_principal()
    error = None
    if request.method == "POST":
        try:
            project = create_project(db.session, principal, _project_form(), now=_now(), ip=client_ip())
        except DomainError as exc:
            db.session.rollback()
            error = exc
        else:
            db.session.commit()
            flash(f"Project {project.project_number} created. Plan its phases next.", "success")
            return redirect(url_for("projects.show_project", project_id=project.project_id), code=303)
    customers, managers = _choices()
    return render("staff/projects/new.html", form=request.form, errors=error.errors if error else {},
                  customers=customers, managers=managers, is_admin=policy.may_administer(principal),
                  status=422 if error else 200)


def _detail(project_id: int, *, error: DomainError | None = None, error_scope: str = "", status: int = 200):
    principal = current_principal()
    try:
        project = project_for_staff(db.session, project_id)
    except NotFound:
        abort(404)
    customers, managers = _choices()
    return render("staff/projects/show.html", project=project, may_manage=policy.may_manage_project(principal, project),
                  project_moves=PROJECT_MOVES[project.project_status], phase_moves=phase_moves,
                  project_money=project_money(principal, project),
                  managers=managers, is_admin=policy.may_administer(principal), error=error,
                  error_scope=error_scope, form=request.form if error else {}, status=status)


@bp.get("/<int:project_id>")
@require(policy.may_use_staff)
def show_project(project_id: int):
    return _detail(project_id)


def _finish(project_id: int, message: str, error: DomainError | None, scope: str):
    if error is None:
        db.session.commit()
        flash(message, "success")
        return redirect(url_for("projects.show_project", project_id=project_id) + (f"#{scope}" if scope else ""),
                        code=303)
    db.session.rollback()
    if isinstance(error, Forbidden):
        abort(403, description=error.message)
    if isinstance(error, NotFound):
        abort(404)
    return _detail(project_id, error=error, error_scope=scope, status=422)


@bp.post("/<int:project_id>")
@require(policy.may_manage_project)
def update_project_details(project_id: int):
    try:
        project = project_for_staff(db.session, project_id)
        update_project(db.session, current_principal(), project, _project_form(), now=_now(), ip=client_ip())
    except DomainError as error:
        return _finish(project_id, "", error, "plan")
    return _finish(project_id, "Project saved.", None, "plan")


@bp.post("/<int:project_id>/phases")
@require(policy.may_manage_project)
def add_project_phase(project_id: int):
    try:
        project = project_for_staff(db.session, project_id)
        phase = add_phase(db.session, current_principal(), project, _phase_form(), ip=client_ip())
    except DomainError as error:
        return _finish(project_id, "", error, "new-phase")
    return _finish(project_id, f"Phase “{phase.phase_name}” added.", None, "phases")


def _phase(project_id: int, phase_id: int) -> ProjectPhase:
    phase = db.session.get(ProjectPhase, phase_id)
    if phase is None or phase.project_id != project_id:
        abort(404)
    return phase


@bp.post("/<int:project_id>/phases/<int:phase_id>")
@require(policy.may_manage_project)
def update_project_phase(project_id: int, phase_id: int):
    phase = _phase(project_id, phase_id)
    try:
        update_phase(db.session, current_principal(), phase, _phase_form(), ip=client_ip())
    except DomainError as error:
        return _finish(project_id, "", error, f"phase-{phase_id}")
    return _finish(project_id, "Phase saved.", None, f"phase-{phase_id}")


@bp.post("/<int:project_id>/phases/<int:phase_id>/status")
@require(policy.may_manage_project)
def change_project_phase_status(project_id: int, phase_id: int):
    phase = _phase(project_id, phase_id)
    try:
        change_phase_status(db.session, current_principal(), phase, request.form.get("phase_status", ""),
                            ip=client_ip())
    except DomainError as error:
        return _finish(project_id, "", error, f"phase-{phase_id}")
    return _finish(project_id, f"Phase “{phase.phase_name}” is now {phase.phase_status.value}.", None,
                   f"phase-{phase_id}")


@bp.post("/<int:project_id>/phases/<int:phase_id>/request-approval")
@require(policy.may_manage_project)
def request_approval(project_id: int, phase_id: int):
    phase = _phase(project_id, phase_id)
    principal = current_principal()
    try:
        sponsors = request_phase_approval(db.session, principal, phase, now=_now(), ip=client_ip())
    except DomainError as error:
        return _finish(project_id, "", error, f"phase-{phase_id}")
    db.session.commit()  # the service queued the sponsors' emails: they go out now
    names = ", ".join(s.full_name for s in sponsors)
    return _finish(project_id, f"Approval requested from {names}.", None, f"phase-{phase_id}")
