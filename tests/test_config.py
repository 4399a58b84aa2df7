"""Tests for wsgiauth.config: the typed reader, file loading, merging, substitution, checks."""

from __future__ import annotations

import json
import re
import sys
import textwrap
import types
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsgiauth.config import Config
from wsgiauth.config import check_config
from wsgiauth.config import load_config
from wsgiauth.errors import ConfigError

FILES = Path(__file__).parent / "files"
BASE = str(FILES / "app-config.yaml")
PRODUCTION = str(FILES / "app-config.production.yaml")
ENV = {"SESSION_SECRET": "s3cret"}
HINT = "expected a duration such as '1h', '30 days', 'PT1H' or {hours: 1}"


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


@pytest.fixture
def fake_app(monkeypatch):
    """Stand in for wsgiauth.app so check_config's app build is under the test's control."""
    module = types.ModuleType("wsgiauth.app")
    module.calls = []

    def create_auth_app(config):
        module.calls.append(config)
        if module.error is not None:
            raise module.error
        return object()

    module.error = None
    module.create_auth_app = create_auth_app
    monkeypatch.setitem(sys.modules, "wsgiauth.app", module)
    return module


# --- the reader -------------------------------------------------------------------------

READER = Config.from_dict(
    {
        "auth": {
            "environment": "development",
            "flag": True,
            "flag_text": "FALSE",
            "port": 7007,
            "ratio": 0.5,
            "port_text": "8080",
            "gone": None,
            "origins": ["https://a.example", "https://b.example"],
            "scopes": "read:user repo,gist|openid",
            "scope_list": ["a b", "c"],
            "providers": {"oidc": {"development": {"clientId": "abc"}}},
            "resolvers": [{"resolver": "one"}, {"resolver": "two"}],
        }
    },
    source="app-config.yaml",
)


@pytest.mark.parametrize(
    ("method", "key", "expected"),
    [
        pytest.param("get_string", "auth.environment", "development", id="string"),
        pytest.param("get_optional_string", "auth.missing", None, id="optional-string-missing"),
        pytest.param("get_optional_string", "auth.gone", None, id="null-is-missing"),
        pytest.param("get_bool", "auth.flag", True, id="bool"),
        pytest.param("get_bool", "auth.flag_text", False, id="bool-from-string"),
        pytest.param("get_optional_bool", "nowhere.at.all", None, id="optional-bool-missing"),
        pytest.param("get_number", "auth.port", 7007, id="int"),
        pytest.param("get_number", "auth.ratio", 0.5, id="float"),
        pytest.param("get_number", "auth.port_text", 8080, id="number-from-string"),
        pytest.param("get_optional_number", "auth.missing", None, id="optional-number-missing"),
        pytest.param(
            "get_string_list",
            "auth.origins",
            ["https://a.example", "https://b.example"],
            id="string-list",
        ),
        pytest.param("get_optional_string_list", "auth.missing", None, id="optional-list"),
        pytest.param(
            "get_optional_string_or_list",
            "auth.scopes",
            ["read:user", "repo", "gist", "openid"],
            id="scopes-string-split",
        ),
        pytest.param(
            "get_optional_string_or_list", "auth.scope_list", ["a", "b", "c"], id="scopes-list"
        ),
        pytest.param("get_optional_string_or_list", "auth.missing", None, id="scopes-missing"),
        pytest.param("get", "auth.providers.oidc.development.clientId", "abc", id="raw-dotted"),
        pytest.param("get", "auth.missing.deeper", None, id="raw-missing"),
        pytest.param("has", "auth.providers.oidc", True, id="has"),
        pytest.param("has", "auth.gone", False, id="has-null"),
        pytest.param("get_optional_config", "auth.missing", None, id="optional-config-missing"),
        pytest.param("get_optional_config_list", "auth.missing", None, id="optional-list-missing"),
    ],
)
def test_accessors_read_values(method, key, expected):
    assert getattr(READER, method)(key) == expected


def test_subtree_keeps_its_path_and_keys():
    oidc = READER.get_config("auth.providers.oidc")
    assert oidc.path == "auth.providers.oidc"
    assert oidc.keys() == ["development"]
    assert oidc.get_config("development").get_string("clientId") == "abc"
    assert READER.path == ""
    assert "gone" not in READER.get_config("auth").keys()


def test_config_list_elements_know_their_index():
    resolvers = READER.get_config_list("auth.resolvers")
    assert [r.get_string("resolver") for r in resolvers] == ["one", "two"]
    assert resolvers[1].path == "auth.resolvers[1]"
    assert str(resolvers[1].error("allowedDomains", "missing")) == (
        "app-config.yaml: auth.resolvers[1].allowedDomains: missing"
    )


