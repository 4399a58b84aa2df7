"""Tests for the ``wsgiauth`` command: check-config in process, serve in a real subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.config_files import BASE
from tests.config_files import BROKEN
from tests.config_files import FILES
from tests.config_files import PRODUCTION
from tests.config_files import THREE_STAGES
from wsgiauth import cli
from wsgiauth.cli import main
from wsgiauth.server_store import SERVER_STORE_ENV
from wsgiauth.server_store import server_store_path

ROOT = Path(__file__).parent.parent
STARTUP_LIMIT = 30.0  # seconds; a bound on waiting, not an assertion on speed


@pytest.fixture(autouse=True)
def session_secret(monkeypatch):
    monkeypatch.setenv("SESSION_SECRET", "test-session-secret")
    monkeypatch.delenv("WSGIAUTH_CONFIG", raising=False)


def no_providers(tmp_path: Path) -> str:
    path = tmp_path / "no-providers.yaml"
    path.write_text(
        "app: {baseUrl: 'http://localhost:3000'}\nbackend: {baseUrl: 'http://localhost:7007'}\n"
    )
    return str(path)


# --- check-config -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "files",
    [
        pytest.param([BASE], id="minimal"),
        pytest.param([BASE, PRODUCTION], id="merged"),
    ],
)
def test_check_config_ok(capsys, files):
    assert main(["check-config", *files]) == 0
    out, err = capsys.readouterr()
    assert out == f"ok: {' '.join(files)}\n"
    assert err == ""


def test_check_config_reads_wsgiauth_config(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("WSGIAUTH_CONFIG", os.pathsep.join([no_providers(tmp_path), BROKEN]))
    assert main(["check-config"]) == 1
    assert "app.baseUrl" in capsys.readouterr().err


def test_check_config_broken(capsys):
    assert main(["check-config", BROKEN]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    keys = [
        ("app.baseUrl", 3),
        ("backend.baseUrl", 2),  # missing: named at the file's first line
        ("auth.session.secret", 6),
        ("auth.experimentalExtraAllowedOrigins", 8),
        ("auth.backstageTokenExpiration", 7),
        ("auth.providers.oidc", 10),
    ]
    assert [line.split(": ")[:2] for line in lines] == [
        [f"{BROKEN}:{line}", key] for key, line in keys
    ]


def test_check_config_syntax_error(capsys):
    path = str(FILES / "app-config.syntax-error.yaml")
    assert main(["check-config", path]) == 1
    assert capsys.readouterr().err == (
        f"{path}:5: invalid YAML at line 5: expected ',' or ']', but got ':'"
        " (while parsing a flow sequence at line 4)\n"
    )


def test_check_config_unset_variable(capsys, monkeypatch):
    monkeypatch.delenv("SESSION_SECRET")
    assert main(["check-config", BASE]) == 1
    assert capsys.readouterr().err == (
        f"{BASE}:9: auth.session.secret: environment variable SESSION_SECRET is not set\n"
    )


def test_check_config_prints_three_stages_with_lines(capsys, tmp_path):
    """The acceptance case: no backend.baseUrl, an unknown provider, no clientSecret."""
    path = tmp_path / "app-config.yaml"
    path.write_text(THREE_STAGES)
    assert main(["check-config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 3
    assert lines[0] == f"{path}:1: backend.baseUrl: missing"
    assert lines[1].startswith(f"{path}:5: auth.providers.githb: unknown provider (known: ")
    assert lines[1].endswith(" (did you mean 'github'?)")
    assert lines[2] == f"{path}:9: auth.providers.oidc.development.clientSecret: missing"


def test_check_config_json(capsys, tmp_path):
    path = tmp_path / "app-config.yaml"
    path.write_text(THREE_STAGES)
    assert main(["check-config", "--format", "json", str(path)]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    found = json.loads(out)
    assert [(p["file"], p["line"], p["key"], p["severity"], p["suggestion"]) for p in found] == [
        (str(path), 1, "backend.baseUrl", "error", None),
        (str(path), 5, "auth.providers.githb", "error", "github"),
        (str(path), 9, "auth.providers.oidc.development.clientSecret", "error", None),
    ]
    assert found[0]["message"] == "missing"


def test_check_config_json_clean(capsys):
    assert main(["check-config", "--format", "json", BASE]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_check_config_warns_of_another_port_without_failing(capsys):
    assert main(["check-config", "--port", "8080", BASE]) == 0
    out, err = capsys.readouterr()
    assert out == f"ok: {BASE}\n"
    assert err.startswith(f"{BASE}:5: backend.baseUrl: warning: the server listens on port 8080")
    assert main(["check-config", "--port", "7007", BASE]) == 0
    assert capsys.readouterr().err == ""
    assert main(["check-config", "--format", "json", "--port", "8080", BASE]) == 0
    [warning] = json.loads(capsys.readouterr().out)
    assert (warning["severity"], warning["key"], warning["line"]) == (
        "warning",
        "backend.baseUrl",
        5,
    )


def test_serve_warns_of_another_port(capsys):
    # The --app that cannot load stops serve before it listens, after the warning.
    argv = ["serve", "--port", "8080", "--config", BASE, "--app", "wsgiauth.demo:nothing"]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"wsgiauth: {BASE}:5: backend.baseUrl: warning: the server listens")
    assert err[1].startswith("wsgiauth: cannot load --app")


def test_check_config_without_files(capsys):
    assert main(["check-config"]) == 2
    assert "WSGIAUTH_CONFIG" in capsys.readouterr().err


# --- serve: failures before listening (in process) --------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--config", BROKEN], f"wsgiauth: {BROKEN}: ", id="broken-config"),
        pytest.param(
            ["--config", str(FILES / "nope.yaml")],
            f"wsgiauth: {FILES / 'nope.yaml'}: cannot read file",
            id="missing-file",
        ),
        pytest.param([], "wsgiauth: no config file given", id="no-config"),
        pytest.param(
            ["--config", "{no_providers}", "--app", "wsgiauth.demo:nothing"],
            "wsgiauth: cannot load --app wsgiauth.demo:nothing: ",
            id="missing-attribute",
        ),
        pytest.param(
            ["--config", "{no_providers}", "--app", "wsgiauth.demo"],
            "wsgiauth: cannot load --app wsgiauth.demo: expected package.module:attribute\n",
            id="no-colon",
        ),
        pytest.param(
            ["--config", "{no_providers}", "--app", "wsgiauth.demo:__doc__"],
            "wsgiauth: cannot load --app wsgiauth.demo:__doc__: str is not a WSGI callable\n",
            id="not-callable",
        ),
    ],
)
def test_serve_fails_cleanly(capsys, tmp_path, argv, message):
    argv = [arg.replace("{no_providers}", no_providers(tmp_path)) for arg in argv]
    assert main(["serve", "--port", "0", *argv]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(message)
    assert "Traceback" not in err
    assert "serving" not in out


# --- serve: a real server in a subprocess -----------------------------------------------


def without_granian(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import granian`` fails, as where it is not installed."""
    shadow = tmp_path / "no-granian"
    shadow.mkdir(exist_ok=True)
    (shadow / "granian.py").write_text("raise ImportError('granian is not installed')\n")
    return {"PYTHONPATH": os.pathsep.join([str(shadow), str(ROOT)])}


