"""POST /api/oauth/token: OAuth 2.0 client credentials (RFC 6749 4.4), served by Authlib.

Authlib checks the request (grant type, client authentication by HTTP Basic or form fields,
scopes) and makes the token; we keep only the hashes of secrets and tokens (its ready-made models
would store both in clear). Errors keep OAuth's `error` and `error_description` members inside a
problem+json body, so OAuth libraries and problem readers both understand them.
"""

from __future__ import annotations

import json

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from flask import Flask, current_app

from portal.extensions import db
from portal.models import ApiClient
from portal.services import api_clients, policy


class ClientCredentials(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class OAuthClient(ClientMixin):
    """Authlib's view of an ApiClient row."""

    def __init__(self, row: ApiClient) -> None:
        self.row = row

    def get_client_id(self):
        return self.row.client_key

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        granted = list(self.row.scopes)
        if not scope:
            return " ".join(granted)
        return " ".join(name for name in scope.split() if name in granted)

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return api_clients.secret_matches(self.row, client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ClientCredentials.TOKEN_ENDPOINT_AUTH_METHODS

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type == ClientCredentials.GRANT_TYPE


def _query_client(client_key: str) -> OAuthClient | None:
    row = api_clients.client_by_key(db.session, client_key or "")
    return OAuthClient(row) if row is not None else None


def _save_token(token: dict, request) -> None:
    api_clients.store_token(db.session, request.client.row, token["access_token"],
                            (token.get("scope") or "").split(), int(token["expires_in"]))


def init_oauth(app: Flask) -> None:
    app.config.setdefault("OAUTH2_TOKEN_EXPIRES_IN", {"client_credentials": app.config["API_TOKEN_SECONDS"]})
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", list(policy.API_SCOPES))
    server = AuthorizationServer(app, query_client=_query_client, save_token=_save_token)
    server.register_grant(ClientCredentials)
    app.extensions["oauth2_server"] = server


def token_response():
    """Authlib's answer; an error is turned into problem+json keeping its OAuth members."""
    from portal.api.problems import problem

    response = current_app.extensions["oauth2_server"].create_token_response()
    if response.status_code < 400:
        return response
    try:
        body = json.loads(response.get_data(as_text=True))
    except ValueError:
        body = {}
    error = body.get("error", "invalid_request")
    description = body.get("error_description") or {
        "invalid_client": "The client id or secret is wrong, or the client was revoked.",
        "unsupported_grant_type": "Only grant_type=client_credentials is supported.",
        "invalid_scope": f"Unknown scope; the scopes are: {' '.join(policy.API_SCOPES)}.",
    }.get(error, "The token request is not valid.")
    headers = {name: value for name, value in response.headers.items() if name in ("WWW-Authenticate",)}
    headers["Cache-Control"] = "no-store"
    return problem(response.status_code, description, headers=headers,
                   extra={"error": error, "error_description": description})