@pytest.mark.parametrize(
    ("method", "key", "message"),
    [
        pytest.param("get_string", "auth.missing", "auth.missing: missing", id="missing"),
        pytest.param(
            "get_string", "auth.port", "auth.port: expected a string, got a number", id="num"
        ),
        pytest.param(
            "get_string", "auth.origins", "auth.origins: expected a string, got a list", id="list"
        ),
        pytest.param(
            "get_bool",
            "auth.environment",
            "auth.environment: expected a boolean, got a string",
            id="bool",
        ),
        pytest.param(
            "get_number", "auth.flag", "auth.flag: expected a number, got a boolean", id="num-bool"
        ),
        pytest.param(
            "get_config",
            "auth.environment",
            "auth.environment: expected an object, got a string",
            id="config",
        ),
        pytest.param("get_config", "auth.missing", "auth.missing: missing", id="config-missing"),
        pytest.param(
            "get_config_list",
            "auth.providers",
            "auth.providers: expected a list of objects, got an object",
            id="config-list",
        ),
        pytest.param(
            "get_config_list",
            "auth.origins",
            "auth.origins[0]: expected an object, got a string",
            id="config-list-element",
        ),
        pytest.param(
            "get_string_list",
            "auth.scopes",
            "auth.scopes: expected a list of strings, got a string",
            id="string-list",
        ),
        pytest.param(
            "get_string_list",
            "auth.resolvers",
            "auth.resolvers[0]: expected a string, got an object",
            id="string-list-element",
        ),
        pytest.param(
            "get_optional_string_or_list",
            "auth.port",
            "auth.port: expected a string or a list of strings, got a number",
            id="string-or-list",
        ),
        pytest.param(
            "get_string",
            "auth.environment.name",
            "auth.environment: expected an object, got a string",
            id="dotted-through-scalar",
        ),
        pytest.param(
            "get_optional_duration_seconds",
            "auth.flag",
            f"auth.flag: {HINT}, got a boolean",
            id="duration",
        ),
    ],
)
def test_accessor_errors_name_source_key_and_expected_type(method, key, message):
    with pytest.raises(ConfigError) as info:
        getattr(READER, method)(key)
    assert str(info.value) == f"app-config.yaml: {message}"
    assert info.value.source == "app-config.yaml"
    assert info.value.path == message.split(": ")[0]


def test_empty_string_is_not_a_string_value():
    config = Config.from_dict({"clientId": ""})
    with pytest.raises(
        ConfigError, match=r"^<dict>: clientId: expected a string, got an empty string$"
    ):
        config.get_optional_string("clientId")


def test_error_on_subtree_names_full_key():
    config = READER.get_config("auth.providers.oidc.development")
    error = config.error("clientSecret", "missing")
    assert (error.source, error.path) == (
        "app-config.yaml",
        "auth.providers.oidc.development.clientSecret",
    )
    assert str(error) == "app-config.yaml: auth.providers.oidc.development.clientSecret: missing"


