"""wsgiauth.config: the typed reader and durations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsgiauth.config import Config
from wsgiauth.config import closest
from wsgiauth.errors import ConfigError

HINT = "expected a duration such as '1h', '30 days', 'PT1H' or {hours: 1}"


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


def test_check_keys_names_an_unknown_key():
    config = Config.from_dict({"auth": {"x": {"clientId": "a", "clientSecrett": "b"}}})
    with pytest.raises(ConfigError) as raised:
        config.get_config("auth.x").check_keys({"clientId", "clientSecret"})
    assert raised.value.path == "auth.x.clientSecrett"
    assert raised.value.reason == "unknown key (known: clientId, clientSecret)"
    assert raised.value.suggestion == "clientSecret"
    config.get_config("auth.x").check_keys({"clientId", "clientSecrett"})  # all known: fine


@pytest.mark.parametrize(
    ("name", "known", "expected"),
    [
        pytest.param("clientSecrett", {"clientId", "clientSecret"}, "clientSecret", id="typo"),
        pytest.param("clientid", {"clientId", "clientSecret"}, "clientId", id="case"),
        pytest.param("baseURL", {"baseUrl", "listen"}, "baseUrl", id="case-and-letters"),
        pytest.param("githb", {"github", "gitlab", "google"}, "github", id="provider"),
        pytest.param("metadata", {"clientId", "clientSecret"}, "", id="nothing-close"),
    ],
)
def test_closest(name, known, expected):
    assert closest(name, known) == expected


def test_with_data_keeps_files_and_lines():
    config = Config(
        {"a": {"b": 1}}, path="", sources={"a": "f.yaml"}, source="g.yaml", lines={"a": 3}
    )
    error = config.with_data({"a": {}}).error("a.c", "missing")
    assert (error.source, error.line, error.path) == ("f.yaml", 3, "a.c")
