"""The REST API under /api: OAuth 2.0 client credentials, JSON in and out, problem+json errors, an
OpenAPI 3.1 document generated from the schemas that validate the requests (APIFlask), and webhooks
(portal.services.webhooks). Its views call the same services as the pages.
"""

from __future__ import annotations

from flask import Flask


def register_api(app: Flask) -> None:
    """Register the blueprint (before the unit of work wraps every view) and its error answers."""
    from apiflask.exceptions import HTTPError

    from portal.api.oauth import init_oauth
    from portal.api.openapi import init_openapi
    from portal.api.problems import ApiProblem, problem, validation_problem
    from portal.api.views import bp
    from portal.extensions import csrf

    csrf.exempt(bp)  # bearer tokens, no cookies: nothing for a cross-site form to ride on
    app.register_blueprint(bp)
    init_oauth(app)
    init_openapi(app)

    @app.errorhandler(ApiProblem)
    def api_problem(error: ApiProblem):
        return problem(error.status, error.detail, errors=error.errors, headers=error.headers, extra=error.extra)

    @app.errorhandler(HTTPError)
    def api_validation_error(error: HTTPError):
        if error.status_code == 422:
            return validation_problem(error.detail)
        return problem(error.status_code, str(error.message), headers=dict(error.headers or {}))
