"""HTML blueprints: the front door, sign-in, my account, the customer portal, the staff workspace.

Every view runs inside the request's unit of work (portal.web.unit_of_work): one commit, after
the view returned.
"""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from portal.web.account import bp as account_bp
    from portal.web.auth import bp as auth_bp
    from portal.web.main import bp as main_bp
    from portal.web.portal import bp as portal_bp
    from portal.web.staff import blueprints as staff_blueprints
    from portal.web.unit_of_work import install_unit_of_work

    from portal.api import register_api

    for blueprint in (main_bp, auth_bp, account_bp, portal_bp, *staff_blueprints):
        app.register_blueprint(blueprint)
    register_api(app)  # before the unit of work, which wraps every view registered so far
    install_unit_of_work(app)
