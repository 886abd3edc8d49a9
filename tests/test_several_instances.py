"""Two app instances and two workers on one database behave as one.

Real processes, as deployed: two gunicorn servers (`wsgi:app`, two sync workers each) and two
`flask worker` processes, on one PostgreSQL database loaded by `flask seed`, with a real SMTP
server (aiosmtpd) in this process. One client's requests go alternately to both servers.

- A sign-in on one server holds on the other, and a sign-out on one ends it on both (the login
  session lives in PostgreSQL, the cookie is signed with the shared SECRET_KEY).
- Number sequences: forty tickets opened at once through the API, alternately on both servers,
  get forty different numbers (invoice, contract and project numbers come from the same
  sequences-based `services/numbering.py`).
- Throttles: the password-reset limit per address (MAX_RESETS_PER_EMAIL) and the sign-in lockout
  (MAX_FAILED_LOGINS) count requests to both servers together.
- Jobs: each reset mail the servers queued is sent exactly once although two workers poll.
"""

from __future__ import annotations

import email
import os
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests
from cryptography.fernet import Fernet

from portal.services import auth

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "several-instances-2026"
CONTACT = "sarah.johnson@denvertech.com"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(condition, seconds: float, what: str, processes=()):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"a process exited early ({what}):\n{process.stdout.read()}")
        time.sleep(0.2)
    raise AssertionError(f"waited {seconds} s for {what}")


class Inbox:
    """An SMTP server's DATA handler that keeps every message it accepts."""

    def __init__(self):
        self.messages: list[email.message.Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[email.message.Message]:
        with self.lock:
            return [m for m in self.messages if address in m["To"]]


@pytest.fixture(scope="module")
def deployment(pg, tmp_path_factory):
    from aiosmtpd.controller import Controller

    name = pg.create_database("techserv_instances")
    url = pg.libpq_url_for(name)
    instance = tmp_path_factory.mktemp("instances")
    smtp_handler = Inbox()
    smtp = Controller(smtp_handler, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "WORKER_", "FLASK_"))}
    env.update(DATABASE_URL=url, SECRET_KEY="several-instances", ENCRYPTION_KEYS=Fernet.generate_key().decode(),
               PUBLIC_BASE_URL="https://portal.example", INSTANCE_PATH=str(instance), ATTACHMENTS_PATH=str(instance / "files"),
               MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp.port), MAIL_USE_TLS="0",
               WORKER_HEARTBEAT_SECONDS="1", WORKER_CONCURRENCY="2", PYTHONUNBUFFERED="1", FLASK_APP="wsgi")

    def flask(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    processes: list[subprocess.Popen] = []
    try:
        flask("db", "upgrade")
        flask("seed", "--password", PASSWORD)
        client = dict(re.findall(r"^(client_id|client_secret)=(\S+)$",
                                 flask("api-client", "create", "--name", "two instances", "--scopes", "tickets:write"),
                                 re.MULTILINE))
        servers = []
        for _ in range(2):
            port = _free_port()
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            servers.append(f"http://127.0.0.1:{port}")
        for _ in range(2):
            processes.append(subprocess.Popen([sys.executable, "-m", "flask", "worker"], cwd=ROOT, env=env,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))

        def serving(base):
            try:
                return requests.get(f"{base}/healthz", timeout=5).status_code == 200
            except requests.RequestException:  # not listening yet, or still starting
                return False

        _wait(lambda: all(serving(base) for base in servers), 120, "both servers to answer", processes)
        _wait(lambda: _count(url, "SELECT count(*) FROM procrastinate_workers") >= 2, 120, "both workers to start",
              processes)
        yield {"servers": servers, "url": url, "client": client, "inbox": smtp_handler, "processes": processes}
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()
        smtp.stop()
        pg.drop_database(name)


def _count(url: str, sql: str, *args) -> int:
    with psycopg.connect(url) as connection:
        return connection.execute(sql, args).fetchone()[0]


def _csrf(response: requests.Response) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.text).group(1)


