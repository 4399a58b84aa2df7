"""Shared fixtures: configs from dicts, a fake OAuth authenticator, a validated test app."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlencode
from urllib.parse import urlsplit
from wsgiref.validate import validator

import pytest
import webtest

from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.middleware import AuthMiddleware
from wsgiauth.oauth.provider_factory import create_oauth_provider_factory
from wsgiauth.oauth.types import OAuthAuthenticatorResult
from wsgiauth.oauth.types import OAuthLogoutResult
from wsgiauth.oauth.types import OAuthSession
from wsgiauth.oauth.types import OAuthStartResponse
from wsgiauth.types import ProfileInfo
from wsgiauth.types import ProviderModule

APP_ORIGIN = "http://localhost:3000"
BACKEND = "http://localhost:7007"


@pytest.fixture(autouse=True)
def _data_dir(tmp_path_factory, monkeypatch):
    """Keep default SQLite key stores out of the user's home directory."""
    monkeypatch.setenv("WSGIAUTH_DATA_DIR", str(tmp_path_factory.mktemp("wsgiauth-data")))


def base_config(**auth: Any) -> dict[str, Any]:
    """An app-config dict with a `fake` provider in `development`."""
    providers = auth.pop("providers", {"fake": {"development": {"clientId": "id"}}})
    return {
        "app": {"baseUrl": APP_ORIGIN},
        "backend": {"baseUrl": BACKEND},
        "auth": {"environment": "development", "providers": providers, **auth},
    }


class FakeAuthenticator:
    """An OAuth authenticator that needs no network: codes are profile emails."""

    persist_scopes = True
    required_scopes = ("openid",)
    calls: list[tuple[str, Any]]

    def __init__(self, config: Config, callback_url: str) -> None:
        self.config = config
        self.callback_url = callback_url
        self.calls = []
        self.refresh_counter = 0

    @classmethod
    def from_config(cls, config, *, callback_url, http):
        return cls(config, callback_url)

    def start(self, input):
        self.calls.append(("start", input))
        query = urlencode(
            {"state": input.state, "code_challenge": input.code_challenge, "scope": input.scope}
        )
        return OAuthStartResponse(url=f"https://idp.example/authorize?{query}")

    def authenticate(self, input):
        self.calls.append(("authenticate", input))
        from wsgiauth.errors import AuthenticationError
        from wsgiauth.errors import InputError

        error = input.request.params.get("error")
        if error:
            raise AuthenticationError(f"Authentication rejected, {error}")
        code = input.request.params.get("code")
        if not code:
            raise InputError("Authentication failed, no code in the callback")
        return OAuthAuthenticatorResult(
            full_profile={"email": code, "name": "Fake User"},
            session=OAuthSession(
                access_token="access-1",
                scope="openid",
                id_token="id-token",
                expires_in_seconds=3600,
                refresh_token=input.request.params.get("refresh", "refresh-1"),
            ),
        )

    def refresh(self, input):
        self.calls.append(("refresh", input))
        from wsgiauth.errors import AuthenticationError

        if input.refresh_token == "revoked":
            raise AuthenticationError("invalid_grant")
        self.refresh_counter += 1
        email = input.request.GET.get("email", "jane@example.com")  # the fake IdP's "user"
        return OAuthAuthenticatorResult(
            full_profile={"email": email, "name": "Fake User"},
            session=OAuthSession(
                access_token=f"access-r{self.refresh_counter}",
                scope=input.scope,
                expires_in_seconds=3600,
                refresh_token=f"{input.refresh_token}+r",
            ),
        )

    def logout(self, input):
        self.calls.append(("logout", input))
        return OAuthLogoutResult(logout_url=self.config.get_optional_string("logoutUrl"))

    def default_profile_transform(self, result):
        return ProfileInfo(
            email=result.full_profile.get("email"), display_name=result.full_profile.get("name")
        )


FAKE_MODULE = ProviderModule(
    provider_id="fake", factory=create_oauth_provider_factory(FakeAuthenticator)
)


def inner_app(environ, start_response):
    """The wrapped app: echoes what it received."""
    body = json.dumps(
        {
            "path": environ["PATH_INFO"],
            "script_name": environ.get("SCRIPT_NAME", ""),
            "body": environ["wsgi.input"]
            .read(int(environ.get("CONTENT_LENGTH") or 0))
            .decode("latin-1"),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("X-Inner", "yes")])
    return [body]


def make_testapp(config: dict[str, Any], **kwargs: Any) -> webtest.TestApp:
    auth_app = create_auth_app(Config.from_dict(config), providers={"fake": FAKE_MODULE}, **kwargs)
    testapp = webtest.TestApp(validator(AuthMiddleware(validator(inner_app), auth_app)))
    testapp.auth_app = auth_app  # type: ignore[attr-defined]
    return testapp


@pytest.fixture
def testapp() -> webtest.TestApp:
    return make_testapp(base_config())


def parse_web_message(body: str) -> dict[str, Any]:
    """The message the callback page posts to the opener, decoded as the browser would."""
    encoded = re.search(r"authResponse = decodeURIComponent\('([^']*)'\)", body)
    assert encoded, body
    return json.loads(unquote(encoded.group(1)))


def web_message_origin(body: str) -> str:
    encoded = re.search(r"var origin = decodeURIComponent\('([^']*)'\)", body)
    assert encoded, body
    return unquote(encoded.group(1))


def set_cookies(response) -> dict[str, str]:
    """Set-Cookie headers by cookie name (last one wins)."""
    out = {}
    for header in response.headers.getall("Set-Cookie"):
        out[header.split("=", 1)[0]] = header
    return out


def state_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["state"][0]


@pytest.fixture
def no_server_word(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that says nothing of its workers (a bare ``gunicorn`` command):
    no server store, no single-process declaration."""
    monkeypatch.delenv("WSGIAUTH_SERVER_STORE", raising=False)
    monkeypatch.delenv("WSGIAUTH_SINGLE_PROCESS", raising=False)
