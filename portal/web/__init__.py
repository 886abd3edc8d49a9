"""HTML blueprints."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from portal.web.main import bp as main_bp

    app.register_blueprint(main_bp)
