"""wsgiauth.loader: file loading, merging, ``${VAR}`` substitution and directives."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.config_files import BASE
from tests.config_files import ENV
from tests.config_files import FILES
from tests.config_files import PRODUCTION
from tests.config_files import write
from wsgiauth.errors import ConfigError
from wsgiauth.loader import load_config

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


# --- lines ------------------------------------------------------------------------------


def test_errors_name_the_line_of_the_file_that_won():
    config = load_config(BASE, PRODUCTION, environ=ENV)
    where = {
        key: (config.error(key, "bad").source, config.error(key, "bad").line)
        for key in (
            "auth.providers.oidc.development.clientSecret",
            "auth.environment",  # in both files: the later one wins
            "auth.providers.oidc.production.signIn.resolvers[1].allowedDomains",  # #oidc
            "auth.providers.oidc.development.nope",  # missing: its parent's line
        )
    }
    assert list(where.values()) == [
        (BASE, 15),
        (PRODUCTION, 5),
        (str(FILES / "includes" / "sign-in.yaml"), 5),
        (BASE, 12),
    ]


def test_a_key_missing_at_the_top_is_named_at_the_first_line(tmp_path):
    path = write(tmp_path, "a.yaml", "# a comment\n\napp:\n  baseUrl: http://a\n")
    config = load_config(path, environ={})
    assert config.error("backend.baseUrl", "missing").line == 3


def test_include_lines_are_the_included_files(tmp_path):
    write(tmp_path, "inc.yaml", "# included\nclientId: a\nclientSecret: b\n")
    path = write(tmp_path, "a.yaml", "auth:\n  providers:\n    x:\n      $include: inc.yaml\n")
    config = load_config(path, environ={})
    error = config.error("auth.providers.x.clientSecret", "bad")
    assert (error.source, error.line) == (str(tmp_path / "inc.yaml"), 3)


def test_json_files_have_no_lines(tmp_path):
    path = write(tmp_path, "a.json", '{"app": {"baseUrl": "x"}}')
    error = load_config(path, environ={}).error("app.baseUrl", "bad")
    assert (error.source, error.line) == (path, None)


def test_a_syntax_error_has_its_line(tmp_path):
    path = write(tmp_path, "a.yaml", "a: 1\nb: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.line == 3