# --- durations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param(3600, 3600.0, id="number-is-seconds"),
        pytest.param(1.5, 1.5, id="float-seconds"),
        pytest.param("1h", 3600.0, id="1h"),
        pytest.param("10m", 600.0, id="10m"),
        pytest.param("3600s", 3600.0, id="3600s"),
        pytest.param("30 days", 30 * 86400.0, id="30-days"),
        pytest.param("1 year", 365 * 86400.0, id="1-year"),
        pytest.param("2 Weeks", 14 * 86400.0, id="case-insensitive"),
        pytest.param("1.5 hrs", 5400.0, id="fraction"),
        pytest.param("250ms", 0.25, id="ms"),
        pytest.param("PT1H", 3600.0, id="iso-hour"),
        pytest.param("P1DT12H", 129600.0, id="iso-day-hours"),
        pytest.param("P1M", 30 * 86400.0, id="iso-month-casual"),
        pytest.param("PT1M30S", 90.0, id="iso-minutes-seconds"),
        pytest.param("P2W", 14 * 86400.0, id="iso-weeks"),
        pytest.param({"hours": 1, "minutes": 30}, 5400.0, id="object"),
        pytest.param({"years": 1}, 365 * 86400.0, id="object-year"),
        pytest.param({"milliseconds": 500}, 0.5, id="object-ms"),
        pytest.param({"days": 0}, 0.0, id="zero"),
    ],
)
def test_durations(value, seconds):
    config = Config.from_dict({"d": value})
    assert config.get_optional_duration_seconds("d") == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            "soon",
            f"{HINT}, got 'soon'",
            id="word",
        ),
        pytest.param(
            "3600",
            f"{HINT}, got '3600'",
            id="no-unit",
        ),
        pytest.param(
            "P",
            f"{HINT}, got 'P'",
            id="bare-p",
        ),
        pytest.param(
            "PT",
            f"{HINT}, got 'PT'",
            id="bare-pt",
        ),
        pytest.param(
            "P1DT",
            f"{HINT}, got 'P1DT'",
            id="dangling-t",
        ),
        pytest.param(
            "5 fortnights",
            f"{HINT}, got '5 fortnights'",
            id="unit",
        ),
        pytest.param(
            {},
            f"{HINT}, got an object",
            id="empty-object",
        ),
        pytest.param(
            {"hour": 1},
            "unknown duration unit 'hour';"
            " use years, months, weeks, days, hours, minutes, seconds, milliseconds",
            id="object-unit",
        ),
        pytest.param(
            {"hours": "1"}, "duration hours must be a number, got a string", id="object-value"
        ),
        pytest.param(-5, "a duration must be finite and not negative, got -5", id="negative"),
        pytest.param(
            float("inf"), "a duration must be finite and not negative, got inf", id="infinite"
        ),
        pytest.param(
            [1],
            f"{HINT}, got a list",
            id="list",
        ),
    ],
)
def test_bad_durations(value, message):
    config = Config.from_dict({"auth": {"sessionDuration": value}}, source="a.yaml")
    with pytest.raises(ConfigError) as info:
        config.get_optional_duration_seconds("auth.sessionDuration")
    assert str(info.value) == f"a.yaml: auth.sessionDuration: {message}"


@given(
    st.one_of(
        st.text(max_size=20),
        st.integers(),
        st.floats(),
        st.dictionaries(st.text(max_size=8), st.integers()),
    )
)
def test_duration_never_raises_anything_but_config_error(value):
    config = Config.from_dict({"d": value})
    try:
        seconds = config.get_optional_duration_seconds("d")
    except ConfigError:
        return
    assert seconds is not None and seconds >= 0


# --- loading and merging ----------------------------------------------------------------


def test_load_minimal_example():
    config = load_config(BASE, environ=ENV)
    assert config.get_string("app.baseUrl") == "http://localhost:3000"
    assert config.get_string("auth.session.secret") == "s3cret"
    oidc = config.get_config("auth.providers.oidc.development")
    assert oidc.get_string("clientId") == "wsgiauth-demo"


def test_later_file_wins_and_mappings_merge_deeply():
    config = load_config(BASE, PRODUCTION, environ=ENV)
    assert config.get_string("app.baseUrl") == "https://portal.example.com"
    assert config.get_string("backend.baseUrl") == "http://localhost:7007"
    assert config.get_string("auth.environment") == "production"
    assert config.get_config("auth.providers.oidc").keys() == ["development", "production"]
    production = config.get_config("auth.providers.oidc.production")
    assert production.get_string("clientSecret") == "prod-secret-from-file"
    resolvers = production.get_config_list("signIn.resolvers")
    assert resolvers[1].get_string_list("allowedDomains") == ["example.com"]


def test_errors_name_the_file_each_value_came_from():
    config = load_config(BASE, PRODUCTION, environ=ENV)
    errors = [
        config.error("auth.providers.oidc.development.clientSecret", "bad"),
        config.error("auth.environment", "bad"),
        config.error("auth.providers.oidc.production.signIn.resolvers[1].allowedDomains", "bad"),
        config.error("auth.providers.oidc.production.clientSecret", "bad"),
    ]
    assert [error.source for error in errors] == [
        BASE,
        PRODUCTION,
        str(FILES / "includes" / "sign-in.yaml"),
        PRODUCTION,
    ]
    with pytest.raises(ConfigError) as info:
        config.get_string("auth.providers.oidc.development.clientSecret.x")
    assert str(info.value) == (
        f"{BASE}: auth.providers.oidc.development.clientSecret: expected an object, got a string"
    )


