"""`make serve` and `make run` before they serve: the database checked first (one line,
at once, when it is away or missing), the first admin key printed last, in a frame."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmwrapper.testing.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    return {**env, **values}


def make_serve(database_url: str) -> subprocess.CompletedProcess:
    """`make serve` as a user runs it, with the test's virtualenv already installed
    (`-o` keeps make from reinstalling it)."""
    return subprocess.run(
        ["make", "-s", "-o", f"{VENV}/.installed", "serve", f"VENV={VENV}", f"PORT={free_port()}"],
        cwd=ROOT,
        env=_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _our_lines(stderr: str) -> list[str]:
    """stderr without make's own closing line ("make: *** [Makefile:..] Error 2")."""
    return [line for line in stderr.splitlines() if line and not line.startswith("make")]


def test_make_serve_on_a_database_that_does_not_exist_says_how_to_create_it():
    if not wait_for_port(5432, timeout=0.5):
        pytest.skip("needs a PostgreSQL server on 127.0.0.1:5432")
    name = f"llmwrapper_missing_{secrets.token_hex(4)}"
    started = time.monotonic()
    result = make_serve(f"postgres://postgres@127.0.0.1:5432/{name}")
    elapsed = time.monotonic() - started

    assert result.returncode != 0
    assert _our_lines(result.stderr) == [
        f'Database "{name}" does not exist on PostgreSQL at 127.0.0.1:5432; '
        f"create it with: createdb -h 127.0.0.1 -p 5432 -U postgres {name}"
    ], result.stderr
    assert "couldn't get a connection" not in result.stdout + result.stderr
    assert elapsed < 8  # no pool timeout waited out


def test_make_serve_on_an_unreachable_database_fails_at_once_naming_it():
    port = free_port()  # nothing listens there
    result = make_serve(f"postgres://postgres:secret-pw@127.0.0.1:{port}/llmwrapper")

    assert result.returncode != 0
    assert _our_lines(result.stderr) == [
        f'Cannot connect to database "llmwrapper" on PostgreSQL at 127.0.0.1:{port}: '
        "Connection refused"
    ], result.stderr
    assert "secret-pw" not in result.stdout + result.stderr


def _prepare(database_url: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "prepare"],
        cwd=ROOT,
        env=_env(DATABASE_URL=database_url, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_missing_sqlite_folder_is_one_line(tmp_path):
    result = _prepare(f"sqlite:///{tmp_path}/absent/db.sqlite3")

    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"Cannot open the SQLite database {tmp_path}/absent/db.sqlite3: "
        f"its folder {tmp_path}/absent does not exist"
    )


def test_the_first_admin_key_comes_last_in_a_frame_and_only_once(tmp_path):
    database = f"sqlite:///{tmp_path}/db.sqlite3"
    first = _prepare(database)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.rstrip().splitlines()
    # The frame closes the output: every migration line comes before it.
    assert set(lines[-1]) == {"#"}
    top = max(i for i, line in enumerate(lines[:-1]) if set(line) == {"#"})
    assert all("Applying" not in line for line in lines[top:])
    framed = "\n".join(lines[top:])
    assert "Admin API key (shown only once, store it now):" in framed
    key = re.search(r"lw_[\w-]+", framed).group(0)

    again = _prepare(database)
    assert again.returncode == 0, again.stderr
    assert "lw_" not in again.stdout and "#####" not in again.stdout

    import sqlite3

    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        prefixes = [row[0] for row in db.execute("SELECT prefix FROM tenants_apikey")]
    assert len(prefixes) == 1 and key.startswith(prefixes[0])
