"""The API's test harness: clients with tokens, a JSON test client, a local webhook receiver."""

from __future__ import annotations

import http.server
import itertools
import json
import secrets
import threading

import pytest
import sqlalchemy as sa

from portal.services import api_clients, policy

_names = itertools.count(1)
ALL_SCOPES = list(policy.API_SCOPES)


def make_client(session, *scopes: str, name: str | None = None):
    """A client with `scopes` (all by default) and a fresh token for it: (client, secret, token)."""
    client, secret = api_clients.create_client(session, policy.Principal.system("tests"),
                                               name or f"Test client {next(_names)} {secrets.token_hex(3)}",
                                               list(scopes) or ALL_SCOPES)
    token = secrets.token_urlsafe(32)
    api_clients.store_token(session, client, token, list(client.scopes), 3600)
    return client, secret, token


class Api:
    """The Flask test client with a bearer token and JSON bodies."""

    def __init__(self, client, token: str | None) -> None:
        self.client, self.token = client, token

    def _headers(self, headers):
        merged = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        merged.update(headers or {})
        return merged

    def get(self, url, headers=None, **kw):
        return self.client.get(url, headers=self._headers(headers), **kw)

    def post(self, url, json=None, headers=None, **kw):
        return self.client.post(url, json=json, headers=self._headers(headers), **kw)

    def patch(self, url, json=None, headers=None, **kw):
        return self.client.patch(url, json=json, headers=self._headers(headers), **kw)

    def raw(self, method, url, data, content_type="application/json", headers=None):
        return self.client.open(url, method=method, data=data, content_type=content_type,
                                headers=self._headers(headers))


@pytest.fixture
def api(app, session):
    """A client with every scope."""
    _, _, token = make_client(session)
    return Api(app.test_client(), token)


@pytest.fixture
def api_as(app, session):
    """api_as("tickets:read", ...) -> a client with only those scopes."""
    def make(*scopes):
        _, _, token = make_client(session, *scopes)
        return Api(app.test_client(), token)
    return make


def bump_sequences(session, floor: int = 50_000) -> None:
    """Move the id sequences past the seed's example ids (setval outlives the test's rollback), so
    rows made with those exact ids never meet a factory's."""
    for table, column in (("customers", "customer_id"), ("contacts", "contact_id"), ("employees", "employee_id"),
                          ("support_tickets", "ticket_id"), ("time_entries", "entry_id"),
                          ("service_contracts", "contract_id"), ("invoices", "invoice_id")):
        session.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                                f"GREATEST({floor}, (SELECT last_value FROM {table}_{column}_seq)))"))


class Receiver:
    """A real HTTP server on 127.0.0.1 in a thread that records what it is sent and answers `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.status = 200
        self.delay = 0.0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                import time

                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(({k: v for k, v in self.headers.items()}, body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"thanks")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", True)
    server = Receiver()
    yield server
    server.close()