def test_lists_and_scalars_replace_and_null_removes(tmp_path):
    first = write(
        tmp_path,
        "a.yaml",
        """
        list: [1, 2, 3]
        scalar_to_map: x
        map_to_scalar: {a: 1, b: 2}
        removed: {a: 1}
        """,
    )
    second = write(
        tmp_path,
        "b.yaml",
        """
        list: [9]
        scalar_to_map: {a: 1}
        map_to_scalar: y
        removed: null
        """,
    )
    config = load_config(first, second, environ={})
    assert config.get("list") == [9]
    assert config.get("scalar_to_map") == {"a": 1}
    assert config.get("map_to_scalar") == "y"
    assert not config.has("removed")
    assert config.keys() == ["list", "scalar_to_map", "map_to_scalar"]
    assert config.error("list[0]", "x").source == second
    assert config.error("map_to_scalar.a", "x").source == second


def test_yaml_is_read_like_backstage(tmp_path):
    path = write(tmp_path, "a.yaml", "on: yes\nwhen: 2024-01-01\nflag: true\n")
    config = load_config(path, environ={})
    assert config.get("on") == "yes"
    assert config.get("when") == "2024-01-01"
    assert config.get_bool("flag") is True


def test_empty_file_is_an_empty_config(tmp_path):
    empty = write(tmp_path, "empty.yaml", "# nothing yet\n")
    config = load_config(BASE, empty, environ=ENV)
    assert config.get_string("auth.environment") == "development"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        pytest.param(
            "a.yaml",
            "app:\n  baseUrl: [x\nauth: {}\n",
            "invalid YAML at line 3: expected ',' or ']', but got ':'"
            " (while parsing a flow sequence at line 2)",
            id="yaml-syntax",
        ),
        pytest.param(
            "a.yaml",
            "a: 1\nb: 2\na: 3\n",
            "invalid YAML at line 3: duplicate key 'a'",
            id="duplicate",
        ),
        pytest.param(
            "a.yaml", "- a\n- b\n", "expected an object at the top, got a list", id="top-list"
        ),
        pytest.param("a.json", '{"a": }', "invalid JSON at line 1: Expecting value", id="json"),
    ],
)
def test_file_errors_name_file_and_line(tmp_path, name, text, message):
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value) == f"{path}: {message}"


def test_missing_file(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(missing, environ={})
    assert str(info.value) == f"{missing}: cannot read file: No such file or directory"


def test_no_file_at_all():
    with pytest.raises(ConfigError, match="^no config file given$"):
        load_config()


# --- substitution and directives --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        pytest.param("${A}", {"A": "x"}, "x", id="whole"),
        pytest.param(
            "https://${HOST}:${ PORT }/x", {"HOST": "h", "PORT": "1"}, "https://h:1/x", id="several"
        ),
        pytest.param("${A}", {"A": "  padded\n"}, "padded", id="trimmed"),
        pytest.param("$${A}", {}, "${A}", id="escape"),
        pytest.param("a $${A} b ${A}", {"A": "x"}, "a ${A} b x", id="escape-and-var"),
        pytest.param("$A {A} $", {}, "$A {A} $", id="no-braces"),
        pytest.param("${A}", {"A": ""}, "", id="empty-var"),
    ],
)
def test_substitution(tmp_path, value, environ, expected):
    path = write(tmp_path, "a.yaml", "")
    Path(path).write_text(f"key: '{value}'\n", encoding="utf-8")
    assert load_config(path, environ=environ).get("key") == expected


def test_missing_variable_names_file_key_and_variable():
    with pytest.raises(ConfigError) as info:
        load_config(BASE, environ={})
    assert (
        str(info.value)
        == f"{BASE}: auth.session.secret: environment variable SESSION_SECRET is not set"
    )


def test_missing_variable_overridden_by_later_file_is_fine(tmp_path):
    local = write(tmp_path, "local.yaml", "auth:\n  session:\n    secret: local-secret\n")
    config = load_config(BASE, local, environ={})
    assert config.get_string("auth.session.secret") == "local-secret"


def test_directives(tmp_path):
    write(tmp_path, "secrets/token.txt", "line one\nline two\n\n")
    write(tmp_path, "secrets/odd#name.txt", "hash\r\n")
    write(tmp_path, "secrets/nested.yaml", "deep:\n  value: {$file: token.txt}\n")
    write(tmp_path, "secrets/all.json", '{"oidc": {"clientId": "from-json"}, "other": 1}')
    path = write(
        tmp_path,
        "app-config.yaml",
        """
        env: {$env: TOKEN}
        file: {$file: secrets/token.txt}
        include: {$include: secrets/nested.yaml}
        fragment: {$include: "secrets/all.json#oidc.clientId"}
        dynamic: {$file: "${DIR}/token.txt"}
        hash: {$file: "secrets/odd#name.txt"}
        """,
    )
    config = load_config(path, environ={"TOKEN": " t0k3n ", "DIR": "secrets"})
    assert config.get("env") == "t0k3n"
    assert config.get("file") == "line one\nline two\n"  # only one trailing newline goes
    assert config.get("include") == {"deep": {"value": "line one\nline two\n"}}
    assert config.get("fragment") == "from-json"
    assert config.get("dynamic") == "line one\nline two\n"
    assert config.get("hash") == "hash"  # no '#fragment' for $file; CRLF counts as one newline
    assert config.error("include.deep.value", "x").source == str(tmp_path / "secrets/nested.yaml")
    assert config.error("env", "x").source == path


