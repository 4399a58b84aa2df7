"""The public surface of ``wsgiauth``: anything not listed here is internal."""

from __future__ import annotations

import wsgiauth


def test_all_is_pinned_and_sorted():
    assert wsgiauth.__all__ == sorted(wsgiauth.__all__)
    assert wsgiauth.__all__ == [
        "AuthApp",
        "AuthMiddleware",
        "AuthenticationError",
        "Config",
        "ConfigError",
        "HttpError",
        "InputError",
        "NotAllowedError",
        "NotFoundError",
        "ProviderModule",
        "ServiceUnavailableError",
        "WsgiAuthError",
        "create_auth_app",
        "load_config",
    ]


def test_every_export_exists_and_belongs_to_wsgiauth():
    for name in wsgiauth.__all__:
        member = getattr(wsgiauth, name)
        assert member.__module__.startswith("wsgiauth."), name
