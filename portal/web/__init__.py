"""HTML blueprints."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from portal.web.account import bp as account_bp
    from portal.web.auth import bp as auth_bp
    from portal.web.customer import bp as portal_bp
    from portal.web.main import bp as main_bp
    from portal.web.staff import bp as staff_bp
    from portal.web.tickets import bp as tickets_bp
    from portal.web.projects import bp as projects_bp
    from portal.web.time import bp as time_bp

    for blueprint in (main_bp, auth_bp, account_bp, portal_bp, staff_bp, tickets_bp, time_bp, projects_bp):
        app.register_blueprint(blueprint)
