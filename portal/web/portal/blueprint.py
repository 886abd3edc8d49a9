"""The customer portal's blueprint (/portal); its routes live in one module per area beside it."""

from flask import Blueprint

bp = Blueprint("portal", __name__, url_prefix="/portal")
