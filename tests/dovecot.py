"""A real IMAP server for the mail-in tests: Debian's dovecot (dovecot-imapd), started by the tests on a
port of this machine with a throwaway maildir. Missing dovecot skips those tests with one line, unless
PORTAL_REQUIRE_DOVECOT=1 (CI), where it fails them."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "support@techserv.example", "imap-test-password"


def require_dovecot() -> None:
    if not os.path.exists(DOVECOT) or not hasattr(os, "geteuid") or os.geteuid() != 0:
        message = "dovecot (Debian's dovecot-imapd, run as root) is needed for the IMAP tests"
        if os.environ.get("PORTAL_REQUIRE_DOVECOT") == "1":
            pytest.fail(message + " and PORTAL_REQUIRE_DOVECOT=1")
        pytest.skip(message)


def _free_port() -> int:
    # A port of this run's range when the environment names one, else any free one.
    first = int(os.environ.get("PORTAL_TEST_IMAP_PORT", "0"))
    for port in ([first + i for i in range(20)] if first else [0]):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError("no free port for dovecot")


@dataclass
class Dovecot:
    root: Path
    port: int
    config: Path

    host = "127.0.0.1"
    user = USER
    password = PASSWORD

    def settings(self) -> dict:
        return {"IMAP_HOST": self.host, "IMAP_PORT": self.port, "IMAP_SECURITY": "plain",
                "IMAP_USERNAME": self.user, "IMAP_PASSWORD": self.password, "IMAP_INBOX": "INBOX",
                "IMAP_PROCESSED_FOLDER": "Processed", "MAIL_IN_ADDRESS": self.user}

    def connect(self):
        import imaplib

        connection = imaplib.IMAP4(self.host, self.port, timeout=10)
        connection.login(self.user, self.password)
        return connection

    def deliver(self, raw: bytes) -> None:
        """Put a message in the inbox, as the mail server's delivery would."""
        connection = self.connect()
        try:
            status, answer = connection.append("INBOX", None, None, raw)
            assert status == "OK", answer
        finally:
            connection.logout()

    def count(self, folder: str) -> int:
        connection = self.connect()
        try:
            status, answer = connection.select(f'"{folder}"', readonly=True)
            return int(answer[0]) if status == "OK" else 0
        finally:
            connection.logout()

    def clear(self) -> None:
        """Empty both folders between tests (the test server's own housekeeping)."""
        connection = self.connect()
        try:
            for folder in ("INBOX", "Processed"):
                status, answer = connection.select(f'"{folder}"')
                if status == "OK" and int(answer[0]):
                    connection.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
                    connection.expunge()
        finally:
            connection.logout()

    def stop(self) -> None:
        subprocess.run([DOVECOT, "-c", str(self.config), "stop"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


def start_dovecot() -> Dovecot:
    require_dovecot()
    owner = pwd.getpwnam("dovecot")
    root = Path(tempfile.mkdtemp(prefix="portal-dovecot-", dir="/tmp"))
    os.chmod(root, 0o755)
    for name in ("run", "state", "mail"):
        (root / name).mkdir()
    os.chown(root / "mail", owner.pw_uid, owner.pw_gid)
    port = _free_port()
    (root / "users").write_text(
        f"{USER}:{{PLAIN}}{PASSWORD}:{owner.pw_uid}:{owner.pw_gid}::{root / 'mail'}::\n")
    config = root / "dovecot.conf"
    config.write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root / 'run'}
state_dir = {root / 'state'}
log_path = {root / 'dovecot.log'}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 100
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:{root / 'mail'}/Maildir
passdb {{
  driver = passwd-file
  args = {root / 'users'}
}}
userdb {{
  driver = passwd-file
  args = {root / 'users'}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""")
    # Its daemon keeps the descriptors it was given: no pipes, or run() would wait for it.
    with open(root / "start.log", "w") as out:
        started = subprocess.run([DOVECOT, "-c", str(config)], stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, timeout=30)
    if started.returncode != 0:
        raise RuntimeError(f"dovecot did not start: {(root / 'start.log').read_text()}")
    server = Dovecot(root, port, config)
    deadline = time.monotonic() + 15
    while True:
        try:
            server.connect().logout()
            return server
        except OSError:
            if time.monotonic() > deadline:
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                server.stop()
                raise RuntimeError(f"dovecot did not answer on port {port}: {log[-2000:]}") from None
            time.sleep(0.1)
