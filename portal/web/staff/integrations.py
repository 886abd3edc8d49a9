"""Admin pages for automation: REST API clients (secret shown once) and webhook subscriptions with
their deliveries (attempts, answers, times, the body sent) and a resend button."""

from __future__ import annotations

from flask import Blueprint, current_app, request, url_for
from wtforms import Field

from portal.extensions import db
from portal.services import api_clients, policy, webhooks
from portal.web.errors import error_page
from portal.web.forms import ParseForm, Text, parse
from portal.web.rendering import after_change, render
from portal.web.security import current_principal, require

bp = Blueprint("integrations", __name__, url_prefix="/staff")


class Names(Field):
    """Several values of one name (checkboxes), as strings."""

    def process_formdata(self, valuelist):
        self.data = [value.strip() for value in valuelist if value and value.strip()]


class ApiClientForm(ParseForm):
    name = Text("Name")
    scopes = Names("Scopes")


class WebhookForm(ParseForm):
    url = Text("Receiver URL")
    description = Text("Description")
    event_types = Names("Events")


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"  # a secret is on the page
    return response


def _clients_page(status=200, errors=None, form=None, created=None):
    return render("staff/api_clients.html", status=status, clients=api_clients.clients(db.session, current_principal()),
                  scopes=policy.API_SCOPES, errors=errors or {}, form=form or {}, created=created)


def _clients_error(error, **_):
    return _clients_page(status=error.status, errors=error.errors or {"name": error.message},
                         form={"name": request.form.get("name", ""), "scopes": request.form.getlist("scopes")})


@bp.get("/api-clients")
@require(policy.may_administer)
def api_clients_page():
    return _clients_page()


@bp.post("/api-clients")
@require(policy.may_administer)
@error_page(_clients_error, toast=False)
def create_api_client():
    form = parse(ApiClientForm)
    client, secret = api_clients.create_client(db.session, current_principal(), form.name.data, form.scopes.data)
    return _no_store(_clients_page(status=201, created={"client": client, "secret": secret}))


@bp.post("/api-clients/<int:client_id>/revoke")
@require(policy.may_administer)
def revoke_api_client(client_id: int):
    client = api_clients.revoke_client(db.session, current_principal(), client_id)
    return after_change(f"{client.name} is revoked: its tokens no longer work.", url_for("integrations.api_clients_page"))


def _webhooks_page(status=200, errors=None, form=None, created=None):
    return render("staff/webhooks.html", status=status,
                  subscriptions=webhooks.subscriptions(db.session, current_principal()),
                  events=webhooks.WEBHOOK_EVENTS, errors=errors or {}, form=form or {}, created=created)


def _webhooks_error(error, **_):
    return _webhooks_page(status=error.status, errors=error.errors or {"url": error.message},
                          form={"url": request.form.get("url", ""), "description": request.form.get("description", ""),
                                "event_types": request.form.getlist("event_types")})


@bp.get("/webhooks")
@require(policy.may_administer)
def webhooks_page():
    return _webhooks_page()


@bp.post("/webhooks")
@require(policy.may_administer)
@error_page(_webhooks_error, toast=False)
def create_webhook():
    form = parse(WebhookForm)
    subscription, secret = webhooks.subscribe(db.session, current_principal(), form.url.data, form.event_types.data,
                                              description=form.description.data,
                                              settings=webhooks.Settings.from_config(current_app.config))
    return _no_store(_webhooks_page(status=201, created={"subscription": subscription, "secret": secret}))


def _webhook_page(subscription_id: int, status: int = 200, secret: str | None = None):
    principal = current_principal()
    subscription = webhooks.subscription_for(db.session, principal, subscription_id)
    return render("staff/webhook.html", status=status, subscription=subscription, secret=secret,
                  deliveries=webhooks.deliveries(db.session, principal, subscription_id), events=webhooks.WEBHOOK_EVENTS)


@bp.get("/webhooks/<int:subscription_id>")
@require(policy.may_administer)
def show_webhook(subscription_id: int):
    return _webhook_page(subscription_id)


@bp.post("/webhooks/<int:subscription_id>/secret")
@require(policy.may_administer)
def roll_webhook_secret(subscription_id: int):
    secret = webhooks.roll_secret(db.session, current_principal(), subscription_id,
                                  settings=webhooks.Settings.from_config(current_app.config))
    return _no_store(_webhook_page(subscription_id, secret=secret))


@bp.post("/webhooks/<int:subscription_id>/active")
@require(policy.may_administer)
def set_webhook_active(subscription_id: int):
    active = request.form.get("active") == "1"
    webhooks.set_active(db.session, current_principal(), subscription_id, active)
    return after_change("The subscription is enabled." if active else "The subscription is disabled.",
                        url_for("integrations.show_webhook", subscription_id=subscription_id))


def _resend_error(error, delivery_id: int):
    return render("errors/error.html", status=error.status, code=error.status, title=error.title,
                  what_next=error.message)


@bp.post("/webhooks/deliveries/<int:delivery_id>/resend")
@require(policy.may_administer)
@error_page(_resend_error)
def resend_delivery(delivery_id: int):
    delivery = webhooks.resend(db.session, current_principal(), delivery_id)
    return after_change(f"Delivery {delivery.delivery_id} is queued to be sent again.",
                        url_for("integrations.show_webhook", subscription_id=delivery.subscription_id))
