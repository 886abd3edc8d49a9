"""Configuration from the environment, DATABASE_URL as given, and one clear line when the database cannot start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal.config import ConfigurationError, settings_from_environment, sqlalchemy_url

ROOT = Path(__file__).resolve().parent.parent
FLASK = [sys.executable, "-m", "flask"]


@pytest.mark.parametrize("given, expected", [
    ("postgresql://app:secret@db.internal:5432/techserv", "postgresql+psycopg://app:secret@db.internal:5432/techserv"),
    ("postgres://app:secret@db:5432/techserv", "postgresql+psycopg://app:secret@db:5432/techserv"),
    ("postgresql://postgres:@/techserv?host=/run/pg", "postgresql+psycopg://postgres:@/techserv?host=/run/pg"),
    ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
])
def test_database_url_is_accepted_as_written(given, expected):
    assert sqlalchemy_url(given) == expected


def test_other_databases_are_refused_clearly():
    with pytest.raises(ConfigurationError, match="DATABASE_URL must start with postgresql://"):
        sqlalchemy_url("mysql://root@localhost/techserv")


@pytest.mark.parametrize("value, message", [("abc", "TAX_RATE must be a number"), ("1.5", "below 1"),
                                            ("NaN", "below 1"), ("sNaN", "below 1"), ("Infinity", "below 1"),
                                            ("1e30", "below 1")])
def test_bad_tax_rate_is_refused(monkeypatch, value, message):
    monkeypatch.setenv("TAX_RATE", value)
    with pytest.raises(ConfigurationError, match=message):
        settings_from_environment()


def test_imap_security_is_one_of_three(monkeypatch):
    monkeypatch.setenv("IMAP_SECURITY", "tls")
    with pytest.raises(ConfigurationError, match="IMAP_SECURITY must be one of ssl, starttls, plain"):
        settings_from_environment()
    monkeypatch.setenv("IMAP_SECURITY", "STARTTLS")
    assert settings_from_environment()["IMAP_SECURITY"] == "starttls"


def _flask(args, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "INSTANCE_PATH")}
    environment.update(env)
    return subprocess.run(FLASK + args, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def test_database_url_from_the_environment(pg):
    name = pg.create_database("techserv_env")
    try:
        result = _flask(["db", "upgrade"], DATABASE_URL=pg.libpq_url_for(name))
        assert result.returncode == 0, result.stderr
        result = _flask(["db", "current"], DATABASE_URL=pg.libpq_url_for(name))
        assert "(head)" in result.stdout
    finally:
        pg.drop_database(name)


def test_embedded_server_that_cannot_start_says_why_in_one_line(tmp_path):
    pgdata = tmp_path / "instance" / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("18\n")  # a data folder that is not one
    result = _flask(["db", "current"], INSTANCE_PATH=str(tmp_path / "instance"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"TechServ Portal cannot start: the embedded PostgreSQL in {pgdata} did not start" in result.stderr
    assert "set DATABASE_URL" in result.stderr


def test_unusable_instance_folder_says_why_in_one_line(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the instance folder should be")
    result = _flask(["db", "current"], INSTANCE_PATH=str(blocker))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"TechServ Portal cannot start: the instance folder {blocker} cannot be used" in result.stderr


def test_unreachable_database_url_is_one_clear_line():
    result = _flask(["seed", "--password", "correct horse battery"], DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "cannot reach the database" in result.stderr
