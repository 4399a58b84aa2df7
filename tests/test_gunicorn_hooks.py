"""wsgiauth.gunicorn_hooks: gunicorn's master makes the server store and removes it."""

from __future__ import annotations

import atexit
import logging
import os
import stat
import types
from pathlib import Path

import pytest

from wsgiauth import gunicorn_hooks
from wsgiauth.server_store import SERVER_STORE_ENV
from wsgiauth.server_store import server_store_path


@pytest.fixture
def at_exit(monkeypatch):
    """What the hooks register to run when the process exits, recorded instead."""
    registered = []
    monkeypatch.setattr(atexit, "register", lambda *call: registered.append(call))
    return registered


@pytest.fixture
def server(monkeypatch, at_exit):
    """What the hooks use of gunicorn's Arbiter: its log and config."""
    monkeypatch.delenv(SERVER_STORE_ENV, raising=False)
    monkeypatch.setattr(gunicorn_hooks, "_store", None)
    arbiter = types.SimpleNamespace(
        log=logging.getLogger("test.gunicorn"), cfg=types.SimpleNamespace(workers=4)
    )
    yield arbiter
    gunicorn_hooks.on_exit(arbiter)


def test_on_starting_hands_the_workers_a_private_store(server, caplog):
    with caplog.at_level(logging.INFO, logger="test.gunicorn"):
        gunicorn_hooks.on_starting(server)

    path = Path(os.environ[SERVER_STORE_ENV])
    assert server_store_path() == path
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert str(path) in caplog.text


def test_on_exit_removes_the_store_and_its_variable(server):
    gunicorn_hooks.on_starting(server)
    path = Path(os.environ[SERVER_STORE_ENV])
    path.write_bytes(b"keys")

    gunicorn_hooks.on_exit(server)

    assert not path.parent.exists()
    assert SERVER_STORE_ENV not in os.environ
    gunicorn_hooks.on_exit(server)  # twice is harmless


def test_on_starting_again_keeps_the_same_store(server):
    # gunicorn calls on_starting once per master; a config calling it too changes nothing.
    gunicorn_hooks.on_starting(server)
    first = os.environ[SERVER_STORE_ENV]
    gunicorn_hooks.on_starting(server)
    assert os.environ[SERVER_STORE_ENV] == first


def test_a_master_that_exits_without_on_exit_still_removes_the_store(server, at_exit):
    gunicorn_hooks.on_starting(server)
    directory = Path(os.environ[SERVER_STORE_ENV]).parent
    [(hook, argument)] = at_exit
    assert argument is server

    hook(argument)  # as at the interpreter's exit

    assert not directory.exists()


def test_post_fork_tells_the_worker_its_threads(monkeypatch):
    from wsgiauth.bulkhead import THREADS_ENV

    monkeypatch.delenv(THREADS_ENV, raising=False)
    worker = types.SimpleNamespace(cfg=types.SimpleNamespace(threads=6))
    gunicorn_hooks.post_fork(None, worker)
    assert os.environ[THREADS_ENV] == "6"
