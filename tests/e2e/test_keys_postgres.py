"""``wsgiauth keys`` and the rotation mark on a real PostgreSQL (the operators' case).

The rotation mark contract of ``tests/identity/test_key_stores.py`` is collected
here again on PostgreSQL stores; the command runs in process against a fresh
database, and once as a subprocess against a closed port.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port
from tests.identity import test_key_stores as key_store_contract
from tests.identity.conftest import ISSUER
from tests.identity.conftest import FakeClock
from tests.identity.conftest import kid_of
from wsgiauth.cli import main
from wsgiauth.identity.database import Database
from wsgiauth.identity.key_stores import ROTATION_TABLE
from wsgiauth.identity.key_stores import SqlKeyStore
from wsgiauth.identity.token_factory import TokenFactory
from wsgiauth.types import TokenParams

psycopg = pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
JANE = TokenParams(claims={"sub": "user:default/jane"})
HOUR = 3600

test_the_rotation_mark_is_set_replaced_and_shared = (
    key_store_contract.test_the_rotation_mark_is_set_replaced_and_shared
)
databases = key_store_contract.databases


@pytest.fixture
def make_store(postgres_dsn, databases):
    """Key stores on one fresh PostgreSQL database (the contract's ``make_store``)."""

    def make(clock):
        return SqlKeyStore(databases(Database.postgres(postgres_dsn)), clock=clock)

    return make


def write_config(directory: Path, dsn: str) -> str:
    path = directory / "app-config.yaml"
    path.write_text(f"backend:\n  database:\n    client: pg\n    connection: '{dsn}'\n")
    return str(path)


def test_the_mark_has_its_own_table_and_signing_keys_keep_backstage_columns(
    postgres_dsn, databases
):
    database = databases(Database.postgres(postgres_dsn))
    SqlKeyStore(database).request_rotation(1_700_000_000.0)
    rows = database.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_name IN ('signing_keys', ?) ORDER BY table_name, column_name",
        (ROTATION_TABLE,),
    )
    assert rows == [
        ("signing_keys", "created_at", "timestamp with time zone"),
        ("signing_keys", "key", "text"),
        ("signing_keys", "kid", "character varying"),
        (ROTATION_TABLE, "id", "integer"),
        (ROTATION_TABLE, "requested_at", "timestamp with time zone"),
    ]


def test_list_rotate_prune_on_postgres(postgres_dsn, databases, tmp_path, capsys):
    database = databases(Database.postgres(postgres_dsn))
    now = time.time()
    SqlKeyStore(database, clock=lambda: now - 4 * HOUR).add_key({"kid": "old", "alg": "ES256"})
    clock = FakeClock(now)
    server = TokenFactory(ISSUER, SqlKeyStore(database, clock=clock), HOUR, clock=clock)
    first = kid_of(server.issue_token(JANE))
    config = write_config(tmp_path, postgres_dsn)

    assert main(["keys", "list", "--config", config, "--format", "json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [(k["kid"], k["expired"], k["newest"]) for k in listing["keys"]] == [
        ("old", True, False),
        (first, False, True),
    ]

    clock.advance(5)  # the operator's rotation comes after the server's key
    assert main(["keys", "rotate", "--config", config]) == 0
    capsys.readouterr()
    clock.advance(server.list_cache_seconds + 1)
    assert kid_of(server.issue_token(JANE)) == first  # the new key is published first
    clock.advance(server.rotation_delay_seconds + 0.01)
    second = kid_of(server.issue_token(JANE))
    assert second != first

    assert main(["keys", "prune", "--config", config]) == 0
    assert capsys.readouterr().out == "Removed 1 expired key(s): old\n"
    assert main(["keys", "list", "--config", config]) == 0
    text = capsys.readouterr().out
    assert "old" not in text and first in text and f"{second}  ES256" in text
    assert text.splitlines()[2].endswith("newest") and "Rotation last requested at" in text


def test_a_database_that_is_down_exits_1_naming_it(tmp_path):
    config = write_config(tmp_path, f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    result = subprocess.run(
        [sys.executable, "-m", "wsgiauth.cli", "keys", "list", "--config", config],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("wsgiauth: The database is unavailable (127.0.0.1:")
    assert result.stdout == ""