@pytest.mark.parametrize(
    ("text", "source", "message"),
    [
        pytest.param(
            "v: {$env: NOPE}",
            "self.yaml",
            "v: environment variable NOPE is not set",
            id="env-unset",
        ),
        pytest.param(
            "v: {$file: nope.txt}",
            "self.yaml",
            "v: $file {dir}/nope.txt: No such file or directory",
            id="file-missing",
        ),
        pytest.param(
            "v: {$include: nope.yaml}",
            "nope.yaml",
            "v: cannot read file: No such file or directory",
            id="include-missing",
        ),
        pytest.param(
            "v: {$include: x.txt}",
            "self.yaml",
            "v: $include {dir}/x.txt: expected a .yaml, .yml or .json file",
            id="include-ext",
        ),
        pytest.param(
            "v: {$env: A, other: 1}",
            "self.yaml",
            "v: $env must be the only key in its object",
            id="adjacent",
        ),
        pytest.param(
            "v: {$secret: A}",
            "self.yaml",
            "v: unknown directive $secret; expected one of $env, $file, $include",
            id="unknown",
        ),
        pytest.param(
            "v: {$env: [A]}",
            "self.yaml",
            "v: $env needs a non-empty string, got a list",
            id="not-string",
        ),
        pytest.param("v: {$include: self.yaml}", "self.yaml", "v: include cycle", id="cycle"),
        pytest.param(
            "v: {$include: 'list.yaml#a.b'}",
            "self.yaml",
            "v: $include list.yaml#a.b: 'b' is not inside an object",
            id="fragment",
        ),
        pytest.param(
            "v: {$include: bad.yaml}",
            "bad.yaml",
            "v: invalid YAML at line 3: could not find expected ':'"
            " (while scanning a simple key at line 2)",
            id="include-syntax",
        ),
    ],
)
def test_directive_errors(tmp_path, text, source, message):
    write(tmp_path, "list.yaml", "a: [1]\n")
    write(tmp_path, "bad.yaml", "a: 1\nb\n")
    path = write(tmp_path, "self.yaml", text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value) == f"{tmp_path / source}: {message.format(dir=tmp_path)}"


@given(value=st.text(alphabet="${}$AB: -\\\n", max_size=24))
def test_substitution_never_raises_anything_but_config_error(tmp_path_factory, value):
    path = tmp_path_factory.getbasetemp() / "substitution.json"
    path.write_text(json.dumps({"key": value}), encoding="utf-8")
    try:
        loaded = load_config(str(path), environ={"A": "1"})
    except ConfigError as exc:
        assert (exc.source, exc.path) == (str(path), "key")
        assert re.fullmatch(
            r"environment variable .* is not set|\$\{\} names no variable.*",
            exc.reason,
            re.DOTALL,
        )
    else:
        assert isinstance(loaded.get("key"), str)
        if "$$" not in value:  # every complete ${...} was replaced
            assert re.search(r"\$\{[^{}]*\}", loaded.get("key")) is None


# --- check_config -----------------------------------------------------------------------


def test_check_config_lists_every_problem(fake_app):
    broken = str(FILES / "app-config.broken.yaml")
    assert [str(error) for error in check_config(broken, environ={})] == [
        f"{broken}: app.baseUrl: expected an absolute http(s) URL, got 'localhost:3000'",
        f"{broken}: backend.baseUrl: missing",
        f"{broken}: auth.session.secret: expected a string or a list of strings, got a number",
        f"{broken}: auth.experimentalExtraAllowedOrigins: expected a list of strings, got a string",
        f"{broken}: auth.backstageTokenExpiration: expected a duration such as '1h', '30 days',"
        " 'PT1H' or {hours: 1}, got 'soon'",
        f"{broken}: auth.providers.oidc: expected an object, got a string",
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
