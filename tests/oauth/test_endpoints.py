"""``OAuthEndpointAuthenticator``, the start/authenticate/refresh skeleton, on its own.

The IdP's back channel is stubbed with ``responses``; the built-in providers that derive
from it are tested against their IdPs in ``tests/providers``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import Self
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import jwt
import pytest
import responses
from webob import Request

from tests.protocols import protocol_mismatches
from wsgiauth.config import Config
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import InputError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.http import HttpClient
from wsgiauth.http import create_http_client
from wsgiauth.oauth import ClientCredentials
from wsgiauth.oauth import OAuthAuthenticateInput
from wsgiauth.oauth import OAuthAuthenticator
from wsgiauth.oauth import OAuthAuthenticatorResult
from wsgiauth.oauth import OAuthEndpointAuthenticator
from wsgiauth.oauth import OAuthRefreshInput
from wsgiauth.oauth import OAuthSession
from wsgiauth.oauth import OAuthStartInput
from wsgiauth.oauth import ProfileInfo
from wsgiauth.oauth import create_oauth_provider_factory

AUTHORIZE_URL = "https://idp.example/oauth/authorize"
TOKEN_URL = "https://idp.example/oauth/token"
ME_URL = "https://idp.example/api/me"
CALLBACK_URL = "https://app.example/api/auth/acme/handler/frame"
ME = {"id": "42", "email": "jane@acme.org", "name": "Jane"}


class Acme(OAuthEndpointAuthenticator):
    """The least a provider states: its endpoints and its profile."""

    authorize_url = AUTHORIZE_URL
    token_url = TOKEN_URL

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        credentials = ClientCredentials.from_config(config, auth_method="client_secret_post")
        return cls(credentials=credentials, callback_url=callback_url, http=http)

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {session.access_token}"}
        return self.http.get_json(ME_URL, headers=headers)


class FixedScope(Acme):
    """An IdP with one scope, more authorization parameters, no PKCE and Basic auth."""

    pkce = False
    refresh_failed = "Failed to refresh access token"
    keep_requested_scope = True

    def authorize_params(self, input: OAuthStartInput) -> Mapping[str, str | None]:  # noqa: A002
        return {"prompt": "consent", "scope": "openid", "nonce": "n-1", "login_hint": None}

    def refresh_scope(self, input: OAuthRefreshInput) -> str | None:  # noqa: A002
        return None


def make(cls: type[Acme] = Acme, auth_method: str = "client_secret_post") -> Acme:
    return cls(
        credentials=ClientCredentials("app", "s3cret", auth_method),
        callback_url=CALLBACK_URL,
        http=create_http_client(),
    )


def start_input(query: str = "") -> OAuthStartInput:
    return OAuthStartInput(
        request=Request.blank(f"/api/auth/acme/start?env=development{query}"),
        scope="openid email",
        state="c3RhdGU",
        nonce="bm9uY2U",
        code_challenge="Y2hhbGxlbmdl",
    )


def callback(query: str = "code=c-1&state=c3RhdGU") -> OAuthAuthenticateInput:
    request = Request.blank(f"/api/auth/acme/handler/frame?{query}")
    return OAuthAuthenticateInput(request=request, nonce="bm9uY2U", code_verifier="dmVyaWZpZXI")


def refresh_input(scope: str = "openid email") -> OAuthRefreshInput:
    return OAuthRefreshInput(
        request=Request.blank("/api/auth/acme/refresh?env=development"),
        scope=scope,
        scope_already_granted=True,
        refresh_token="rt-1",
    )


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def form(call: Any) -> list[tuple[str, str]]:
    return parse_qsl(call.request.body)


@pytest.fixture
def idp() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mocked:
        yield mocked


def token(**extra: Any) -> dict[str, Any]:
    return {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, **extra}


# -- the protocol ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Acme, FixedScope])
def test_a_subclass_is_an_oauth_authenticator(cls):
    assert protocol_mismatches(cls, OAuthAuthenticator) == []
    assert isinstance(make(cls), OAuthAuthenticator)
    assert (cls.persist_scopes, cls.required_scopes) == (False, ())
    create_oauth_provider_factory(cls)  # accepted where an authenticator class is


def test_a_subclass_without_a_profile_is_told_so(idp):
    class NoProfile(OAuthEndpointAuthenticator):
        authorize_url = AUTHORIZE_URL
        token_url = TOKEN_URL

    idp.post(TOKEN_URL, json=token())
    authenticator = NoProfile(
        credentials=ClientCredentials("app", "s3cret"), callback_url="", http=create_http_client()
    )
    with pytest.raises(NotImplementedError, match="NoProfile must define fetch_profile"):
        authenticator.authenticate(callback())


# -- start ----------------------------------------------------------------------------------


def test_start_sends_the_flow_with_pkce():
    response = make().start(start_input())
    assert response.status == 302
    assert response.url == (
        f"{AUTHORIZE_URL}?response_type=code&client_id=app"
        "&redirect_uri=https%3A%2F%2Fapp.example%2Fapi%2Fauth%2Facme%2Fhandler%2Fframe"
        "&scope=openid+email&state=c3RhdGU"
        "&code_challenge=Y2hhbGxlbmdl&code_challenge_method=S256"
    )


def test_authorize_params_are_added_and_replace_the_scope_in_place():
    url = make(FixedScope).start(start_input()).url
    assert urlsplit(url).query == (
        "response_type=code&client_id=app"
        "&redirect_uri=https%3A%2F%2Fapp.example%2Fapi%2Fauth%2Facme%2Fhandler%2Fframe"
        "&prompt=consent&scope=openid&state=c3RhdGU&nonce=n-1"
    )  # no PKCE, no login_hint (None)


def test_authorize_params_may_read_the_start_request():
    class Hinted(Acme):
        def authorize_params(self, input: OAuthStartInput) -> Mapping[str, str | None]:  # noqa: A002
            return {"login_hint": input.request.GET.get("login_hint")}

    assert query_of(make(Hinted).start(start_input("&login_hint=j")).url)["login_hint"] == "j"
    assert "login_hint" not in query_of(make(Hinted).start(start_input()).url)


# -- authenticate ---------------------------------------------------------------------------


def test_the_code_is_traded_and_the_profile_read(idp):
    idp.post(TOKEN_URL, json=token(refresh_token="rt-1", scope="openid email"))
    idp.get(ME_URL, json=ME)
    result = make().authenticate(callback())
    trade, me = idp.calls
    assert form(trade) == [
        ("grant_type", "authorization_code"),
        ("client_id", "app"),
        ("code_verifier", "dmVyaWZpZXI"),
        ("client_secret", "s3cret"),
        ("code", "c-1"),
        ("redirect_uri", CALLBACK_URL),
    ]
    assert "Authorization" not in trade.request.headers
    assert me.request.headers["Authorization"] == "Bearer at-1"
    assert result.full_profile == ME
    assert result.session == OAuthSession(
        access_token="at-1", scope="openid email", expires_in_seconds=3600, refresh_token="rt-1"
    )


def test_without_pkce_no_verifier_is_sent_and_basic_auth_is_used(idp):
    idp.post(TOKEN_URL, json=token())
    idp.get(ME_URL, json=ME)
    make(FixedScope, "client_secret_basic").authenticate(callback())
    trade = idp.calls[0]
    assert form(trade) == [
        ("grant_type", "authorization_code"),
        ("code", "c-1"),
        ("redirect_uri", CALLBACK_URL),
    ]
    assert trade.request.headers["Authorization"] == "Basic " + base64.b64encode(
        b"app:s3cret"
    ).decode("ascii")


def test_an_idp_error_on_the_callback_is_a_rejection_and_nothing_is_traded(idp):
    with pytest.raises(AuthenticationError, match="^Authentication rejected, no thanks$"):
        make().authenticate(callback("error=access_denied&error_description=no+thanks"))
    with pytest.raises(InputError, match="has no authorization code"):
        make().authenticate(callback("state=c3RhdGU"))
    assert len(idp.calls) == 0


def test_a_refused_code_is_an_authentication_error(idp):
    idp.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "used"})
    with pytest.raises(AuthenticationError) as raised:
        make().authenticate(callback())
    assert raised.value.message == "Authentication failed, invalid_grant: used"
    assert len(idp.calls) == 1  # no profile read


@pytest.mark.parametrize("status", [500, 503])
def test_an_idp_that_is_down_is_a_503(idp, status):
    idp.post(TOKEN_URL, status=status, body="down")
    with pytest.raises(ServiceUnavailableError):
        make().authenticate(callback())


def test_a_profile_endpoint_that_is_down_is_a_503(idp):
    idp.post(TOKEN_URL, json=token())
    idp.get(ME_URL, status=502, body="bad gateway")
    with pytest.raises(ServiceUnavailableError):
        make().authenticate(callback())


# -- refresh --------------------------------------------------------------------------------


def test_the_refresh_token_is_traded_with_the_scope_and_kept_unless_rotated(idp):
    idp.post(TOKEN_URL, json=token())
    idp.get(ME_URL, json=ME)
    result = make().refresh(refresh_input())
    assert form(idp.calls[0]) == [
        ("grant_type", "refresh_token"),
        ("client_id", "app"),
        ("client_secret", "s3cret"),
        ("scope", "openid email"),
        ("refresh_token", "rt-1"),
    ]
    assert idp.calls[1].request.headers["Authorization"] == "Bearer at-1"
    assert result.full_profile == ME
    assert result.session.refresh_token == "rt-1"
    assert result.session.scope == ""  # the answer names none


def test_a_rotated_refresh_token_replaces_the_old_one(idp):
    idp.post(TOKEN_URL, json=token(refresh_token="rt-2", scope="openid"))
    idp.get(ME_URL, json=ME)
    session = make().refresh(refresh_input()).session
    assert (session.refresh_token, session.scope) == ("rt-2", "openid")


def test_refresh_scope_and_keep_requested_scope(idp):
    idp.post(TOKEN_URL, json=token())
    idp.get(ME_URL, json=ME)
    session = make(FixedScope).refresh(refresh_input("openid email")).session
    assert "scope" not in dict(form(idp.calls[0]))
    assert session.scope == "openid email"


def test_an_empty_requested_scope_sends_none(idp):
    idp.post(TOKEN_URL, json=token())
    idp.get(ME_URL, json=ME)
    make().refresh(refresh_input(""))
    assert "scope" not in dict(form(idp.calls[0]))


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (Acme, "The refresh token was rejected, invalid_grant: expired"),
        (FixedScope, "Failed to refresh access token, invalid_grant: expired"),
    ],
)
def test_a_refused_refresh_token_is_an_authentication_error(idp, cls, message):
    idp.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "expired"})
    with pytest.raises(AuthenticationError) as raised:
        make(cls).refresh(refresh_input())
    assert raised.value.message == message


def test_a_token_endpoint_down_at_refresh_is_a_503(idp):
    idp.post(TOKEN_URL, status=503, body="down")
    with pytest.raises(ServiceUnavailableError):
        make().refresh(refresh_input())


def test_the_grants_alone_for_authenticators_that_do_more(idp):
    idp.post(TOKEN_URL, json=token(id_token="id.token.sig"))
    idp.post(TOKEN_URL, json=token(access_token="at-2"))
    authenticator = make()
    assert authenticator.trade_code(callback()).id_token == "id.token.sig"
    session = authenticator.trade_refresh_token("rt-9", scope="x", granted="x y")
    assert (session.access_token, session.scope, session.refresh_token) == ("at-2", "x y", "rt-9")
    assert dict(form(idp.calls[1]))["scope"] == "x"
    assert len(idp.calls) == 2  # no profile read


# -- profile --------------------------------------------------------------------------------


def test_the_default_transform_is_passports_with_the_id_token_for_what_is_missing():
    id_token = jwt.encode({"picture": "https://idp.example/jane.png"}, "k" * 32, algorithm="HS256")
    result = OAuthAuthenticatorResult(
        full_profile={"displayName": "Jane", "emails": [{"value": "jane@acme.org"}]},
        session=OAuthSession(access_token="at", id_token=id_token),
    )
    assert make().default_profile_transform(result) == ProfileInfo(
        email="jane@acme.org", display_name="Jane", picture="https://idp.example/jane.png"
    )
