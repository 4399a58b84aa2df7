"""The store that the workers of one server share in place of "in memory".

Backstage's development config keeps keys and user info in memory
(``backend.database.connection: ':memory:'``, or ``auth.keyStore.provider:
memory``), which means "nothing survives a restart". A server with several worker
processes would give each worker a memory of its own: a token signed by one
worker would not verify at another. So the server's main process, which outlives
its workers and knows them (``wsgiauth serve``, or gunicorn's master through
:mod:`wsgiauth.gunicorn_hooks`), makes a private temporary directory (0700) for one
SQLite file, names the file to its workers in ``WSGIAUTH_SERVER_STORE``, and
removes the directory when it stops. In a worker,
:func:`~wsgiauth.identity.database_config.database_from_config` and
:func:`~wsgiauth.identity.key_stores.key_store_from_config` then use that file where
the config asks for memory.

The store is per server and per host: several hosts need PostgreSQL.

A main process killed with SIGKILL cannot remove its store. So the owner holds an
exclusive ``flock`` on a file in the directory for as long as it (or a worker it
forked) lives, and :meth:`ServerStore.create` first removes the stores of this user
whose lock nobody holds any more. The kernel drops a lock when its last holder dies,
however it dies, and the test holds in any PID namespace that shares the directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from collections.abc import MutableMapping
from pathlib import Path

from .errors import ConfigError

__all__ = [
    "SERVER_STORE_ENV",
    "SINGLE_PROCESS_ENV",
    "ServerStore",
    "remove_abandoned_stores",
    "server_store_path",
    "single_process",
]

#: The SQLite file of the server's store, set by the server's main process for its workers.
SERVER_STORE_ENV = "WSGIAUTH_SERVER_STORE"
#: ``1`` declares that the server runs the app in one process only: memory is then fine.
SINGLE_PROCESS_ENV = "WSGIAUTH_SINGLE_PROCESS"
#: The file's name in the store's directory.
STORE_FILE = "store.sqlite3"
#: The file the owner keeps locked while the store is in use.
LOCK_FILE = "owner.lock"
#: How the stores' directories are named in the temporary directory.
_PREFIX = "wsgiauth-server-"

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locks, stale stores stay
    fcntl = None  # type: ignore[assignment]


class ServerStore:
    """A server's store: made by its main process, removed by that process when it stops.

    The SQLite file itself is made by the first worker that opens it; its directory
    is readable and writable by this user only, as the file holds the public keys
    that every worker trusts.
    """

    def __init__(self, directory: Path, lock_fd: int | None = None) -> None:
        self.directory = directory
        #: The SQLite file the workers open.
        self.path = directory / STORE_FILE
        self._owner = os.getpid()
        self._lock_fd = lock_fd

    @classmethod
    def create(cls, parent: Path | None = None) -> ServerStore:
        """A new, empty store in a private temporary directory (mode 0700).

        The stores in ``parent`` (the temporary directory by default) that no living
        process holds are removed first.
        """
        parent = Path(tempfile.gettempdir()) if parent is None else parent
        remove_abandoned_stores(parent)
        directory = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=parent))
        # mkdtemp asks for 0700 less the umask; one that takes the owner's bits away
        # would leave a directory the workers cannot write to.
        os.chmod(directory, 0o700)
        return cls(directory, _hold_lock(directory))

    def export(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Name the store's file in ``environ`` (this process's), for workers to inherit."""
        (os.environ if environ is None else environ)[SERVER_STORE_ENV] = str(self.path)

    def remove(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Delete the directory and its files, in the process that made it only.

        A worker forked from the main process holds a copy of this object; it must not
        remove what the other workers still use.
        """
        if os.getpid() != self._owner:
            return
        environ = os.environ if environ is None else environ
        if environ.get(SERVER_STORE_ENV) == str(self.path):
            del environ[SERVER_STORE_ENV]
        shutil.rmtree(self.directory, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> ServerStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


def _hold_lock(directory: Path) -> int | None:
    """Lock a new file, then name it :data:`LOCK_FILE`: never seen unlocked by a sweep."""
    if fcntl is None:  # pragma: no cover - not POSIX
        return None
    pending = directory / f".{LOCK_FILE}"
    fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.rename(pending, directory / LOCK_FILE)
    return fd


def remove_abandoned_stores(parent: Path) -> list[Path]:
    """Remove this user's stores in ``parent`` whose owner died (its lock is free).

    A store without a lock file (one being made right now) is left alone.
    Returns the directories removed.
    """
    if fcntl is None:  # pragma: no cover - not POSIX
        return []
    removed = []
    for directory in parent.glob(f"{_PREFIX}*"):
        with contextlib.suppress(OSError):
            info = directory.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError: its owner lives
                shutil.rmtree(directory)
            finally:
                os.close(fd)
            removed.append(directory)
            log.info("Removed the server store of a server that is gone: %s", directory)
    return removed


def server_store_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The server store's file named by ``WSGIAUTH_SERVER_STORE``, or None when unset.

    :param environ: the process environment by default.
    :raises ConfigError: a relative path, or a directory that is not this user's alone
        (whoever can write to it can add a key that every worker trusts).
    """
    value = (os.environ if environ is None else environ).get(SERVER_STORE_ENV, "")
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute():
        raise ConfigError(f"{SERVER_STORE_ENV}: not an absolute path: {value}")
    try:
        info = path.parent.stat()
    except OSError as exc:
        raise ConfigError(f"{SERVER_STORE_ENV}: cannot use {path.parent}: {exc.strerror}") from exc
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.getuid()
        or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    ):
        raise ConfigError(
            f"{SERVER_STORE_ENV}: {path.parent} must be a directory of this user's only "
            "(mode 0700), as the server's main process makes it"
        )
    return path


def single_process(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``WSGIAUTH_SINGLE_PROCESS=1`` declares that the app runs in one process.

    :param environ: the process environment by default.
    """
    return (os.environ if environ is None else environ).get(SINGLE_PROCESS_ENV, "") == "1"
