"""gunicorn settings for wsgiauth: ``gunicorn -c examples/gunicorn.conf.py``.

Serves ``wsgiauth.wsgi:application``: the auth app built from the app-config
files in ``WSGIAUTH_CONFIG``, bare, or wrapping the app named by
``WSGIAUTH_APP`` (``package.module:attr``). Every setting here can be
overridden on the command line (``--bind``, ``--workers`` ...), and the
environment variables below tune it without editing the file.

Several workers share what must be shared (see docs/deployment.md, "Many
workers and hosts"): a key store every worker reads (the default SQLite file
on one host, PostgreSQL across hosts) and the same ``auth.session.secret``. A
login may start on one worker and finish on another; a token signed by one
verifies on all. The hooks imported below give the workers of this server one
store for what the config keeps "in memory" (Backstage's development config,
``backend.database.connection: ':memory:'``); the master removes it when it
stops. Without them, such a config refuses to start.
"""

import os

# The server store for in-memory configs (wsgiauth.server_store): made in the master
# before it forks the workers, removed when it exits; and each worker's thread count,
# which sizes the cap on calls in flight to one identity provider (wsgiauth.bulkhead).
# Call them from your own on_starting/on_exit/post_fork if you define those.
from wsgiauth.gunicorn_hooks import on_exit  # noqa: F401
from wsgiauth.gunicorn_hooks import on_starting  # noqa: F401
from wsgiauth.gunicorn_hooks import post_fork  # noqa: F401

# The app: the entry point, and its config (several files: "base.yaml:prod.yaml").
wsgi_app = "wsgiauth.wsgi:application"
raw_env = [
    f"WSGIAUTH_CONFIG={os.environ.get('WSGIAUTH_CONFIG', 'app-config.yaml')}",
]

# Loopback only: put a TLS-terminating proxy in front and point backend.baseUrl at
# its external https URL. wsgiauth never reads X-Forwarded-* headers.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:7007")

# Processes for the CPU (signing and verifying tokens is CPU work), threads for the
# waits (the identity provider, the database). The project's benchmarks measured
# gthread faster than sync for every auth endpoint, with about the same memory.
workers = int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) + 1)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))


# Outbound calls time out by themselves (10 s to an OpenID provider by default), so a
# worker silent for longer than this is stuck, not busy.
timeout = 30
graceful_timeout = 30  # requests in flight get this long to finish on restart or stop
keepalive = 5  # seconds; keep above nothing in front closing idle connections sooner

# Request limits in front of wsgiauth's own (it answers 431/413 itself past 32 KB of
# headers and 64 KB of body): a chunked refresh-token cookie needs a long Cookie line.
limit_request_line = 8190
limit_request_field_size = 16380

# The control socket (gunicorn >= 27) is a Unix socket in $HOME for `gunicornc`;
# nothing here uses it, and two servers of one user would fight over its path.
control_socket_disable = True  # older versions ignore unknown settings

# Logs on stderr, for the service manager. The access log names the worker (pid) and
# leaves out the query string, the referrer, cookies and Authorization: callbacks
# carry the authorization code and state in the query, requests carry tokens. The
# path is SCRIPT_NAME + PATH_INFO, as mounts (wsgiauth's own) move the prefix.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = (
    '%(h)s %(t)s pid=%(p)s "%(m)s %({script_name}e)s%(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
)