def start_server(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start ``wsgiauth serve --port 0`` and wait (bounded) for its banner; returns the URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsgiauth.cli", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
        cwd=ROOT,  # so that --app tests.test_cli:... imports
        text=True,
        start_new_session=True,  # a group of its own, granian's workers with it: see kill_server
    )
    deadline = time.monotonic() + STARTUP_LIMIT
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline and proc.poll() is None:
            if selector.select(timeout=0.2):
                line = proc.stdout.readline()
                prefix = "wsgiauth serving on "
                if line.startswith(prefix):
                    return proc, line[len(prefix) :].strip()
    _, err = kill_server(proc)
    raise AssertionError(f"server did not start (exit {proc.returncode}): {err}")


def stop_server(proc: subprocess.Popen, sig: int = signal.SIGINT) -> tuple[int, str]:
    """Stop the server as Ctrl-C does (SIGINT), killing it if it lingers; (exit code, stderr)."""
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        kill_server(proc)
        raise AssertionError("the server did not stop within 10 s") from None
    return proc.returncode, err


def kill_server(proc: subprocess.Popen) -> tuple[str, str]:
    """SIGKILL the server's process group: granian's workers too, which hold its pipes."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.communicate()


@pytest.fixture
def server(request):
    """A served config: the parameter is the extra command line; killed at teardown."""
    proc, url = start_server(*getattr(request, "param", ("--config", BASE)))
    request.addfinalizer(lambda: stop_server(proc))
    return url


def fetch_full(url: str, headers: dict[str, str] | None = None):
    """(status, Content-Type, body, response headers) of a GET."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return (
                response.status,
                response.headers["Content-Type"],
                response.read(),
                response.headers,
            )
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read(), error.headers


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """(status, Content-Type, body) of a GET."""
    status, content_type, body, _ = fetch_full(url, headers)
    return status, content_type, body