def _sign_in(browser: requests.Session, base: str, email_address: str, password: str) -> requests.Response:
    token = _csrf(browser.get(f"{base}/login"))
    return browser.post(f"{base}/login", data={"csrf_token": token, "email": email_address, "password": password},
                        allow_redirects=False)


def test_a_sign_in_on_one_instance_holds_on_the_other_and_a_sign_out_ends_it_on_both(deployment):
    a, b = deployment["servers"]
    browser = requests.Session()
    assert _sign_in(browser, a, CONTACT, PASSWORD).status_code in (302, 303)
    home = browser.get(f"{b}/portal/", allow_redirects=False)
    assert home.status_code == 200 and "Sarah" in home.text
    # A form served by one instance is accepted by the other (the CSRF secret is in the signed cookie).
    token = _csrf(browser.get(f"{a}/portal/tickets/new"))
    signed_out = browser.post(f"{b}/logout", data={"csrf_token": token}, allow_redirects=False)
    assert signed_out.status_code == 303
    assert browser.get(f"{a}/portal/", allow_redirects=False).status_code in (302, 303)


def test_tickets_opened_at_once_on_both_instances_get_distinct_numbers(deployment):
    a, b = deployment["servers"]
    client = deployment["client"]
    token = requests.post(f"{a}/api/oauth/token", auth=(client["client_id"], client["client_secret"]),
                          data={"grant_type": "client_credentials"}, timeout=30).json()["access_token"]
    before = _count(deployment["url"], "SELECT count(*) FROM support_tickets")

    def open_ticket(i: int) -> str:
        answer = requests.post(f"{(a, b)[i % 2]}/api/tickets", timeout=60, json={
            "customer_email": CONTACT, "title": f"Printer {i} offline", "description": "It shows error E-42.",
            "category": "hardware", "priority": "low"}, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 201, answer.text
        return answer.json()["ticket_number"]

    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(open_ticket, range(40)))
    assert len(set(numbers)) == 40
    assert _count(deployment["url"], "SELECT count(*) FROM support_tickets") == before + 40


def test_the_reset_throttle_counts_both_instances_and_each_mail_is_sent_once_by_two_workers(deployment):
    a, b = deployment["servers"]
    address = "mike.chen@denvertech.com"
    for i in range(auth.MAX_RESETS_PER_EMAIL + 3):
        browser = requests.Session()
        base = (a, b)[i % 2]
        token = _csrf(browser.get(f"{base}/password/forgot"))
        answer = browser.post(f"{base}/password/forgot", data={"csrf_token": token, "email": address},
                              allow_redirects=False)
        assert answer.status_code == 303  # the same answer whether sent or held back: nothing to learn
    inbox = deployment["inbox"]
    _wait(lambda: len(inbox.to(address)) >= auth.MAX_RESETS_PER_EMAIL, 120, "the reset mails",
          deployment["processes"])
    _wait(lambda: _count(deployment["url"], "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'mail.send'"
                         " AND status IN ('todo', 'doing')") == 0, 60, "the mail queue to empty")
    time.sleep(3)  # a second sending of any of them would have arrived by now
    mails = inbox.to(address)
    links = [re.search(r"https://portal\.example/password/reset/\S+", m.get_payload(decode=False)
                       if not m.is_multipart() else m.get_payload(0).get_payload()).group(0) for m in mails]
    assert len(mails) == auth.MAX_RESETS_PER_EMAIL  # not 8: the throttle saw all eight requests
    assert len(set(links)) == len(links)  # five different links, none sent twice


def test_the_sign_in_lockout_counts_failures_on_both_instances(deployment):
    a, b = deployment["servers"]
    address = "karen.holt@denvertech.com"
    for i in range(auth.MAX_FAILED_LOGINS):
        refused = _sign_in(requests.Session(), (a, b)[i % 2], address, "not the password")
        assert refused.status_code in (401, 422, 423, 429), refused.status_code
    for base in (a, b):  # now locked everywhere, even with the right password
        locked = _sign_in(requests.Session(), base, address, PASSWORD)
        assert locked.status_code not in (302, 303)
        assert "locked" in locked.text.lower() or "too many" in locked.text.lower()
