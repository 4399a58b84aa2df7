"""gunicorn server hooks: the workers of one server share a store and know their threads.

One line in a gunicorn config file (``examples/gunicorn.conf.py`` has it)::

    from wsgiauth.gunicorn_hooks import on_exit, on_starting, post_fork  # noqa: F401

gunicorn's master runs :func:`on_starting` before it forks any worker: it makes the
server's store (:class:`~wsgiauth.server_store.ServerStore`) and names it in the
master's environment, which the workers inherit, so a config that keeps keys "in
memory" (Backstage's development config) shares them between the workers for as
long as the server runs. :func:`on_exit` removes the store when the master stops.
:func:`post_fork` tells each worker its thread count, which sizes the cap on calls in
flight to one identity provider (:mod:`wsgiauth.bulkhead`). A config that defines
these hooks itself calls them from its own.

Without the hooks, ``wsgiauth.wsgi:application`` refuses such a config (it cannot
tell how many workers gunicorn runs). With ``--preload`` the app is built before
``on_starting`` runs, so the hooks come too late: use a SQLite file or PostgreSQL.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

from .bulkhead import THREADS_ENV
from .server_store import ServerStore

__all__ = ["on_exit", "on_starting", "post_fork"]

_store: ServerStore | None = None


def on_starting(server: Any) -> None:
    """gunicorn's ``on_starting`` hook (master, before the workers): make the server store."""
    global _store
    if _store is None:
        _store = ServerStore.create()
        # Also when the master stops before on_exit can run (a port it cannot bind).
        atexit.register(on_exit, server)
    _store.export()
    server.log.info("wsgiauth: the workers share %s where the config asks for memory", _store.path)


def on_exit(server: Any) -> None:
    """gunicorn's ``on_exit`` hook (master, stopping): remove the server store."""
    global _store
    if _store is not None:
        _store.remove()
        _store = None


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn's ``post_fork`` hook (each worker, before it loads the app): its threads.

    Each provider may then hold half of them in outbound calls, so a slow one cannot
    starve the rest (``auth.outbound.maxConcurrentCalls`` overrides it).
    """
    os.environ[THREADS_ENV] = str(worker.cfg.threads)