def test_serve_wraps_the_demo_portal(server):
    assert server.startswith("http://127.0.0.1:")
    status, content_type, body = fetch(server + "/")
    assert (status, content_type) == (200, "text/html; charset=utf-8")
    assert b"<title>wsgiauth demo portal</title>" in body

    # The portal got the served config (configure()): its providers are the config's.
    status, content_type, body = fetch(server + "/api/providers")
    assert (status, content_type) == (200, "application/json; charset=utf-8")
    assert [p["id"] for p in json.loads(body)["providers"]] == ["oidc"]

    # /api/me is in the portal's protected_paths: IdentityMiddleware answers (with its
    # WWW-Authenticate challenge) before the portal runs.
    status, _, body, headers = fetch_full(server + "/api/me")
    assert status == 401
    assert json.loads(body)["error"]["name"] == "AuthenticationError"
    assert headers["WWW-Authenticate"] == "Bearer"


def test_serve_answers_auth_paths(server):
    status, content_type, body = fetch(server + "/api/auth/nope/start?env=development")
    assert status == 404
    assert content_type.startswith("application/json")
    payload = json.loads(body)
    assert payload["error"]["name"] == "NotFoundError"
    assert payload["response"] == {"statusCode": 404}


@pytest.mark.parametrize("server", [("--bare", "--config", BASE)], indirect=True, ids=["bare"])
def test_serve_bare(server):
    assert fetch(server + "/")[0] == 404
    status, content_type, _ = fetch(server + "/api/auth/nope/start?env=development")
    assert (status, content_type.split(";")[0]) == (404, "application/json")


def test_serve_config_from_environment(tmp_path):
    proc, url = start_server(env={"WSGIAUTH_CONFIG": no_providers(tmp_path)})
    try:
        assert fetch(url + "/api/providers")[0] == 200
    finally:
        stop_server(proc)


