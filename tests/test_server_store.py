"""wsgiauth.server_store: the store a server's main process makes for its workers."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wsgiauth.errors import ConfigError
from wsgiauth.server_store import LOCK_FILE
from wsgiauth.server_store import SERVER_STORE_ENV
from wsgiauth.server_store import ServerStore
from wsgiauth.server_store import remove_abandoned_stores
from wsgiauth.server_store import server_store_path
from wsgiauth.server_store import single_process


def mode_of(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_a_store_is_a_private_directory_whatever_the_umask():
    previous = os.umask(0)
    try:
        store = ServerStore.create()
    finally:
        os.umask(previous)
    try:
        assert store.directory.is_dir()
        assert mode_of(store.directory) == 0o700
        assert store.path.parent == store.directory
        assert not store.path.exists()  # the first worker makes the file
    finally:
        store.remove()


def test_export_names_the_file_and_remove_deletes_it_with_its_variable():
    environ: dict[str, str] = {}
    store = ServerStore.create()
    store.export(environ)
    assert environ == {SERVER_STORE_ENV: str(store.path)}
    store.path.write_bytes(b"keys")
    (store.directory / "store.sqlite3-wal").write_bytes(b"log")

    store.remove(environ)

    assert not store.directory.exists()
    assert environ == {}


def test_remove_leaves_a_variable_that_names_another_store():
    environ = {SERVER_STORE_ENV: "/elsewhere/store.sqlite3"}
    ServerStore.create().remove(environ)
    assert environ == {SERVER_STORE_ENV: "/elsewhere/store.sqlite3"}


def test_a_forked_copy_does_not_remove_the_store(monkeypatch):
    store = ServerStore.create()
    try:
        monkeypatch.setattr(os, "getpid", lambda: -1)  # as in a worker forked from the master
        store.remove({})
        assert store.directory.is_dir()
    finally:
        monkeypatch.undo()
        store.remove({})
    assert not store.directory.exists()


def test_the_context_manager_removes_the_store(monkeypatch):
    monkeypatch.delenv(SERVER_STORE_ENV, raising=False)
    with ServerStore.create() as store:
        store.export()
        assert server_store_path() == store.path
    assert not store.directory.exists()
    assert SERVER_STORE_ENV not in os.environ


def test_no_variable_is_no_store():
    assert server_store_path({}) is None
    assert server_store_path({SERVER_STORE_ENV: ""}) is None


def test_a_relative_path_is_refused():
    with pytest.raises(ConfigError, match="not an absolute path"):
        server_store_path({SERVER_STORE_ENV: "store.sqlite3"})


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot use"):
        server_store_path({SERVER_STORE_ENV: str(tmp_path / "gone" / "store.sqlite3")})


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o770, 0o777, 0o720])
def test_a_directory_others_may_enter_is_refused(tmp_path, mode):
    # Whoever can write there can add a public key that every worker trusts.
    directory = tmp_path / "store"
    directory.mkdir()
    directory.chmod(mode)

    with pytest.raises(ConfigError, match="must be a directory of this user's only"):
        server_store_path({SERVER_STORE_ENV: str(directory / "store.sqlite3")})


def test_a_directory_of_another_user_is_refused(tmp_path, monkeypatch):
    directory = tmp_path / "store"
    directory.mkdir(mode=0o700)
    monkeypatch.setattr(os, "getuid", lambda: directory.stat().st_uid + 1)

    with pytest.raises(ConfigError, match="must be a directory of this user's only"):
        server_store_path({SERVER_STORE_ENV: str(directory / "store.sqlite3")})


def test_a_file_in_place_of_the_directory_is_refused(tmp_path):
    parent = tmp_path / "file"
    parent.write_text("")
    parent.chmod(0o600)

    with pytest.raises(ConfigError, match="must be a directory"):
        server_store_path({SERVER_STORE_ENV: str(parent / "store.sqlite3")})


def test_a_store_made_by_create_is_accepted():
    with ServerStore.create() as store:
        assert server_store_path({SERVER_STORE_ENV: str(store.path)}) == store.path


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("", False), ("0", False)])
def test_single_process_is_declared_by_one(value, expected):
    assert single_process({"WSGIAUTH_SINGLE_PROCESS": value}) is expected
    assert single_process({}) is False


# --- stores of servers that are gone ------------------------------------------------------

#: A main process that makes a store, maybe forks a worker that lives on, and dies by SIGKILL.
_KILLED_SERVER = """
import os, signal, sys, time
from pathlib import Path
from wsgiauth.server_store import ServerStore
store = ServerStore.create(Path(sys.argv[1]))
worker = os.fork() if sys.argv[2] == "with-worker" else None
if worker == 0:  # a worker forked from the main process: it holds the lock too
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)  # leaves the pipes to the test
    time.sleep(60)
    os._exit(0)
print(store.directory, worker or "", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_server(parent, worker: bool = False) -> tuple[Path, int | None]:
    """Run a server that is killed; its store's directory, and its worker's pid if any."""
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_SERVER, str(parent), "with-worker" if worker else "alone"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    directory, *worker_pid = done.stdout.split()
    assert (Path(directory) / LOCK_FILE).is_file()
    return Path(directory), int(worker_pid[0]) if worker_pid else None


def test_the_store_of_a_killed_server_is_removed_by_the_next_server(tmp_path):
    abandoned, _ = killed_server(tmp_path)

    store = ServerStore.create(tmp_path)
    try:
        assert not abandoned.exists()
        assert store.directory.is_dir()
    finally:
        store.remove()


def test_a_store_in_use_is_kept(tmp_path):
    first = ServerStore.create(tmp_path)
    try:
        second = ServerStore.create(tmp_path)  # the same process, or another one: locked
        assert first.directory.is_dir()
        second.remove()
        assert remove_abandoned_stores(tmp_path) == []
    finally:
        first.remove()


def test_a_store_whose_worker_outlives_the_killed_main_process_is_kept_until_it_ends(tmp_path):
    abandoned, worker = killed_server(tmp_path, worker=True)
    try:
        assert remove_abandoned_stores(tmp_path) == []
        assert abandoned.is_dir()
    finally:
        os.kill(worker, signal.SIGKILL)
    for _ in range(200):  # the worker is reaped by init, at once but not synchronously
        if remove_abandoned_stores(tmp_path) == [abandoned]:
            break
        time.sleep(0.05)
    assert not abandoned.exists()


def test_a_store_being_made_or_not_ours_is_left_alone(tmp_path, monkeypatch):
    being_made = tmp_path / "wsgiauth-server-new"
    being_made.mkdir()  # no lock file yet
    abandoned, _ = killed_server(tmp_path)
    monkeypatch.setattr(os, "getuid", lambda: os.geteuid() + 1)  # as if another user's

    assert remove_abandoned_stores(tmp_path) == []
    monkeypatch.undo()
    assert remove_abandoned_stores(tmp_path) == [abandoned]
    assert being_made.is_dir()
