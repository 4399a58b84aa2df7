"""The error tree: status codes, Backstage wire names, messages with causes."""

from __future__ import annotations

import pytest

from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ConfigError
from wsgiauth.errors import ConflictError
from wsgiauth.errors import HeaderTooLargeError
from wsgiauth.errors import HttpError
from wsgiauth.errors import InputError
from wsgiauth.errors import MethodNotAllowedError
from wsgiauth.errors import NotAllowedError
from wsgiauth.errors import NotFoundError
from wsgiauth.errors import PayloadTooLargeError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.errors import UnimplementedError
from wsgiauth.errors import WsgiAuthError


@pytest.mark.parametrize(
    ("error_type", "status", "name"),
    [
        pytest.param(HttpError, 500, "HttpError", id="base"),
        pytest.param(InputError, 400, "InputError", id="input"),
        pytest.param(AuthenticationError, 401, "AuthenticationError", id="authentication"),
        pytest.param(NotAllowedError, 403, "NotAllowedError", id="not-allowed"),
        pytest.param(NotFoundError, 404, "NotFoundError", id="not-found"),
        pytest.param(MethodNotAllowedError, 405, "MethodNotAllowedError", id="method"),
        pytest.param(ConflictError, 409, "ConflictError", id="conflict"),
        pytest.param(PayloadTooLargeError, 413, "PayloadTooLargeError", id="payload"),
        pytest.param(HeaderTooLargeError, 431, "HeaderTooLargeError", id="header"),
        pytest.param(UnimplementedError, 501, "NotImplementedError", id="unimplemented"),
        pytest.param(ServiceUnavailableError, 503, "ServiceUnavailableError", id="unavailable"),
    ],
)
def test_status_and_wire_name(error_type: type[HttpError], status: int, name: str) -> None:
    error = error_type("boom")

    assert error.status_code == status
    assert error.name == name
    assert error.message == "boom"
    assert str(error) == "boom"
    assert isinstance(error, WsgiAuthError)


def test_unimplemented_does_not_shadow_the_builtin() -> None:
    assert not issubclass(UnimplementedError, NotImplementedError)
    assert UnimplementedError.__name__ == "UnimplementedError"


def test_method_not_allowed_carries_allow() -> None:
    error = MethodNotAllowedError("nope", allow=("GET", "POST"))

    assert error.allow == ("GET", "POST")
    assert MethodNotAllowedError().allow == ()


def test_full_message_without_cause_is_the_message() -> None:
    assert InputError("Missing session cookie").full_message() == "Missing session cookie"


def test_full_message_with_http_cause() -> None:
    try:
        try:
            raise InputError("Missing session cookie")
        except InputError as cause:
            raise AuthenticationError("Refresh failed") from cause
    except AuthenticationError as error:
        caught = error

    assert caught.full_message() == "Refresh failed; caused by InputError: Missing session cookie"
    # The wrapper's own message stays plain; only the full message carries the cause.
    assert caught.message == "Refresh failed"


def test_full_message_nests_our_causes_and_hides_foreign_ones() -> None:
    inner = ValueError("bad json from 10.0.0.5:5432")
    middle = ServiceUnavailableError("Token endpoint failed")
    middle.__cause__ = inner
    outer = AuthenticationError("Refresh failed")
    outer.__cause__ = middle

    assert outer.full_message() == (
        "Refresh failed; caused by ServiceUnavailableError: Token endpoint failed"
    )


def test_full_message_uses_the_wire_name_of_the_cause() -> None:
    outer = AuthenticationError("Refresh failed")
    outer.__cause__ = UnimplementedError("Not implemented")

    assert outer.full_message() == "Refresh failed; caused by NotImplementedError: Not implemented"


def test_implicit_context_is_not_a_cause() -> None:
    try:
        try:
            raise ValueError("hidden")
        except ValueError:
            raise InputError("plain") from None
    except InputError as error:
        caught = error

    assert caught.full_message() == "plain"


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        pytest.param({}, "missing", id="bare"),
        pytest.param(
            {"path": "auth.providers.oidc.development.clientId"},
            "auth.providers.oidc.development.clientId: missing",
            id="path",
        ),
        pytest.param({"source": "app-config.yaml"}, "app-config.yaml: missing", id="source"),
        pytest.param(
            {"path": "auth.providers.oidc", "source": "/etc/app-config.yaml"},
            "/etc/app-config.yaml: auth.providers.oidc: missing",
            id="source-and-path",
        ),
    ],
)
def test_config_error_str(kwargs: dict[str, str], text: str) -> None:
    error = ConfigError("missing", **kwargs)

    assert str(error) == text
    assert error.reason == "missing"
    assert error.path == kwargs.get("path", "")
    assert error.source == kwargs.get("source", "")
    assert isinstance(error, WsgiAuthError)
    assert not isinstance(error, HttpError)
