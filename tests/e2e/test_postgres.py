"""Everything that needs a real PostgreSQL: key stores, user-info stores, the database itself.

The server is :mod:`tests.e2e.postgres` (Debian's ``postgresql`` on 127.0.0.1).
Without the ``postgres`` extra (psycopg) this module is skipped as a whole:
PostgreSQL is optional, and no test outside ``tests/e2e`` needs psycopg.

The store contracts are written once, in ``tests/identity/test_key_stores.py``
and ``tests/identity/test_user_info.py``, over a ``make_store`` / ``store``
fixture. Their test functions are named again below, so pytest collects them
here too, where those fixtures are this module's: the same assertions, on PostgreSQL.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.identity import test_key_stores as key_store_contract
from tests.identity import test_user_info as user_info_contract
from tests.identity.conftest import ISSUER
from tests.identity.conftest import FakeClock
from tests.identity.conftest import kid_of
from tests.identity.conftest import verify
from wsgiauth.config import Config
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.identity.database import Database
from wsgiauth.identity.database_config import database_from_config
from wsgiauth.identity.key_stores import SqlKeyStore
from wsgiauth.identity.token_factory import TokenFactory
from wsgiauth.identity.user_info import SqlUserInfoStore
from wsgiauth.types import TokenParams

psycopg = pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
JANE = TokenParams(claims={"sub": "user:default/jane"})

# The KeyStore and UserInfoStore contracts, collected here on this module's fixtures.
test_store_adds_lists_oldest_first_and_removes = (
    key_store_contract.test_store_adds_lists_oldest_first_and_removes
)
test_two_stores_on_one_database_see_each_others_keys = (
    key_store_contract.test_two_stores_on_one_database_see_each_others_keys
)
test_adding_a_key_twice_keeps_one_row = key_store_contract.test_adding_a_key_twice_keeps_one_row
test_tokens_from_one_factory_verify_with_the_keys_of_another = (
    key_store_contract.test_tokens_from_one_factory_verify_with_the_keys_of_another
)
test_saved_claims_come_back_and_are_replaced = (
    user_info_contract.test_saved_claims_come_back_and_are_replaced
)
test_returned_claims_are_a_copy = user_info_contract.test_returned_claims_are_a_copy
test_expired_entries_go_on_a_write_and_live_ones_stay = (
    user_info_contract.test_expired_entries_go_on_a_write_and_live_ones_stay
)
test_expired_entries_are_pruned_at_most_once_per_interval = (
    user_info_contract.test_expired_entries_are_pruned_at_most_once_per_interval
)

#: Opens databases for a test and closes them after it (the key store tests' fixture).
databases = key_store_contract.databases


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_store(postgres_dsn, databases):
    """Key stores on one fresh PostgreSQL database (the contract's ``make_store``)."""

    def make(clock):
        return SqlKeyStore(databases(Database.postgres(postgres_dsn)), clock=clock)

    return make


@pytest.fixture
def store(postgres_dsn, databases, clock):
    """A user-info store on a fresh PostgreSQL database (the contract's ``store``)."""
    return SqlUserInfoStore(databases(Database.postgres(postgres_dsn)), clock=clock)


def test_closed_port_postgres_is_503():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    database = Database.postgres(f"postgresql://nobody@127.0.0.1:{port}/x")
    try:
        with pytest.raises(ServiceUnavailableError) as info:
            SqlKeyStore(database).list_keys()
        assert isinstance(info.value.__cause__, psycopg.OperationalError)
    finally:
        database.close()


_PROCESS = """
import sys
import jwt
from wsgiauth.identity.database import Database
from wsgiauth.identity.key_stores import SqlKeyStore
from wsgiauth.identity.token_factory import TokenFactory
from wsgiauth.types import TokenParams

dsn, name = sys.argv[1], sys.argv[2]
database = Database.postgres(dsn)
factory = TokenFactory("http://localhost:7007/api/auth", SqlKeyStore(database), 600)
print(factory.issue_token(TokenParams(claims={"sub": "user:default/" + name})), flush=True)
other = sys.stdin.readline().strip()
kid = jwt.get_unverified_header(other)["kid"]
jwk = next(k for k in factory.list_public_keys() if k["kid"] == kid)
claims = jwt.decode(other, jwt.PyJWK(jwk), algorithms=["ES256"], audience="backstage")
print(claims["sub"], flush=True)
database.close()
"""


def test_two_processes_verify_each_others_tokens(postgres_dsn):
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS, postgres_dsn, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        for name in ("alice", "bob")
    ]
    try:
        tokens = [process.stdout.readline().strip() for process in processes]
        assert all(token.count(".") == 2 for token in tokens), [p.stderr.read() for p in processes]
        assert kid_of(tokens[0]) != kid_of(tokens[1])
        results = [
            process.communicate(other + "\n", timeout=60)
            for process, other in zip(processes, reversed(tokens), strict=True)
        ]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert [out.strip() for out, _ in results] == ["user:default/bob", "user:default/alice"]
    assert [process.returncode for process in processes] == [0, 0]


