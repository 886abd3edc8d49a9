"""Secrets the portal must read back, encrypted at rest: the one column type, the keys, rotation.

A column holding a secret the app needs in clear later (a two-factor seed, a webhook signing
secret, a mailbox password) is declared with `EncryptedText`; the ORM encrypts on write and
decrypts on read, so services keep handling plain strings:

    totp_secret: Mapped[str | None] = mapped_column(EncryptedText(), deferred=True)

(`deferred=True` loads the secret only where code reads it, so a key problem breaks the pages
that need the secret, not every page that loads the row.) Secrets the app only checks
(passwords, recovery codes, API client secrets, tokens) are hashed instead, never stored here.

Values are Fernet tokens (AES-128-CBC with HMAC-SHA256, from `cryptography`), under the keys of
ENCRYPTION_KEYS, newest first: the newest encrypts, every key decrypts, and `flask rotate-keys`
re-encrypts every value of every `EncryptedText` column under the newest (the columns are found
from the models, so a new column needs no change here). Without ENCRYPTION_KEYS, on the embedded
database only, a key is generated into the instance folder (`instance/encryption_keys`), as the
secret key is; with DATABASE_URL (production) the setting is required.

A value no key decrypts raises `SecretUnreadable`, whose message names ENCRYPTION_KEYS: never a
silent None, never a wrong value.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.types import TypeDecorator

SETTING = "ENCRYPTION_KEYS"
KEY_FILE_NAME = "encryption_keys"
NEW_KEY_HINT = ("make one with python -c \"from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())\"")


class EncryptionKeysError(RuntimeError):
    """The keys of ENCRYPTION_KEYS cannot do what was asked; the message says what to set."""


class NoEncryptionKeys(EncryptionKeysError):
    """No key is configured (production without ENCRYPTION_KEYS)."""


class SecretUnreadable(EncryptionKeysError):
    """A stored value does not decrypt with any key of ENCRYPTION_KEYS."""


def unreadable_message(where: str = "a stored secret") -> str:
    return (f"{where} cannot be decrypted with any key in {SETTING}: the key it was encrypted with is "
            f"missing. Put that key back in {SETTING} (newest key first, older keys after it).")


def key_id(key: str | bytes) -> str:
    """A short fingerprint of a key, safe to print and to keep in a backup's manifest."""
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(b"techserv-encryption-key:" + raw).hexdigest()[:12]


def new_key() -> str:
    return Fernet.generate_key().decode()


def parse_keys(value: str, source: str = SETTING) -> list[str]:
    """The keys in `value` (separated by commas, spaces or new lines; `#` starts a comment line), newest first.

    :raises ValueError: a key is not a Fernet key (32 bytes in URL-safe base64), or there is none.
    """
    lines = (line for line in (value or "").splitlines() if not line.lstrip().startswith("#"))
    keys = [part for part in re.split(r"[\s,]+", "\n".join(lines)) if part]
    if not keys:
        raise ValueError(f"{source} holds no key; {NEW_KEY_HINT}")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ValueError(f"key {position} of {source} is not a Fernet key (44 characters of URL-safe "
                             f"base64); {NEW_KEY_HINT}") from None
    return keys


