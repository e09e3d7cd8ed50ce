"""Can the service reach its database? One line saying why not, before anything else.

Run by `manage.py prepare` (make run, make serve, make demo, the image) ahead of the
migrations: without it, a PostgreSQL server that is down or a database that was never
created shows up as the connection pool's "couldn't get a connection" after its
timeout, with the cause in a warning above it. This connects once, directly (no pool),
and names the server and the database; passwords never appear.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
from pathlib import Path
from typing import Any

from django.db import connections

CONNECT_TIMEOUT_SECONDS = 5


def database_problem(alias: str = "default") -> str | None:
    """Why the database of `alias` cannot be used, in one line; None when it can."""
    db = connections.databases[alias]
    engine = db["ENGINE"]
    if engine == "django.db.backends.postgresql":
        return _postgres_problem(db)
    if engine == "django.db.backends.sqlite3":
        return _sqlite_problem(db)
    try:
        connections[alias].ensure_connection()
    except Exception as exc:
        return f"Cannot connect to the database {db.get('NAME')!s}: {_first_line(exc)}"
    return None


def _postgres_problem(db: dict[str, Any]) -> str | None:
    import psycopg

    host, port = db.get("HOST") or "localhost", str(db.get("PORT") or 5432)
    name, user = db.get("NAME") or "", db.get("USER") or ""
    params = {
        "host": host,
        "port": port,
        "dbname": name,
        "user": user or None,
        "password": db.get("PASSWORD") or None,
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    }
    options = db.get("OPTIONS") or {}
    if options.get("sslmode"):
        params["sslmode"] = options["sslmode"]
    try:
        with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        text = str(exc)
        where = f"PostgreSQL at {host}:{port}"
        if f'database "{name}" does not exist' in text:
            create = ["createdb", "-h", host, "-p", port, *(["-U", user] if user else []), name]
            return (
                f'Database "{name}" does not exist on {where}; create it with: {shlex.join(create)}'
            )
        return f'Cannot connect to database "{name}" on {where}: {_postgres_reason(text)}'
    return None


def _postgres_reason(text: str) -> str:
    # libpq: 'connection failed: connection to server at "h", port p failed: <why>'
    # and a hint on the next line ("Is the server running...?"), left out.
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    reason = first.rsplit(" failed: ", 1)[-1]
    return re.sub(r"^FATAL:\s+", "", reason).strip() or first


def _sqlite_problem(db: dict[str, Any]) -> str | None:
    name = str(db.get("NAME") or "")
    if name in ("", ":memory:") or name.startswith("file:"):
        return None
    path = Path(name)
    if not path.parent.is_dir():
        return f"Cannot open the SQLite database {path}: its folder {path.parent} does not exist"
    try:
        connection = sqlite3.connect(path, timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            connection.execute("SELECT 1")
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return f"Cannot open the SQLite database {path}: {_first_line(exc)}"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
