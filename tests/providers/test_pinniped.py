"""The ``pinniped`` provider: the popup flow against a fake Pinniped Supervisor on loopback
(discovery, ES256 ID tokens, PKCE, the RFC 8693 token exchange), its faults, and the config."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import parse_web_message
from tests.providers.loopback_idp import LoopbackIdp
from tests.providers.loopback_idp import _json
from tests.providers.loopback_idp import query_of
from tests.providers.popup import FAULTS
from tests.providers.popup import build_app
from tests.providers.popup import check_config_of
from tests.providers.popup import fault_error
from tests.providers.popup import logout
from tests.providers.popup import refresh
from tests.providers.popup import sign_in
from tests.providers.popup import user_entity
from wsgiauth.errors import NotFoundError
from wsgiauth.http import create_http_client
from wsgiauth.oauth import ClientCredentials
from wsgiauth.oauth import OAuthAuthenticatorResult
from wsgiauth.oauth import OAuthSession
from wsgiauth.oauth import ProfileInfo
from wsgiauth.providers.pinniped import PinnipedAuthenticator
from wsgiauth.providers.pinniped import module
from wsgiauth.sign_in import create_sign_in_resolver_factory

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
SCOPES = "openid pinniped:request-audience username offline_access"


def _username_from_id_token(options):
    """A custom resolver, as a Pinniped user writes one: the ID token's ``username``."""

    def resolve(info, context):
        claims = jwt.decode(info.result.session.id_token, options={"verify_signature": False})
        if "username" not in claims:
            raise NotFoundError("no username")
        return context.sign_in_with_catalog_user({"entityRef": {"name": claims["username"]}})

    return resolve


username_from_id_token = create_sign_in_resolver_factory(_username_from_id_token)
RESOLVER = f"{__name__}:username_from_id_token"


class PinnipedFake(LoopbackIdp):
    """A Supervisor FederationDomain: ES256 ID tokens and the cluster token exchange."""

    def __init__(self) -> None:
        super().__init__(
            authorize_path="/oauth2/authorize",
            token_path="/oauth2/token",
            oidc_issuer_path="/issuer",
            expires_in=120,
        )
        self._ec_key = ec.generate_private_key(ec.SECP256R1())
        self._ec_kid = secrets.token_hex(4)
        #: The RFC 8693 requests seen.
        self.exchanges: list[dict[str, str]] = []

    def discovery(self):
        return {
            **super().discovery(),
            "id_token_signing_alg_values_supported": ["ES256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def id_token(self, grant, **claims):
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + 120,
            **grant.user.get("id_token", {}),
            **claims,
        }
        return jwt.encode(payload, self._ec_key, algorithm="ES256", headers={"kid": self._ec_kid})

    def _public_jwk(self):
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self._ec_key.public_key(), as_dict=True)
        return {**jwk, "kid": self._ec_kid, "use": "sig", "alg": "ES256"}

    def _token(self, request, form):
        if form.get("grant_type") != TOKEN_EXCHANGE:
            return super()._token(request, form)
        self.exchanges.append(form)
        if not self._client_ok(request, form):
            return _json({"error": "invalid_client"}, status=401)
        grant = self._access.get(form.get("subject_token", ""))
        if (
            grant is None
            or form.get("subject_token_type") != "urn:ietf:params:oauth:token-type:access_token"
            or form.get("requested_token_type") != "urn:ietf:params:oauth:token-type:jwt"
            or not form.get("audience")
            or self.fault == "exchange_denied"
        ):
            return _json({"error": "invalid_request", "error_description": "bad exchange"}, 400)
        cluster_token = self.id_token(grant, aud=form["audience"])
        return _json(
            {
                "access_token": cluster_token,
                "token_type": "N_A",
                "issued_token_type": "urn:ietf:params:oauth:token-type:jwt",
            }
        )


@pytest.fixture
def idp():
    fake = PinnipedFake()
    fake.user = {"id_token": {"sub": "c7b1-uid", "username": "jane", "groups": ["devs"]}}
    with fake.serving():
        yield fake


def pinniped_app(tmp_path, idp, **extra):
    env = {
        "federationDomain": idp.issuer,
        "clientId": idp.client_id,
        "clientSecret": idp.client_secret,
        "signIn": {"resolvers": [{"resolver": RESOLVER}]},
        **extra,
    }
    return build_app(tmp_path, {"pinniped": {"development": env}}, users=[user_entity("jane")])


# -- profile and resolvers ----------------------------------------------------------------


def test_the_profile_is_empty_as_in_backstage():
    authenticator = PinnipedAuthenticator(
        credentials=ClientCredentials("id", "secret"),
        callback_url="",
        federation_domain="https://pinniped.example/issuer",
        http=create_http_client(),
    )
    result = OAuthAuthenticatorResult(
        full_profile={"provider": "", "id": "", "displayName": ""},
        session=OAuthSession(access_token="at", id_token="x.y.z"),
    )
    assert authenticator.default_profile_transform(result) == ProfileInfo()


def test_only_the_common_resolvers_are_offered():
    assert module.resolvers == {}