class Keyring:
    """The keys in force, newest first: from ENCRYPTION_KEYS, or from the instance folder's key file.

    The key file is read (and made, the first time) only when a secret is first encrypted or
    decrypted, so commands and tests that touch no secret never write it.
    """

    def __init__(self, keys: list[str] | None = None, *, key_file: Path | None = None,
                 missing_reason: str | None = None) -> None:
        self._keys = list(keys) if keys else None
        self.key_file = key_file
        self.missing_reason = missing_reason
        self._fernet: MultiFernet | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, configured: str | None, *, instance_path: str, embedded: bool) -> "Keyring":
        """ENCRYPTION_KEYS if set; else, on the embedded database, the instance folder's key file.

        :raises ValueError: ENCRYPTION_KEYS is set but holds something that is not a key.
        """
        if configured:
            return cls(parse_keys(configured))
        if embedded:
            return cls(key_file=Path(instance_path) / KEY_FILE_NAME)
        return cls(missing_reason=f"{SETTING} is not set. With DATABASE_URL the portal makes no key of its own: "
                                  f"set {SETTING} to a key kept apart from the database and its backups "
                                  f"({NEW_KEY_HINT}; see the README, Production deployment).")

    @property
    def source(self) -> str:
        """Where the keys come from, for messages: the setting, or the instance folder's key file."""
        return str(self.key_file) if self.key_file is not None else SETTING

    @property
    def keys(self) -> list[str]:
        """:raises NoEncryptionKeys: no key is configured."""
        if self._keys is None:
            with self._lock:
                if self._keys is None:
                    if self.key_file is None:
                        raise NoEncryptionKeys(self.missing_reason or f"{SETTING} is not set.")
                    self._keys = _read_or_make_key_file(self.key_file)
        return self._keys

    @property
    def key_ids(self) -> list[str]:
        return [key_id(key) for key in self.keys]

    def existing_key_ids(self) -> list[str]:
        """The ids of the keys there are, without making the key file when there is none.

        :raises NoEncryptionKeys: no key is configured (production without ENCRYPTION_KEYS).
        """
        if self._keys is None and self.key_file is not None and not self.key_file.exists():
            return []
        return self.key_ids

    @property
    def fernet(self) -> MultiFernet:
        if self._fernet is None:
            self._fernet = MultiFernet([Fernet(key) for key in self.keys])
        return self._fernet

    def encrypt(self, plain: str) -> str:
        return self.fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str, where: str = "a stored secret") -> str:
        """:raises SecretUnreadable: no key decrypts it."""
        return self._with_keys(lambda fernet: fernet.decrypt(token.encode()).decode(), where)

    def rotate(self, token: str, where: str = "a stored secret") -> str:
        """The same secret under the newest key. :raises SecretUnreadable: no key decrypts it."""
        return self._with_keys(lambda fernet: fernet.rotate(token.encode()).decode(), where)

    def _with_keys(self, action, where: str):
        try:
            return action(self.fernet)
        except (InvalidToken, ValueError):
            pass
        # The key file may have gained a key since it was read (`flask rotate-keys --new-key` in
        # another process, the demo's): read it again once before giving up.
        if self._reload_key_file():
            try:
                return action(self.fernet)
            except (InvalidToken, ValueError):
                pass
        raise SecretUnreadable(unreadable_message(where))

    def _reload_key_file(self) -> bool:
        if self.key_file is None or self._keys is None:
            return False
        try:
            keys = parse_keys(self.key_file.read_text(), source=str(self.key_file))
        except (OSError, ValueError):
            return False
        if keys == self._keys:
            return False
        with self._lock:
            self._keys, self._fernet = keys, None
        return True

    def key_id_for(self, token: str) -> str | None:
        """The id of the key that decrypts `token`, or None."""
        for _ in range(2):
            for key in self.keys:
                try:
                    Fernet(key).decrypt(token.encode())
                except (InvalidToken, ValueError):
                    continue
                return key_id(key)
            if not self._reload_key_file():
                return None
        return None

    def add_new_key(self) -> str:
        """Put a new key first in the instance key file (the embedded database's); returns its id.

        :raises EncryptionKeysError: the keys come from ENCRYPTION_KEYS, which only its owner changes.
        """
        if self.key_file is None:
            raise EncryptionKeysError(f"the keys come from {SETTING}: put a new key first in it "
                                      f"({new_key()} is one), restart the portal, then run flask rotate-keys")
        keys = [new_key(), *self.keys]
        _write_key_file(self.key_file, keys, replace=True)
        with self._lock:
            self._keys, self._fernet = keys, None
        return key_id(keys[0])


def _read_or_make_key_file(path: Path) -> list[str]:
    try:
        return parse_keys(path.read_text(), source=str(path))
    except FileNotFoundError:
        pass
    except ValueError as error:
        raise EncryptionKeysError(str(error)) from None
    try:
        _write_key_file(path, [new_key()], replace=False)
    except FileExistsError:  # another process made it first: use theirs
        pass
    return parse_keys(path.read_text(), source=str(path))


