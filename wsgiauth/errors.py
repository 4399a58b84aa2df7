"""The one error tree of wsgiauth.

Every error the library raises on purpose derives from :class:`WsgiAuthError`::

    WsgiAuthError                    base of everything wsgiauth raises
    ├── ConfigError                  startup only; .path names the dotted config key
    └── HttpError                    has status_code and a wire name; rendered only by AuthApp
        ├── InputError               400  malformed or missing input, bad env
        ├── AuthenticationError      401  bad X-Requested-With, bad refresh cookie, bad token
        ├── NotAllowedError          403  origin not allowed, nonce mismatch, bad state
        ├── NotFoundError            404  unknown provider or env
        ├── MethodNotAllowedError    405  wrong method for a route (carries ``allow``)
        ├── ConflictError            409
        ├── PayloadTooLargeError     413  body past the size cap
        ├── HeaderTooLargeError      431  query string or headers past the size cap
        ├── UnimplementedError       501  wire name "NotImplementedError"
        └── ServiceUnavailableError  503  upstream IdP down, slow, 5xx or malformed

The wire names and status codes are Backstage's (``@backstage/errors``), so a
Backstage frontend understands our bodies. Foreign errors are translated where
they enter (``raise ... from exc``); only :mod:`wsgiauth.responses` renders them.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "HeaderTooLargeError",
    "HttpError",
    "InputError",
    "MethodNotAllowedError",
    "NotAllowedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ServiceUnavailableError",
    "UnimplementedError",
    "WsgiAuthError",
    "kind_of",
]


class WsgiAuthError(Exception):
    """Base of every error wsgiauth raises on purpose."""


class ConfigError(WsgiAuthError):
    """A configuration problem, found at startup.

    :param path: the dotted key at fault, e.g. ``auth.providers.oidc.development.clientId``.
    :param source: the file the key came from, when known.
    :param line: the line of ``source`` the key is on (or of its nearest parent), when known.
    :param suggestion: a close known name for a misspelt key or id (``check-config``
        prints it as "did you mean"); not part of the message.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        source: str = "",
        line: int | None = None,
        suggestion: str = "",
    ) -> None:
        self.path = path
        self.source = source
        self.line = line
        self.suggestion = suggestion
        self.reason = message
        where = ": ".join(part for part in (source, path) if part)
        super().__init__(f"{where}: {message}" if where else message)


class HttpError(WsgiAuthError):
    """An error with an HTTP status and a Backstage wire name."""

    status_code: int = 500
    #: The ``error.name`` of the JSON body; the class name unless overridden.
    wire_name: str = ""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    @property
    def name(self) -> str:
        """The name a client sees in ``error.name``."""
        return self.wire_name or type(self).__name__

    def full_message(self) -> str:
        """The message with its cause, as Backstage formats wrapped errors.

        Only causes of our own tree are told to the client: a foreign cause
        (a driver or socket error) may carry internals, so it goes to logs only.
        """
        cause = self.__cause__
        if not isinstance(cause, HttpError):
            return self.message
        return f"{self.message}; caused by {cause.name}: {cause.full_message()}"


class InputError(HttpError):
    """Malformed or missing input (400)."""

    status_code = 400


class AuthenticationError(HttpError):
    """The caller could not be authenticated (401)."""

    status_code = 401


class NotAllowedError(HttpError):
    """The caller is known but not allowed to do this (403)."""

    status_code = 403


class NotFoundError(HttpError):
    """No such provider, environment or user (404)."""

    status_code = 404


class MethodNotAllowedError(HttpError):
    """The route exists but not for this method (405)."""

    status_code = 405

    def __init__(self, message: str = "", *, allow: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.allow = allow


class ConflictError(HttpError):
    """More than one match where one was expected (409)."""

    status_code = 409


class PayloadTooLargeError(HttpError):
    """The request body is larger than the auth app accepts (413)."""

    status_code = 413


class HeaderTooLargeError(HttpError):
    """The query string or a header is larger than the auth app accepts (431)."""

    status_code = 431


class UnimplementedError(HttpError):
    """The provider does not implement this route (501)."""

    status_code = 501
    wire_name = "NotImplementedError"


class ServiceUnavailableError(HttpError):
    """An upstream service (the identity provider, a key store) failed (503).

    :param retry_after: seconds after which a retry may succeed, sent as
        ``Retry-After`` when known (a busy provider: its slots free in a moment).
    """

    status_code = 503

    def __init__(self, message: str = "", *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def kind_of(value: object) -> str:
    """How a value's type is named in an error message: 'a string', 'a list', ..."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return "null" if value is None else type(value).__name__