# -- the popup flow -----------------------------------------------------------------------


def test_a_full_popup_flow(tmp_path, idp):
    app = pinniped_app(tmp_path, idp)
    signed_in = sign_in(app, idp, "pinniped")

    assert signed_in.authorize_url.startswith(f"{idp.base_url}/oauth2/authorize?")
    query = query_of(signed_in.authorize_url)
    assert query["scope"] == SCOPES
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == "http://localhost:7007/api/auth/pinniped/handler/frame"
    assert "nonce" not in query and "prompt" not in query

    token_headers = next(h for _, path, _, h in idp.requests if path == "/oauth2/token")
    assert token_headers["Authorization"].startswith("Basic ")  # client_secret_basic

    response = signed_in.message["response"]
    assert response["profile"] == {}
    info = response["providerInfo"]
    assert jwt.decode(info["idToken"], options={"verify_signature": False})["aud"] == idp.client_id
    assert info["scope"] == SCOPES
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert idp.exchanges == []  # no audience asked: no token exchange

    refreshed = refresh(app, "pinniped").json
    assert refreshed["providerInfo"]["accessToken"] != info["accessToken"]
    assert refreshed["providerInfo"]["idToken"]
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    logout(app, "pinniped")
    refresh(app, "pinniped", status=401)


def test_an_audience_gets_a_cluster_scoped_id_token(tmp_path, idp):
    app = pinniped_app(tmp_path, idp)
    start = app.get(
        "/api/auth/pinniped/start?env=development&origin=http://localhost:3000"
        "&audience=prod-cluster",
        status=302,
    )
    state = bytes.fromhex(query_of(start.location)["state"]).decode()
    assert state.endswith("&audience=prod-cluster")
    callback = urlsplit(idp.consent(start.location))
    page = app.get(f"{callback.path}?{callback.query}", status=200)
    info = parse_web_message(page.text)["response"]["providerInfo"]

    [exchange] = idp.exchanges
    assert exchange["grant_type"] == TOKEN_EXCHANGE
    assert exchange["subject_token"] == info["accessToken"]
    assert exchange["audience"] == "prod-cluster"
    claims = jwt.decode(info["idToken"], options={"verify_signature": False})
    assert claims["aud"] == "prod-cluster"
    assert claims["username"] == "jane"


def test_a_refused_exchange_reaches_the_popup(tmp_path, idp):
    app = pinniped_app(tmp_path, idp)
    start = app.get("/api/auth/pinniped/start?env=development&audience=prod", status=302)
    callback = urlsplit(idp.consent(start.location))
    idp.fault = "exchange_denied"
    page = app.get(f"{callback.path}?{callback.query}", status=200)
    error = parse_web_message(page.text)["error"]
    assert error["name"] == "AuthenticationError"
    assert error["message"].startswith('Failed to get cluster specific ID token for "prod"')


def test_a_too_long_audience_is_refused_at_start(tmp_path, idp):
    app = pinniped_app(tmp_path, idp)
    app.get(f"/api/auth/pinniped/start?env=development&audience={'a' * 300}", status=400)


def test_an_id_token_not_signed_es256_is_refused(tmp_path, idp):
    app = pinniped_app(tmp_path, idp)
    idp.id_token = lambda grant, **claims: LoopbackIdp.id_token(idp, grant, **claims)  # RS256
    error = sign_in(app, idp, "pinniped").message["error"]
    assert error["name"] == "AuthenticationError"
    assert "ES256" in error["message"]


@pytest.mark.parametrize(("fault", "name", "message"), FAULTS)
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, idp, fault, name, message):
    error = fault_error(pinniped_app(tmp_path, idp), idp, "pinniped", fault)
    assert error["name"] == name
    assert message in error["message"]


# -- config -------------------------------------------------------------------------------

#: Backstage documents no YAML for pinniped; these are its config.d.ts keys.
CONFIG = """
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    pinniped:
      development:
        federationDomain: ${PINNIPED_FEDERATION_DOMAIN}
        clientId: ${PINNIPED_CLIENT_ID}
        clientSecret: ${PINNIPED_CLIENT_SECRET}
        sessionDuration: { hours: 24 }
"""
ENV = {
    "PINNIPED_FEDERATION_DOMAIN": "https://pinniped-supervisor.example.com/issuer",
    "PINNIPED_CLIENT_ID": "client.oauth.pinniped.dev-backstage",
    "PINNIPED_CLIENT_SECRET": "secret",
}


def test_the_config_passes_check_config(tmp_path):
    assert check_config_of(tmp_path, CONFIG, environ=ENV) == []


@pytest.mark.parametrize("bad", ["federationDomian", "scope"])
def test_a_wrong_key_is_named(tmp_path, bad):
    document = yaml.safe_load(CONFIG)
    env = document["auth"]["providers"]["pinniped"]["development"]
    env[bad] = env.pop("federationDomain") if bad == "federationDomian" else "openid"
    errors = check_config_of(tmp_path, document, environ=ENV)
    assert errors
    assert errors[0].path.endswith(f"pinniped.development.{bad}")