def _write_key_file(path: Path, keys: list[str], *, replace: bool) -> None:
    """Write the key file whole (0600) and move it into place; without `replace`, never over another."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".encryption_keys.")
    try:
        with os.fdopen(handle, "w") as out:
            out.write("# Newest key first. Keep a copy apart from the database and its backups:\n"
                      "# without it the two-factor secrets in them cannot be read.\n")
            out.write("\n".join(keys) + "\n")
        os.chmod(temporary, 0o600)
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if the file exists: two processes cannot both make one
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


# --- the keys of the running app -------------------------------------------------------------

# Engine dialect -> the keyring of the app that made the engine: the keys for statements run
# outside an app context (the test harness flushes there); inside one, the app's own keys.
_ENGINE_KEYRINGS: "weakref.WeakKeyDictionary[object, Keyring]" = weakref.WeakKeyDictionary()
EXTENSION = "secrets_at_rest"


def init_app(app, engines) -> Keyring:
    """Give `app` (and its engines) the keyring its settings name.

    :raises ValueError: ENCRYPTION_KEYS holds something that is not a key.
    """
    keyring = Keyring.from_settings(app.config.get(SETTING), instance_path=app.instance_path,
                                    embedded=not app.config.get("DATABASE_URL"))
    app.extensions[EXTENSION] = keyring
    for engine in engines:
        _ENGINE_KEYRINGS[engine.dialect] = keyring
    return keyring


def keyring_of(app) -> Keyring:
    return app.extensions[EXTENSION]


def _keyring_for(dialect) -> Keyring:
    from flask import current_app, has_app_context

    if has_app_context() and EXTENSION in current_app.extensions:
        return current_app.extensions[EXTENSION]
    keyring = _ENGINE_KEYRINGS.get(dialect)
    if keyring is None:
        raise NoEncryptionKeys(f"no {SETTING} for this database connection: encrypted columns are read and "
                               "written only by the portal's own app (create_app)")
    return keyring


class EncryptedText(TypeDecorator):
    """Text encrypted at rest (a Fernet token in a `text` column); reads give the clear string.

    :raises SecretUnreadable: on reading a value no key of ENCRYPTION_KEYS decrypts.
    Compare such a column only with NULL: each encryption of a value differs.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return _keyring_for(dialect).encrypt(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return _keyring_for(dialect).decrypt(value)


# --- every encrypted column, and what rotation and checks do with them --------------------------

@dataclass(frozen=True)
class EncryptedColumn:
    table: sa.Table
    column: sa.Column

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"


def encrypted_columns(metadata: sa.MetaData) -> list[EncryptedColumn]:
    """Every column of the models declared with EncryptedText, in a stable order."""
    return [EncryptedColumn(table, column) for table in metadata.sorted_tables for column in table.columns
            if isinstance(column.type, EncryptedText)]


def _raw(column: sa.Column):
    """The column as stored (the Fernet token), not decrypted."""
    return sa.type_coerce(column, sa.Text)


def rotate_all(connection, keyring: Keyring, metadata: sa.MetaData) -> dict[str, int]:
    """Re-encrypt every value of every encrypted column under the newest key, in the caller's
    transaction (all or nothing); returns how many values per column.

    :raises SecretUnreadable: a value no key decrypts (nothing is changed then: roll back).
    """
    counts: dict[str, int] = {}
    for encrypted in encrypted_columns(metadata):
        table, column = encrypted.table, encrypted.column
        keys = list(table.primary_key.columns)
        rows = connection.execute(sa.select(*keys, _raw(column)).where(column.is_not(None))
                                  .order_by(*keys).with_for_update()).all()
        for row in rows:
            where = f"{encrypted.name} of row {', '.join(str(value) for value in row[:-1])}"
            rotated = keyring.rotate(row[-1], where)
            connection.execute(sa.update(table).where(*(key == value for key, value in zip(keys, row[:-1])))
                               .values({column.name: sa.type_coerce(rotated, sa.Text)}))
        counts[encrypted.name] = len(rows)
    return counts


def encrypt_existing(connection, table: str, column: str, key: str) -> int:
    """For the migration that turns a clear column into EncryptedText: encrypt its values in place with
    the app's keys (ENCRYPTION_KEYS, or the embedded database's key file); returns how many.

    Run it after the column became `text`. The keys are asked for only when there is a value.
    :raises NoEncryptionKeys: there are values and no key (production without ENCRYPTION_KEYS).
    """
    return _recode(connection, table, column, key, lambda keyring, value, where: keyring.encrypt(value))


def decrypt_existing(connection, table: str, column: str, key: str) -> int:
    """For that migration's downgrade: the values back in clear. :raises SecretUnreadable: a value no key opens."""
    return _recode(connection, table, column, key, lambda keyring, value, where: keyring.decrypt(value, where))


def _recode(connection, table: str, column: str, key: str, change) -> int:
    from flask import current_app

    quote = connection.dialect.identifier_preparer.quote
    rows = connection.execute(sa.text(
        f"SELECT {quote(key)}, {quote(column)} FROM {quote(table)} WHERE {quote(column)} IS NOT NULL"
        f" ORDER BY {quote(key)} FOR UPDATE")).all()
    if rows:
        keyring = keyring_of(current_app)
        for row_key, value in rows:
            connection.execute(sa.text(f"UPDATE {quote(table)} SET {quote(column)} = :value WHERE {quote(key)} = :key"),
                               {"value": change(keyring, value, f"{table}.{column} of row {row_key}"), "key": row_key})
    return len(rows)


@dataclass(frozen=True)
class KeyUse:
    """Which keys the stored values need: per column, how many values each key id decrypts."""

    values: int
    by_key: dict[str, int]
    unreadable: dict[str, int]


def key_use(connection, keyring: Keyring, metadata: sa.MetaData, *, limit: int | None = None) -> KeyUse:
    """Read every (or, with `limit`, the newest few per column) encrypted value and say which key opens it."""
    by_key: dict[str, int] = {}
    unreadable: dict[str, int] = {}
    values = 0
    for encrypted in encrypted_columns(metadata):
        query = sa.select(_raw(encrypted.column)).where(encrypted.column.is_not(None))
        if limit is not None:
            query = query.order_by(*(key.desc() for key in encrypted.table.primary_key.columns)).limit(limit)
        for token in connection.execute(query).scalars():
            values += 1
            found = keyring.key_id_for(token)
            if found is None:
                unreadable[encrypted.name] = unreadable.get(encrypted.name, 0) + 1
            else:
                by_key[found] = by_key.get(found, 0) + 1
    return KeyUse(values, by_key, unreadable)
