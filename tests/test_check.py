"""wsgiauth.check: every problem of a set of config files, in one pass."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from tests.config_files import BASE
from tests.config_files import BROKEN
from tests.config_files import ENV
from tests.config_files import PRODUCTION
from tests.config_files import THREE_STAGES
from tests.config_files import write
from wsgiauth.check import check
from wsgiauth.check import check_config
from wsgiauth.check import describe
from wsgiauth.check import port_warning
from wsgiauth.check import render
from wsgiauth.config import Config
from wsgiauth.errors import ConfigError
from wsgiauth.loader import load_config


@pytest.fixture
def fake_app(monkeypatch):
    """Stand in for create_auth_app so check_config's app build is under the test's control."""
    import wsgiauth.check

    calls: list[Config] = []
    fake = types.SimpleNamespace(calls=calls, error=None)

    def create_auth_app(config):
        calls.append(config)
        if fake.error is not None:
            raise fake.error
        return object()

    monkeypatch.setattr(wsgiauth.check, "create_auth_app", create_auth_app)
    return fake


# --- check_config -----------------------------------------------------------------------


def test_check_config_lists_every_problem(fake_app):
    assert [str(error) for error in check_config(BROKEN, environ={})] == [
        f"{BROKEN}: app.baseUrl: expected an absolute http(s) URL, got 'localhost:3000'",
        f"{BROKEN}: backend.baseUrl: missing",
        f"{BROKEN}: auth.session.secret: expected a string or a list of strings, got a number",
        f"{BROKEN}: auth.experimentalExtraAllowedOrigins: expected a list of strings, got a string",
        f"{BROKEN}: auth.backstageTokenExpiration: expected a duration such as '1h', '30 days',"
        " 'PT1H' or {hours: 1}, got 'soon'",
        f"{BROKEN}: auth.providers.oidc: expected an object, got a string",
    ]


def test_check_config_clean(fake_app):
    assert check_config(BASE, PRODUCTION, environ=ENV) == []
    assert fake_app.calls[0].get_string("auth.environment") == "production"


def test_check_config_reports_app_build_errors(fake_app):
    config = load_config(BASE, environ=ENV)
    fake_app.error = config.error("auth.providers.oidc.development.metadataUrl", "unreachable")
    assert [str(e) for e in check_config(BASE, environ=ENV)] == [
        f"{BASE}: auth.providers.oidc.development.metadataUrl: unreachable"
    ]


def test_check_config_names_the_file_of_a_sourceless_error(fake_app):
    fake_app.error = ConfigError("cannot load provider", path="auth.providers.oidc")
    assert [str(e) for e in check_config(BASE, PRODUCTION, environ=ENV)] == [
        f"{PRODUCTION}: auth.providers.oidc: cannot load provider"
    ]


def test_check_config_does_not_repeat_a_key(fake_app):
    fake_app.error = ConfigError("missing", path="auth.session.secret", source=BASE)
    errors = check_config(BASE, environ={})
    assert [str(e) for e in errors] == [
        f"{BASE}: auth.session.secret: environment variable SESSION_SECRET is not set"
    ]


def test_check_config_collects_errors_across_files(tmp_path, fake_app):
    bad = write(tmp_path, "bad.yaml", "a: [\n")
    directive = write(tmp_path, "d.yaml", "x: {$env: NOPE}\ny: {$file: missing.txt}\n")
    errors = [str(e) for e in check_config(BASE, bad, directive, environ=ENV)]
    assert errors == [
        f"{bad}: invalid YAML at line 2: expected the node content, but found '<stream end>'"
        " (while parsing a flow node at line 2)",
        f"{directive}: y: $file {tmp_path}/missing.txt: No such file or directory",
        f"{directive}: x: environment variable NOPE is not set",
    ]


@pytest.mark.parametrize(
    ("base_urls", "message"),
    [
        pytest.param(
            ("ftp://x", "http://b"),
            "app.baseUrl: expected an absolute http(s) URL, got 'ftp://x'",
            id="app-scheme",
        ),
        pytest.param(
            ("http://a", "/api"),
            "backend.baseUrl: expected an absolute URL, got '/api'",
            id="backend-relative",
        ),
        pytest.param((None, "http://b"), "app.baseUrl: missing", id="app-missing"),
    ],
)
def test_check_config_base_urls(tmp_path, fake_app, base_urls, message):
    app, backend = base_urls
    text = (f"app: {{baseUrl: '{app}'}}\n" if app else "") + f"backend: {{baseUrl: '{backend}'}}\n"
    path = write(tmp_path, "a.yaml", text)
    assert [str(e) for e in check_config(path, environ={})] == [f"{path}: {message}"]


def test_check_config_secret_list(tmp_path, fake_app):
    text = "app: {baseUrl: 'http://a'}\nbackend: {baseUrl: 'http://b'}\n"
    text += "auth: {session: {secret: [a, '']}}\n"
    path = write(tmp_path, "a.yaml", text)
    assert [str(e) for e in check_config(path, environ={})] == [
        f"{path}: auth.session.secret: expected a string or a list of strings, got a list"
    ]
    Path(path).write_text(text.replace("''", "b"), encoding="utf-8")
    assert check_config(path, environ={}) == []


def test_empty_substitution_is_an_error(tmp_path):
    path = write(tmp_path, "a.yaml", "v: 'x${}'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"": "never"})
    assert str(info.value) == f"{path}: v: ${{}} names no variable (write $${{}} for a literal ${{)"


# --- every stage, with lines and suggestions --------------------------------------------


def test_three_problems_in_three_stages_are_all_reported_with_lines(tmp_path):
    """The acceptance case: a global key, the registry and a provider factory each fail."""
    path = write(tmp_path, "app-config.yaml", THREE_STAGES)
    errors = check_config(path, environ={})
    assert [(e.source, e.line, e.path, e.reason[:16], e.suggestion) for e in errors] == [
        (path, 1, "backend.baseUrl", "missing", ""),
        (path, 5, "auth.providers.githb", "unknown provider", "github"),
        (path, 9, "auth.providers.oidc.development.clientSecret", "missing", ""),
    ]


def test_each_provider_is_checked_on_its_own(tmp_path):
    text = """\
    app: {baseUrl: 'http://a'}
    backend: {baseUrl: 'http://b'}
    auth:
      providers:
        github:
          development: {clientId: a, clientSecrett: b}
        google:
          development: {clientId: a}
        guest: {userEntityRef: 12}
    """
    errors = check_config(write(tmp_path, "a.yaml", text), environ={})
    assert [(e.path, e.line, e.suggestion) for e in errors] == [
        ("auth.providers.github.development.clientSecrett", 6, "clientSecret"),
        ("auth.providers.google.development.clientSecret", 8, ""),
        ("auth.providers.guest.userEntityRef", 9, ""),
    ]


def test_global_parts_are_checked_on_their_own(tmp_path):
    text = """\
    app: {baseUrl: 'http://a'}
    backend:
      baseUrl: 'http://b'
      cors: {origin: 12}
    catalog:
      locations: [{type: url, target: x}]
    auth:
      audit: {hook: 'no_such_module_here:hook'}
    """
    errors = check_config(write(tmp_path, "a.yaml", text), environ={})
    assert [(e.path, e.line) for e in errors] == [
        ("backend.cors.origin", 4),
        ("catalog.locations[0].type", 6),
        ("auth.audit.hook", 8),
    ]


def test_a_far_off_provider_id_gets_no_suggestion(tmp_path):
    text = THREE_STAGES.replace("githb", "corporate-sso")
    errors = check_config(write(tmp_path, "a.yaml", text), environ={})
    assert errors[1].path == "auth.providers.corporate-sso"
    assert errors[1].suggestion == ""


def test_describe_is_the_json_shape(tmp_path):
    path = write(tmp_path, "app-config.yaml", THREE_STAGES)
    unknown = check_config(path, environ={})[1]
    assert describe(unknown) == {
        "file": path,
        "line": 5,
        "key": "auth.providers.githb",
        "message": unknown.reason,
        "severity": "error",
        "suggestion": "github",
    }
    assert render(unknown).startswith(f"{path}:5: auth.providers.githb: unknown provider (")
    assert render(unknown).endswith(" (did you mean 'github'?)")


# --- the port warning -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "port", "expected"),
    [
        pytest.param("http://localhost:7007", 7007, None, id="same"),
        pytest.param("http://localhost:7007", 8080, 7007, id="other"),
        pytest.param("http://backstage.example", 80, None, id="http-default"),
        pytest.param("https://backstage.example", 443, None, id="https-default"),
        pytest.param("https://backstage.example", 7007, 443, id="behind-tls"),
        pytest.param("http://localhost:7007", 0, None, id="random-port"),
        pytest.param("http://localhost:notaport", 7007, None, id="unreadable"),
    ],
)
def test_port_warning(url, port, expected):
    config = Config.from_dict({"backend": {"baseUrl": url}})
    warning = port_warning(config, port)
    if expected is None:
        assert warning is None
        return
    assert warning is not None
    assert warning.path == "backend.baseUrl"
    assert f"listens on port {port}, but {url} is on port {expected}" in warning.reason
    assert "proxy in front" in warning.reason


def test_check_reports_the_port_warning_apart_from_errors(fake_app):
    report = check([BASE], environ=ENV, port=8080)
    assert report.errors == []
    assert [(w.source, w.line, w.path) for w in report.warnings] == [(BASE, 5, "backend.baseUrl")]
    assert check([BASE], environ=ENV, port=7007).warnings == []
    assert check([BASE], environ=ENV).warnings == []


def test_a_missing_key_next_to_a_close_one_names_the_misspelling(tmp_path):
    """oidc does not check its keys: a misspelt clientSecrett shows as clientSecret missing."""
    text = THREE_STAGES.replace("clientId: wsgiauth-demo", "clientId: a\n        clientSecrett: b")
    errors = check_config(write(tmp_path, "a.yaml", text), environ={})
    assert [(e.path, e.line, e.reason) for e in errors[2:]] == [
        (
            "auth.providers.oidc.development.clientSecret",
            12,
            "missing; is 'clientSecrett' a misspelling of it?",
        )
    ]


def test_every_environment_of_a_provider_is_checked(tmp_path):
    text = """\
    app: {baseUrl: 'http://a'}
    backend: {baseUrl: 'http://b'}
    auth:
      providers:
        github:
          development: {clientId: a, clientSecrett: b}
          production: {clientSecret: b}
          staging:
            clientId: a
            clientSecret: b
            signIn: {resolvers: [{resolver: usernameMatchingUserEntityNam}]}
        guest:
          signIn: {resolvers: [{resolver: nope}]}
    """
    errors = check_config(write(tmp_path, "a.yaml", text), environ={})
    assert [(e.path, e.line, e.suggestion) for e in errors] == [
        ("auth.providers.github.development.clientSecrett", 6, "clientSecret"),
        ("auth.providers.github.production.clientId", 7, ""),
        (
            "auth.providers.github.staging.signIn.resolvers[0].resolver",
            11,
            "usernameMatchingUserEntityName",
        ),
        # Taking out guest's signIn to look further finds only what the removal caused.
        ("auth.providers.guest.signIn.resolvers[0].resolver", 13, ""),
    ]
