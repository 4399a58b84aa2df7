"""A real PostgreSQL on 127.0.0.1 for the shared key store tests (Debian's ``postgresql``).

``postgres_server`` (session scope) runs ``initdb`` and ``pg_ctl`` from
``/usr/lib/postgresql/*/bin`` in a temporary directory, on a free port, with the
Unix socket in that directory and trust authentication on loopback. As root it
runs them as the ``postgres`` system user, because PostgreSQL refuses to run as
root. ``postgres_dsn`` (function scope) gives each test a fresh, empty database.

PostgreSQL is optional (the ``postgres`` extra): without psycopg the tests that
need the server are skipped. With psycopg, missing server binaries fail the
tests instead of skipping them: ``scripts/test`` installs both (``apt-get
install postgresql``, ``pip install 'wsgiauth[postgres]'``), and CI must really
run these tests.

``tests/e2e/conftest.py`` offers both fixtures to every e2e test.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 30
_INSTALL_HINT = "scripts/test installs it (apt-get install -y postgresql)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail(
            f"PostgreSQL binaries not found under /usr/lib/postgresql/*/bin; {_INSTALL_HINT}"
        )
    return Path(found[-1]).parent


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory; :meth:`stop` / :meth:`start` at will."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.base = Path(tempfile.mkdtemp(prefix="wsgiauth-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = _free_port()
        self._user = None
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: hand the directory to the postgres user.
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(f"no 'postgres' system user to run PostgreSQL as; {_INSTALL_HINT}")
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
            self._user = "postgres"
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        self._databases = itertools.count(1)

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / program), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=START_TIMEOUT + 10, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            pytest.fail(f"{program} failed:\n{result.stdout}\n{result.stderr}\n{log}")
        return result

    @property
    def dsn(self) -> str:
        """The ``postgres`` maintenance database, as the superuser, over TCP."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, dbname: str) -> str:
        """A DSN for another database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        """Start (or restart) the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
            "-t", str(START_TIMEOUT), "-o", options, "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server now (connections are cut, as in a crash or restart)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self) -> str:
        """A new empty database; returns its DSN."""
        import psycopg

        name = f"test_{next(self._databases)}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn_for(name)

    def cleanup(self) -> None:
        """Stop if running and delete the directory."""
        status = subprocess.run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            check=False,
        )
        if status.returncode == 0:
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL for the whole session."""
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> str:
    """The DSN of a fresh, empty database on the session's PostgreSQL."""
    return postgres_server.create_database()
