"""The run store: one SQLite file that keeps every measurement and Lab run across reloads and restarts.

Where: `RESNET_EXPLORER_STORE=PATH` (or the command line's `--store PATH`), else
`$XDG_DATA_HOME/resnet-explorer/runs.sqlite` (`~/.local/share/...`); `RESNET_EXPLORER_STORE=off`
(or `--no-store`) keeps nothing. Many writers at once (app sessions are threads, commands are
processes) are safe: each operation opens its own connection, the journal is WAL and a writer
waits up to BUSY_TIMEOUT_S for the lock. A file that is not a run store is never written to.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from explorer.runs.record import RunRecord

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 10.0       # longest wait for another writer's lock before giving up
ENV_VAR = "RESNET_EXPLORER_STORE"
OFF = "off"

# Each schema version's statements, in order; opening an older store runs the ones after its version.
SCHEMA: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE runs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,"
        " config TEXT NOT NULL, network TEXT NOT NULL, settings TEXT NOT NULL, device TEXT NOT NULL,"
        " result TEXT, status TEXT NOT NULL, message TEXT NOT NULL, started TEXT NOT NULL, ended TEXT,"
        " host TEXT NOT NULL, torch_version TEXT NOT NULL, version TEXT NOT NULL)",
        "CREATE INDEX runs_network ON runs (network, kind, started)",
        "CREATE INDEX runs_started ON runs (started)",
    ),
}
T = TypeVar("T")
_COLUMNS = tuple(f.name for f in fields(RunRecord))
_JSON_COLUMNS = ("config", "settings", "result")


class StoreError(RuntimeError):
    """The store cannot be used (read-only, locked, not a run store, newer schema): one line for the user."""


def default_path() -> Path | None:
    """The store's file from the environment; None when storing is off."""
    text = os.environ.get(ENV_VAR, "").strip()
    if text.lower() == OFF:
        return None
    if text:
        return Path(text).expanduser()
    base = os.environ.get("XDG_DATA_HOME", "").strip() or Path.home() / ".local" / "share"
    return Path(base) / "resnet-explorer" / "runs.sqlite"


@dataclass(frozen=True)
class ImportReport:
    """What `RunStore.import_lines` did: records added, already present, and bad lines by number."""

    added: int
    present: int
    errors: tuple[tuple[int, str], ...]     # (1-based line number, why)


