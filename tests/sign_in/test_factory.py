"""create_sign_in_resolver_factory and option schemas (spec §10.1)."""

from __future__ import annotations

import pytest

from wsgiauth.errors import InputError
from wsgiauth.sign_in import create_sign_in_resolver_factory
from wsgiauth.sign_in import options_schema
from wsgiauth.sign_in.factory import boolean
from wsgiauth.sign_in.factory import string
from wsgiauth.sign_in.factory import string_list

SCHEMA = options_schema(
    {"allowedDomains": string_list, "flag": boolean, "name": string}, required=("name",)
)


def capture(options):
    def resolver(info, context):
        return options

    return resolver


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({"name": "x"}, {"name": "x"}, id="required-only"),
        pytest.param(
            {"name": "x", "allowedDomains": ["a.org"], "flag": True},
            {"name": "x", "allowedDomains": ("a.org",), "flag": True},
            id="all",
        ),
        pytest.param(
            {"name": "x", "flag": "false"}, {"name": "x", "flag": False}, id="bool-string"
        ),
        pytest.param({"name": "x", "flag": None}, {"name": "x"}, id="null-is-absent"),
    ],
)
def test_schema_accepts(options, expected):
    factory = create_sign_in_resolver_factory(capture, options_schema=SCHEMA)
    assert factory(options)(None, None) == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            None, "Invalid sign-in resolver options, name: required", id="missing-required"
        ),
        pytest.param(
            {"name": "x", "alowedDomains": []}, "unknown option 'alowedDomains'", id="unknown"
        ),
        pytest.param(
            {"name": "x", "allowedDomains": "a.org"},
            "allowedDomains: expected a list of strings, got a string",
            id="not-a-list",
        ),
        pytest.param(
            {"name": "x", "flag": "yes"}, "flag: expected a boolean, got a string", id="bad-bool"
        ),
        pytest.param({"name": ""}, "name: expected a non-empty string", id="empty-string"),
    ],
)
def test_schema_rejects(options, message):
    factory = create_sign_in_resolver_factory(capture, options_schema=SCHEMA)
    with pytest.raises(InputError) as info:
        factory(options)
    assert info.value.message.startswith("Invalid sign-in resolver options, ")
    assert message in info.value.message


def test_a_schema_may_raise_type_error_or_input_error():
    def schema(options):
        if options.get("x") == 1:
            raise TypeError("x is odd")
        raise InputError("x is wrong")

    factory = create_sign_in_resolver_factory(capture, options_schema=schema)
    with pytest.raises(InputError, match="Invalid sign-in resolver options, x is odd"):
        factory({"x": 1})
    with pytest.raises(InputError, match="Invalid sign-in resolver options, x is wrong"):
        factory({"x": 2})


def test_no_schema_means_no_options():
    factory = create_sign_in_resolver_factory(capture)
    assert factory(None)(None, None) is None
    assert factory({})(None, None) is None
    with pytest.raises(InputError) as info:
        factory({"x": 1})
    assert info.value.message == "sign-in resolver does not accept options"