def test_postgres_concurrent_creation_and_inserts(postgres_dsn, databases):
    # Sixteen "processes" (own connections) race to create the table and insert.
    barrier = threading.Barrier(16)
    errors = []

    def publish(index):
        store = SqlKeyStore(databases(Database.postgres(postgres_dsn)))
        barrier.wait()
        try:
            store.add_key({"kid": f"k{index}"})
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    listed = SqlKeyStore(databases(Database.postgres(postgres_dsn))).list_keys()
    assert {s.key["kid"] for s in listed} == {f"k{i}" for i in range(16)}


def test_postgres_tables_have_backstage_column_types(postgres_dsn, databases):
    database = databases(Database.postgres(postgres_dsn))
    SqlKeyStore(database).list_keys()
    rows = database.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = 'signing_keys' ORDER BY column_name"
    )
    assert rows == [
        ("created_at", "timestamp with time zone"),
        ("key", "text"),
        ("kid", "character varying"),
    ]
    # A row written the way Backstage writes it (created_at defaulted by the server).
    database.execute(
        "INSERT INTO signing_keys (kid, key, created_at) VALUES ('bs', '{\"kid\":\"bs\"}', now())"
    )
    assert [s.key["kid"] for s in SqlKeyStore(database).list_keys()] == ["bs"]


def test_postgres_database_is_created_when_missing(postgres_server, databases):
    url = f"postgresql://postgres@127.0.0.1:{postgres_server.port}"
    config = {
        "backend": {"database": {"client": "pg", "prefix": "wsgiauth_e2e_", "connection": url}}
    }
    database = databases(database_from_config(Config.from_dict(config)))
    assert database.description.endswith("/wsgiauth_e2e_auth")
    SqlKeyStore(database).add_key({"kid": "k"})
    assert [s.key["kid"] for s in SqlKeyStore(database).list_keys()] == ["k"]


def test_rotation_while_four_threads_verify(postgres_dsn, databases):
    clock = FakeClock()
    issuing = TokenFactory(
        ISSUER, SqlKeyStore(databases(Database.postgres(postgres_dsn)), clock=clock), 600,
        clock=clock,
    )  # fmt: skip
    serving = TokenFactory(
        ISSUER, SqlKeyStore(databases(Database.postgres(postgres_dsn)), clock=clock), 600,
        clock=clock,
    )  # fmt: skip
    latest = [issuing.issue_token(JANE)]
    stop = threading.Event()
    failures: list[BaseException] = []
    verified = [0] * 4

    def verifier(index):
        while not stop.is_set():
            token = latest[0]
            try:
                verify(token, serving.list_public_keys(), check_time=False)
                verified[index] += 1
            except Exception as exc:  # collected and asserted below
                failures.append(exc)

    threads = [threading.Thread(target=verifier, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    kids = set()
    try:
        for _ in range(250):  # 2500 s: four rotations, with pruning
            clock.advance(10)
            latest[0] = issuing.issue_token(JANE)
            kids.add(kid_of(latest[0]))
            stop.wait(0.002)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert len(kids) >= 4
    assert all(count > 0 for count in verified)


def test_postgres_down_and_back(postgres_server, postgres_dsn, databases):
    clock = FakeClock()
    database = databases(Database.postgres(postgres_dsn))
    running = TokenFactory(ISSUER, SqlKeyStore(database, clock=clock), 600, clock=clock)
    token = running.issue_token(JANE)
    running.list_public_keys()
    fresh = TokenFactory(
        ISSUER, SqlKeyStore(databases(Database.postgres(postgres_dsn)), clock=clock), 600,
        clock=clock,
    )  # fmt: skip
    postgres_server.stop()
    try:
        with pytest.raises(ServiceUnavailableError) as info:
            fresh.issue_token(JANE)
        assert info.value.status_code == 503
        clock.advance(5)
        # Verification goes on with the last good key list.
        assert verify(token, running.list_public_keys())["sub"] == "user:default/jane"
    finally:
        postgres_server.start()
    # The dropped connection is re-opened on next use.
    clock.advance(5)
    assert {k["kid"] for k in running.list_public_keys()} == {kid_of(token)}
    assert database.execute("SELECT 1") == [(1,)]