class RunStore:
    """The runs kept in one SQLite file. Every method opens, uses and closes its own connection."""

    def __init__(self, path: str | os.PathLike, timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s      # longest wait for another writer's lock
        self._ready = False

    # -- connection and schema -----------------------------------------------------------------
    def _transaction(self, work: Callable[[sqlite3.Connection], T], write: bool = False) -> T:
        """`work(con)` inside one transaction; retried while another writer holds the lock, up to
        timeout_s (sqlite answers "busy" at once in some lock upgrades, without waiting itself).
        sqlite's errors become one StoreError line."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                if not self._ready:
                    self._open_schema()
                with closing(sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)) as con:
                    con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    try:
                        out = work(con)
                        con.execute("COMMIT")
                        return out
                    except BaseException:
                        con.execute("ROLLBACK")
                        raise
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise StoreError(self._explain(exc)) from None
                time.sleep(random.uniform(0.01, 0.05))
            except sqlite3.Error as exc:
                raise StoreError(self._explain(exc)) from None

    def _open_schema(self) -> None:
        """Create the file and its tables, migrate an older schema, refuse a newer one or a stranger."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"run store {self.path}: cannot create its folder ({exc.strerror})") from None
        with closing(sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)) as con:
            con.execute("BEGIN IMMEDIATE")  # one opener at a time decides whether to create or migrate
            try:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                version = self._version(con, tables)
                if version > SCHEMA_VERSION:
                    raise StoreError(f"run store {self.path} was written by a newer version (schema {version}; "
                                     f"this one reads up to {SCHEMA_VERSION}): upgrade, or use another file")
                if version < SCHEMA_VERSION:
                    _migrate(con, version)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            if version < SCHEMA_VERSION:
                con.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
        self._ready = True

    def _version(self, con: sqlite3.Connection, tables: set[str]) -> int:
        if not tables:
            return 0
        if "schema_version" not in tables:
            raise StoreError(f"{self.path} is an SQLite file but not a run store; it was left untouched")
        row = con.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _explain(self, exc: sqlite3.Error) -> str:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return f"{self.path} is not a run store (not an SQLite database, or damaged); it was left untouched"
        if "locked" in text or "busy" in text:
            return f"run store {self.path} stayed locked by another program for {self.timeout_s:g} s"
        if "readonly" in text or "read-only" in text or _read_only_fs(self.path):
            return f"run store {self.path} is read-only: nothing new can be kept there"
        if "unable to open" in text:
            return f"run store {self.path} cannot be opened (check the folder exists and is writable)"
        return f"run store {self.path}: {text}"

    # -- records ----------------------------------------------------------------------------------
    def add(self, record: RunRecord) -> bool:
        """Keep `record` unless a run with its id is kept already; True when it was added."""
        row = _row(record)
        return self._transaction(lambda con: con.execute(_INSERT.format(verb="INSERT OR IGNORE"), row).rowcount == 1,
                                 write=True)

    def put(self, record: RunRecord) -> None:
        """Keep `record`, replacing the run with its id (a run in progress, updated as it goes)."""
        row = _row(record)
        self._transaction(lambda con: con.execute(_INSERT.format(verb="INSERT OR REPLACE"), row), write=True)

    def get(self, run_id: str) -> RunRecord | None:
        """The run with this id, or with this unique id prefix (at least 4 characters)."""
        def find(con: sqlite3.Connection) -> list:
            rows = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE id = ?", (run_id,)).fetchall()
            if not rows and len(run_id) >= 4:
                rows = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                                   (_like_prefix(run_id),)).fetchall()
            return rows

        rows = self._transaction(find)
        return _record(rows[0]) if len(rows) == 1 else None

    def list(self, kind: str | None = None, network: str | None = None, device: str | None = None,
             limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first; `device` matches any part of the device label, case-insensitively."""
        where, args = [], []
        for column, value in (("kind", kind), ("network", network)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if device:
            where.append("lower(device) LIKE ? ESCAPE '\\'")
            args.append("%" + _escape_like(device.lower()) + "%")
        sql = f"SELECT {', '.join(_COLUMNS)} FROM runs"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY started DESC, rowid DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_record(r) for r in self._transaction(lambda con: con.execute(sql, args).fetchall())]

    def delete(self, run_ids: Iterable[str]) -> int:
        """Forget these runs; returns how many there were."""
        ids = list(run_ids)
        return self._transaction(lambda con: sum(con.execute("DELETE FROM runs WHERE id = ?", (i,)).rowcount
                                                 for i in ids), write=True)

    def import_lines(self, lines: Iterable[str]) -> ImportReport:
        """Keep the runs of a .jsonl export, one per line; a bad line is reported by number, the rest kept."""
        good, errors = [], []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                good.append(RunRecord.from_dict(json.loads(line)))
            except (ValueError, TypeError, RecursionError) as exc:  # JSONDecodeError and ConfigError are ValueErrors
                errors.append((number, str(exc)[:200]))
        rows = [_row(r) for r in good]
        added = self._transaction(lambda con: sum(con.execute(_INSERT.format(verb="INSERT OR IGNORE"), row).rowcount
                                                  for row in rows), write=True)
        return ImportReport(added, len(good) - added, tuple(errors))


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _migrate(con: sqlite3.Connection, version: int) -> None:
    """Bring a store at schema `version` (0: empty) up to SCHEMA_VERSION, inside the caller's transaction."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    for v in range(version + 1, SCHEMA_VERSION + 1):
        for statement in SCHEMA[v]:
            con.execute(statement)
    con.execute("DELETE FROM schema_version")
    con.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))


_INSERT = "{verb} INTO runs (" + ", ".join(_COLUMNS) + ") VALUES (" + ", ".join("?" * len(_COLUMNS)) + ")"


def _row(record: RunRecord) -> tuple[Any, ...]:
    d = record.to_dict()
    return tuple(json.dumps(d[c], ensure_ascii=False) if c in _JSON_COLUMNS else d[c] for c in _COLUMNS)


def _record(row: tuple[Any, ...]) -> RunRecord:
    d = {c: json.loads(v) if c in _JSON_COLUMNS else v for c, v in zip(_COLUMNS, row)}
    return RunRecord(**d)


def _read_only_fs(path: Path) -> bool:
    """Whether the file system holding `path` (or its nearest existing folder) is mounted read-only."""
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
            except OSError:
                return False
    return False


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(text: str) -> str:
    return _escape_like(text) + "%"


def open_store(path: str | os.PathLike | None = None, off: bool = False) -> RunStore | None:
    """The store at `path` (else the environment's); None when storing is off."""
    if off:
        return None
    chosen = Path(path).expanduser() if path is not None else default_path()
    return None if chosen is None else RunStore(chosen)
