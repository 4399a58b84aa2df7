"""Shared by the diagnostics tests: an auth app with an OIDC provider and a guest, its page.

Providers are faked with ``responses`` (probes run on the page's own threads, which
``responses`` reaches too).
"""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import pytest
import responses
import webtest

from tests.conftest import base_config
from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.middleware import AuthMiddleware

PAGE = "/api/auth/.diagnostics"
TOKEN = "diagnostics-token-" + "t" * 32
CLIENT_SECRET = "client-secret-never-shown-1234"
SESSION_SECRET = "session-secret-never-shown-5678"
ISSUER = "https://idp.example"
METADATA = f"{ISSUER}/.well-known/openid-configuration"
JWKS = f"{ISSUER}/jwks"
WAIT = 10


def oidc_settings(metadata_url: str = METADATA) -> dict[str, Any]:
    return {"metadataUrl": metadata_url, "clientId": "client-id", "clientSecret": CLIENT_SECRET}


def make_config(*, environment: str = "development", providers: Any = None, **auth: Any) -> Config:
    config = base_config(
        providers=providers or {"oidc": {"development": oidc_settings()}, "guest": {}},
        keyStore={"provider": "memory"},
        session={"secret": SESSION_SECRET},
        **auth,
    )
    config["auth"]["environment"] = environment
    if environment != "development":
        config["auth"]["providers"]["guest"] = {"dangerouslyAllowOutsideDevelopment": True}
    return Config.from_dict(config)


def make_client(config: Config, **kwargs: Any) -> webtest.TestApp:
    def no_app(environ: Any, start_response: Any) -> list[bytes]:  # pragma: no cover
        raise AssertionError("only auth routes are requested")

    return webtest.TestApp(AuthMiddleware(no_app, create_auth_app(config, **kwargs)))


def discovery_document() -> dict[str, Any]:
    return {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": JWKS,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }


def json_report(client: webtest.TestApp, **headers: str) -> dict[str, Any]:
    return client.get(PAGE, params={"format": "json"}, headers=headers).json


@pytest.fixture
def idp():
    """A fast, healthy OpenID provider with a ``Date`` header on every answer."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        date = {"Date": formatdate(usegmt=True)}
        mocked.get(METADATA, json=discovery_document(), headers=date)
        mocked.get(JWKS, json={"keys": [{"kty": "RSA", "kid": "a"}, {"kty": "RSA", "kid": "b"}]})
        yield mocked
