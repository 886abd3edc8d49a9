"""The admins' System page (/staff/system): is the portal ready, its backups, its slowest statements."""

from __future__ import annotations

from flask import Blueprint, current_app

from portal.extensions import db
from portal.services import backups, policy, readiness, slow_queries
from portal.web.rendering import render
from portal.web.security import require

bp = Blueprint("system", __name__, url_prefix="/staff/system")


@bp.get("/")
@require(policy.may_administer)
def system_status():
    config = current_app.config
    backup_dir = config.get("BACKUP_DIR")
    return render("staff/system.html", readiness=readiness.check(db.session, current_app),
                  backup_dir=backup_dir, backup_keep=config["BACKUP_KEEP"],
                  backups=list(reversed(backups.list_backups(backup_dir)))[:10] if backup_dir else [],
                  slowest=slow_queries.slowest_statements(db.session),
                  slow_query_ms=config.get("SLOW_QUERY_MS") or 0, how_to_enable=slow_queries.HOW_TO_ENABLE)