@pytest.mark.parametrize("granian", [True, False], ids=["granian", "stdlib"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize(
    ("flags", "logged"),
    [pytest.param((), False, id="quiet"), pytest.param(("--access-log",), True, id="access-log")],
)
def test_serve_logs_requests_only_when_asked_and_stops_on_a_signal(
    tmp_path, flags, logged, sig, granian
):
    env = None if granian else without_granian(tmp_path)
    proc, url = start_server("--config", BASE, "--workers", "1", *flags, env=env)
    try:
        assert fetch(url + "/api/providers")[0] == 200
    finally:
        code, err = stop_server(proc, sig)
    assert code == 0
    assert ('"GET /api/providers HTTP/1.1" 200' in err) is logged
    assert "Traceback" not in err


# --- serve: granian, or the standard server without it ----------------------------------


def test_serve_falls_back_to_the_standard_server_without_granian(tmp_path):
    proc, url = start_server("--config", BASE, env=without_granian(tmp_path))
    try:
        assert fetch(url + "/api/providers")[0] == 200
    finally:
        code, err = stop_server(proc, signal.SIGTERM)
    assert code == 0
    assert err.splitlines() == [
        "wsgiauth: granian is not installed (pip install 'wsgiauth[serve]'): serving on "
        "the standard library's server, which is for development only"
    ]


def test_serve_flag_defaults():
    args = cli._parser().parse_args(["serve"])
    assert args.workers == cli._cpus() >= 1
    assert (args.threads, args.backlog, args.access_log) == (4, 1024, False)


@pytest.mark.parametrize("flag", ["--workers", "--threads", "--backlog"])
@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_serve_refuses_a_count_below_one(capsys, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        cli._parser().parse_args(["serve", flag, value])
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


class FakeGranian:
    """Stands in for ``granian.Granian``: records what ``wsgiauth serve`` asked for."""

    made: list[FakeGranian] = []

    def __init__(self, target, **options):
        self.target = target
        self.options = options
        self.hooks = []
        self.environ = {}
        FakeGranian.made.append(self)

    def on_startup(self, hook):
        self.hooks.append(hook)

    def serve(self):
        """Listen as a worker would, run the startup hooks, and wait for the banner."""
        self.environ = {k: os.environ.get(k) for k in ("WSGIAUTH_CONFIG", "WSGIAUTH_APP")}
        with socket.socket() as listening:
            listening.bind((self.options["address"], self.options["port"]))
            listening.listen()
            for hook in self.hooks:
                hook()
            for thread in threading.enumerate():
                if thread.name == "wsgiauth-banner":
                    thread.join(STARTUP_LIMIT)


@pytest.fixture
def fake_granian(monkeypatch):
    import granian

    FakeGranian.made.clear()
    monkeypatch.setattr(granian, "Granian", FakeGranian)
    # The command hands the config to granian's workers through the environment.
    monkeypatch.delenv("WSGIAUTH_APP", raising=False)
    return FakeGranian.made


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        pytest.param(
            [],
            {"workers": cli._cpus(), "blocking_threads": 4, "backlog": 1024, "log_access": False},
            id="defaults",
        ),
        pytest.param(
            ["--workers", "3", "--threads", "2", "--backlog", "256", "--access-log"],
            {"workers": 3, "blocking_threads": 2, "backlog": 256, "log_access": True},
            id="given",
        ),
    ],
)
def test_serve_runs_granian_with_the_flags(capsys, fake_granian, flags, expected):
    assert main(["serve", "--port", "0", "--config", BASE, *flags]) == 0
    (server,) = fake_granian
    assert server.target == "wsgiauth.wsgi:application"
    assert str(server.options.pop("interface")) == "wsgi"
    assert {key: server.options[key] for key in expected} == expected
    assert server.options["address"] == "127.0.0.1"
    assert server.options["workers_kill_timeout"] == cli.GRACEFUL_TIMEOUT
    # Each worker builds the stack from the environment, as wsgiauth.wsgi:application does.
    assert server.environ == {
        "WSGIAUTH_CONFIG": os.path.abspath(BASE),
        "WSGIAUTH_APP": "wsgiauth.demo:application",
    }
    port = server.options["port"]
    assert port > 0  # 0 picks a free port, named in the banner
    assert capsys.readouterr().out == f"wsgiauth serving on http://127.0.0.1:{port}\n"


def test_serve_bare_on_granian_serves_no_app(fake_granian, monkeypatch, tmp_path):
    monkeypatch.setenv("WSGIAUTH_APP", "tests.test_cli:echo_identity")
    paths = [BASE, no_providers(tmp_path)]
    assert main(["serve", "--port", "0", "--bare", "--config", paths[0], "--config", paths[1]]) == 0
    (server,) = fake_granian
    assert server.environ == {"WSGIAUTH_CONFIG": os.pathsep.join(paths), "WSGIAUTH_APP": None}


@pytest.mark.parametrize(("outcome", "status"), [(None, 0), (SystemExit(1), 1)])
def test_serve_on_granian_shares_a_private_store_and_removes_it(
    fake_granian, monkeypatch, outcome, status
):
    seen = {}

    def serve(self):
        """What a worker sees: the store's file, in a directory of this user's only."""
        seen["path"] = server_store_path()
        seen["mode"] = stat.S_IMODE(seen["path"].parent.stat().st_mode)
        if outcome is not None:
            raise outcome  # granian's exit when a worker failed to boot

    monkeypatch.setattr(FakeGranian, "serve", serve)
    monkeypatch.delenv(SERVER_STORE_ENV, raising=False)

    assert main(["serve", "--port", "0", "--config", BASE]) == status

    assert seen["mode"] == 0o700
    assert not seen["path"].parent.exists()
    assert SERVER_STORE_ENV not in os.environ


def test_serve_on_granian_refuses_a_port_in_use(capsys, fake_granian):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--config", BASE]) == 2
    assert fake_granian == []
    # The last line: the port warning (backend.baseUrl names 7007) comes first.
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith(f"wsgiauth: cannot listen on 127.0.0.1:{port}: ")


# --- serve: the wrapped app -------------------------------------------------------------


def echo_identity(environ, start_response):
    """A plain WSGI app (no configure()): shows what the CLI's stack hands it."""
    identity = environ.get("wsgiauth.identity")
    body = json.dumps(
        {
            "identity": identity.user_entity_ref if identity is not None else None,
            "remoteUser": environ.get("REMOTE_USER"),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


class _BadConfigure:
    def __call__(self, environ, start_response):  # pragma: no cover - never served
        raise AssertionError("served without configure()")

    def configure(self, config):
        return "not an app"


bad_configure = _BadConfigure()


def guest_config(tmp_path: Path) -> str:
    path = tmp_path / "guest.yaml"
    path.write_text(
        "app: {baseUrl: 'http://127.0.0.1:7007'}\n"
        "backend: {baseUrl: 'http://127.0.0.1:7007'}\n"
        "auth: {environment: development, providers: {guest: {}}}\n"
    )
    return str(path)


def test_serve_offers_the_identity_to_a_plain_app(tmp_path):
    app = "tests.test_cli:echo_identity"
    proc, url = start_server("--config", guest_config(tmp_path), "--app", app)
    try:
        status, _, body = fetch(url + "/whoami")
        assert (status, json.loads(body)) == (200, {"identity": None, "remoteUser": None})

        status, _, body = fetch(url + "/api/auth/guest/refresh")
        token = json.loads(body)["backstageIdentity"]["token"]
        status, _, body = fetch(url + "/whoami", {"Authorization": f"Bearer {token}"})
        guest = "user:development/guest"
        assert (status, json.loads(body)) == (200, {"identity": guest, "remoteUser": guest})

        # Nothing is protected unless the app says so: a bad token is just no identity.
        status, _, body = fetch(url + "/whoami", {"Authorization": "Bearer nope"})
        assert (status, json.loads(body)["identity"]) == (200, None)
    finally:
        stop_server(proc)


def test_serve_refuses_a_configure_that_returns_no_app(capsys, tmp_path):
    argv = ["serve", "--port", "0", "--config", no_providers(tmp_path)]
    assert main([*argv, "--app", "tests.test_cli:bad_configure"]) == 2
    out, err = capsys.readouterr()
    assert err == (
        "wsgiauth: cannot load --app tests.test_cli:bad_configure: "
        "configure() returned str, not a WSGI callable\n"
    )
    assert "serving" not in out
