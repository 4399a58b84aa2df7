"""The fake IdP under WebTest: one confidential client, the demo catalog's users, PKCE helpers."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlsplit
from wsgiref.validate import validator

import pytest
import webtest

from wsgiauth.fake_idp import FakeClient
from wsgiauth.fake_idp import FakeIdp
from wsgiauth.fake_idp import FakeUser
from wsgiauth.fake_idp import users_from_catalog

ISSUER = "http://127.0.0.1:8400"
CLIENT_ID = "app"
SECRET = "app-secret"
REDIRECT = "http://127.0.0.1:7007/cb"
PUBLIC_ID = "spa"
PUBLIC_REDIRECT = "http://127.0.0.1:3000/cb"
CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
JANE = "user:default/jane"


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Flow:
    """One authorization request's values, to finish it at the token endpoint."""

    verifier: str
    challenge: str
    state: str
    nonce: str
    client_id: str = CLIENT_ID
    redirect_uri: str = REDIRECT

    def params(self, **override: str) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile email",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(override)
        return {k: v for k, v in params.items() if v is not None}


def new_flow(**kwargs: str) -> Flow:
    verifier, challenge = pkce()
    return Flow(verifier, challenge, secrets.token_urlsafe(8), secrets.token_urlsafe(8), **kwargs)


def make_idp(**kwargs) -> FakeIdp:
    clients = [
        FakeClient(
            client_id=CLIENT_ID,
            client_secret=SECRET,
            redirect_uris=(REDIRECT,),
            post_logout_redirect_uris=("http://127.0.0.1:7007/",),
        ),
        FakeClient(
            client_id=PUBLIC_ID,
            redirect_uris=(PUBLIC_REDIRECT,),
            id_token_signed_response_alg="ES256",
        ),
    ]
    users = [*users_from_catalog(CATALOG), FakeUser(ref="user:default/o", name='<b>"o"</b>')]
    return FakeIdp(ISSUER, users, clients, **kwargs)


class Browser:
    """Plays the user at the IdP: authorize, pick a user on the page, return the callback."""

    def __init__(self, idp: FakeIdp) -> None:
        self.idp = idp
        self.app = webtest.TestApp(validator(idp))

    def page(self, flow: Flow, **override: str) -> webtest.TestResponse:
        return self.app.get("/authorize", flow.params(**override))

    def sign_in(self, flow: Flow, user: str = JANE, **override: str) -> dict[str, str]:
        """The callback's query (``code``, ``state``, ``iss``) after picking ``user``."""
        page = self.page(flow, **override)
        form = page.forms[0]
        response = form.submit("user", value=user, status=303)
        assert response.location.startswith(flow.redirect_uri + "?")
        return query_of(response.location)

    def code(self, flow: Flow, user: str = JANE) -> str:
        return self.sign_in(flow, user)["code"]

    def token(self, status: int = 200, auth: tuple[str, str] | None = None, **form: str):
        headers = {}
        if auth is not None:
            raw = f"{auth[0]}:{auth[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        return self.app.post("/token", form, headers=headers, status=status)

    def redeem(self, flow: Flow, code: str, status: int = 200, **override: str):
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.verifier,
            **override,
        }
        form = {k: v for k, v in form.items() if v is not None}
        auth = (CLIENT_ID, SECRET) if flow.client_id == CLIENT_ID else None
        if auth is None:
            form.setdefault("client_id", flow.client_id)
        return self.token(status, auth=auth, **form)

    def tokens(self, flow: Flow | None = None, user: str = JANE) -> dict:
        flow = flow or new_flow()
        return self.redeem(flow, self.code(flow, user)).json

    def refresh(self, refresh_token: str, status: int = 200, **form: str):
        return self.token(
            status,
            auth=(CLIENT_ID, SECRET),
            grant_type="refresh_token",
            refresh_token=refresh_token,
            **form,
        )


@pytest.fixture
def idp() -> FakeIdp:
    return make_idp()


@pytest.fixture
def browser(idp: FakeIdp) -> Browser:
    return Browser(idp)
