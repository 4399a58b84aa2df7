"""The ``cfaccess`` provider against a fake Cloudflare Access on loopback.

The fake serves ``/cdn-cgi/access/certs`` and ``/cdn-cgi/access/get-identity`` and signs
Access JWTs with its RSA key; ``https://<team>.cloudflareaccess.com`` reaches it through
:meth:`wsgiauth.http.HttpClient.reroute`. Every refusal of issue 11 has its test here.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from webob import Request
from webob import Response

from tests.providers.loopback_idp import LoopbackIdp
from tests.providers.popup import build_app
from tests.providers.popup import check_config_of
from tests.providers.popup import user_entity
from wsgiauth import Config
from wsgiauth import create_auth_app
from wsgiauth.errors import ConfigError
from wsgiauth.http import create_http_client
from wsgiauth.providers import cfaccess
from wsgiauth.registry import resolve_providers

TEAM = "acme"
ORIGIN = f"https://{TEAM}.cloudflareaccess.com"
AUD = "32eafc7626e974616deaf0dc3ce63d7bcbed58a2731e84d06bc3cdf1b53c4228"
SUB = "7335d417-61da-459d-899c-0a01c76a2f94"
REFRESH = "/api/auth/cfaccess/refresh"
SERVICE_TOKEN_ID = "1uh2fh19efvfh129f1f919u21f2f19jf2.access"

IDENTITY = {
    "id": SUB,
    "name": "Jane Doe",
    "email": "jane@example.com",
    "groups": [{"id": "g1", "name": "Platform", "email": "platform@example.com"}],
    "idp": {"id": "idp-1", "type": "google"},
}


class FakeCloudflareAccess(LoopbackIdp):
    """Cloudflare Access's certs and get-identity endpoints, and its JWT signer."""

    def __init__(self) -> None:
        super().__init__()
        #: What get-identity answers, by the JWT's ``sub``.
        self.identities: dict[str, dict[str, Any]] = {SUB: dict(IDENTITY)}
        #: ``certs`` or ``identity``: that endpoint answers 502.
        self.down: set[str] = set()
        #: A status get-identity answers instead of the identity.
        self.identity_status: int | None = None

    def _route(self, request: Request, form: dict[str, str]) -> Response:
        if request.path == "/cdn-cgi/access/certs":
            if "certs" in self.down:
                return Response(status=502, body=b"<html>Bad gateway</html>")
            return _json({"keys": [self._public_jwk()], "public_cert": {"kid": self._kid}})
        if request.path == "/cdn-cgi/access/get-identity":
            if "identity" in self.down:
                return Response(status=502, body=b"<html>Bad gateway</html>")
            if self.identity_status is not None:
                return _json({"err": "no"}, status=self.identity_status)
            # The JWT comes as a cookie (whatever its configured name) and a header.
            token = request.headers.get("Cookie", "").partition("=")[2]
            claims = jwt.decode(token or "", options={"verify_signature": False})
            return _json(self.identities[claims["sub"]])
        return _json({"error": "not_found"}, status=404)

    def sign(
        self,
        *,
        key: Any = None,
        algorithm: str = "RS256",
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """An Access application token; ``claims`` override (None removes one)."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "aud": [AUD],
            "email": "jane@example.com",
            "exp": now + 600,
            "iat": now,
            "nbf": now,
            "iss": ORIGIN,
            "type": "app",
            "identity_nonce": "6ei69kawdKzMIAPF",
            "sub": SUB,
            "country": "US",
        }
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(
            payload,
            None if algorithm == "none" else self._key if key is None else key,
            algorithm=algorithm,
            headers={"kid": self._kid, **(headers or {})},
        )

    def calls(self, path: str) -> list[dict[str, str]]:
        """The headers of every request to ``path``."""
        return [headers for _, p, _, headers in self.requests if p == path]


def _json(body: Any, status: int = 200) -> Response:
    return Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


@pytest.fixture
def cf() -> Iterator[FakeCloudflareAccess]:
    with FakeCloudflareAccess().serving() as fake:
        yield fake


def provider_config(**extra: Any) -> dict[str, Any]:
    return {
        "teamName": TEAM,
        "audience": AUD,
        "signIn": {"resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]},
        **extra,
    }


USERS = [user_entity("jane", email="jane@example.com"), user_entity("bot", email="bot@example.com")]


def app_for(tmp_path: Path, cf: FakeCloudflareAccess, **extra: Any) -> Any:
    return build_app(
        tmp_path,
        {"cfaccess": provider_config(**extra)},
        users=USERS,
        reroute={ORIGIN: cf.base_url},
    )


def error_of(response: Any) -> dict[str, str]:
    body = response.json
    assert body["response"] == {"statusCode": response.status_int}
    return body["error"]


# -- sign-in ---------------------------------------------------------------------------------


def test_refresh_with_the_header_signs_in_the_catalog_user(tmp_path, cf):
    app = app_for(tmp_path, cf)
    token = cf.sign()
    # No X-Requested-With: Backstage's proxy refresh does not ask for it.
    body = app.get(REFRESH, headers={"cf-access-jwt-assertion": token}).json
    assert body["profile"] == {"email": "jane@example.com", "displayName": "Jane Doe"}
    info = body["providerInfo"]
    assert list(info) == ["claims", "cfIdentity", "expiresInSeconds", "token"]
    assert info["token"] == token
    assert info["cfIdentity"] == IDENTITY
    assert info["claims"]["sub"] == SUB
    assert info["claims"]["aud"] == [AUD]
    assert info["expiresInSeconds"] == 600
    identity = body["backstageIdentity"]["identity"]
    assert identity["userEntityRef"] == "user:default/jane"
    assert identity["ownershipEntityRefs"] == ["user:default/jane"]
    # get-identity was asked as Backstage asks it: the JWT in the header and the cookie.
    [asked] = cf.calls("/cdn-cgi/access/get-identity")
    assert asked["Cf-Access-Jwt-Assertion"] == token
    assert asked["Cookie"] == f"CF_Authorization={token}"


def test_backstage_token_verifies_against_the_auth_jwks(tmp_path, cf):
    app = app_for(tmp_path, cf)
    body = app.get(REFRESH, headers={"cf-access-jwt-assertion": cf.sign()}).json
    token = body["backstageIdentity"]["token"]
    jwks = app.get("/api/auth/.well-known/jwks.json").json
    [key] = [k for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(
        token,
        jwt.PyJWK.from_dict(key).key,
        algorithms=["ES256"],
        audience="backstage",
        issuer="http://localhost:7007/api/auth",
    )
    assert claims["sub"] == "user:default/jane"


def test_refresh_with_the_cookie(tmp_path, cf):
    app = app_for(tmp_path, cf)
    app.set_cookie("CF_Authorization", cf.sign())
    body = app.get(REFRESH).json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


def test_custom_header_and_cookie_names(tmp_path, cf):
    app = app_for(tmp_path, cf, jwtHeaderName="x-my-jwt", authorizationCookieName="MY_AUTH")
    token = cf.sign()
    # The default header no longer counts.
    missing = app.get(REFRESH, headers={"cf-access-jwt-assertion": token}, status=401)
    assert error_of(missing) == {
        "name": "AuthenticationError",
        "message": "Missing x-my-jwt and MY_AUTH from Cloudflare Access",
    }
    body = app.get(REFRESH, headers={"x-my-jwt": token}).json
    assert body["profile"]["email"] == "jane@example.com"
    app.set_cookie("MY_AUTH", token)
    assert app.get(REFRESH).json["profile"]["email"] == "jane@example.com"
    asked = cf.calls("/cdn-cgi/access/get-identity")[0]
    assert asked["X-My-Jwt"] == token
    assert asked["Cookie"] == f"MY_AUTH={token}"


def test_email_local_part_resolver(tmp_path, cf):
    app = build_app(
        tmp_path,
        {
            "cfaccess": provider_config(
                signIn={
                    "resolvers": [
                        {
                            "resolver": "emailLocalPartMatchingUserEntityName",
                            "allowedDomains": ["example.com"],
                        }
                    ]
                }
            )
        },
        users=[user_entity("jane")],
        reroute={ORIGIN: cf.base_url},
    )
    body = app.get(REFRESH, headers={"cf-access-jwt-assertion": cf.sign()}).json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


def test_user_not_in_the_catalog_is_refused(tmp_path, cf):
    cf.identities["other"] = {**IDENTITY, "id": "other", "email": "nobody@example.com"}
    app = app_for(tmp_path, cf)
    token = cf.sign(sub="other")
    # As in Backstage: the resolver's NotFoundError, a 404.
    response = app.get(REFRESH, headers={"cf-access-jwt-assertion": token}, status=404)
    assert error_of(response)["name"] == "NotFoundError"


def test_identity_is_cached_by_subject(tmp_path, cf):
    app = app_for(tmp_path, cf)
    first = cf.sign()
    app.get(REFRESH, headers={"cf-access-jwt-assertion": first})
    # A later token of the same user: the identity (and its groups) is not asked again,
    # but the answer carries the claims of the token presented.
    second = cf.sign(exp=int(time.time()) + 900)
    body = app.get(REFRESH, headers={"cf-access-jwt-assertion": second}).json
    assert len(cf.calls("/cdn-cgi/access/get-identity")) == 1
    assert body["providerInfo"]["token"] == second
    assert body["providerInfo"]["expiresInSeconds"] == 900
    assert body["providerInfo"]["cfIdentity"]["groups"] == IDENTITY["groups"]


def test_identity_cache_expires_with_the_token_that_filled_it():
    clock = [1000.0]
    cache = cfaccess._IdentityCache(lambda: clock[0])
    cache.put("sub", {"id": "sub"}, token_expires_at=1100.0)
    assert cache.get("sub") == {"id": "sub"}
    clock[0] = 1100.0
    assert cache.get("sub") is None
    cache.put("sub", {"id": "sub"}, token_expires_at=10**9)
    clock[0] += cfaccess.IDENTITY_CACHE_SECONDS
    assert cache.get("sub") is None


def test_service_token_signs_in_as_its_subject(tmp_path, cf):
    app = app_for(
        tmp_path, cf, serviceTokens=[{"token": SERVICE_TOKEN_ID, "subject": "bot@example.com"}]
    )
    token = cf.sign(sub="", email=None, common_name=SERVICE_TOKEN_ID)
    body = app.get(REFRESH, headers={"cf-access-jwt-assertion": token}).json
    assert body["profile"] == {"email": "bot@example.com", "displayName": "Bot"}
    assert body["providerInfo"]["cfIdentity"] == {
        "id": SERVICE_TOKEN_ID,
        "name": "Bot",
        "email": "bot@example.com",
        "groups": [],
    }
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/bot"
    assert cf.calls("/cdn-cgi/access/get-identity") == []


def test_service_token_not_configured_is_refused(tmp_path, cf):
    app = app_for(tmp_path, cf, serviceTokens=[{"token": "other.access", "subject": "x@y.z"}])
    token = cf.sign(sub=None, common_name=SERVICE_TOKEN_ID)
    response = app.get(REFRESH, headers={"cf-access-jwt-assertion": token}, status=401)
    assert error_of(response) == {
        "name": "AuthenticationError",
        "message": f"{SERVICE_TOKEN_ID} is not a permitted Service Token.",
    }


def test_token_without_sub_or_common_name_is_refused(tmp_path, cf):
    app = app_for(tmp_path, cf)
    response = app.get(REFRESH, headers={"cf-access-jwt-assertion": cf.sign(sub=None)}, status=401)
    assert error_of(response)["message"] == (
        "Missing both sub and common_name from Cloudflare Access JWT"
    )


@pytest.mark.parametrize("route", ["start", "handler/frame"])
def test_no_popup(tmp_path, cf, route):
    app = app_for(tmp_path, cf)
    assert error_of(app.get(f"/api/auth/cfaccess/{route}", status=501))["name"] == (
        "NotImplementedError"
    )


# -- refusals (issue 11): 401 in Backstage's error shape --------------------------------------


def refused(tmp_path: Path, cf: FakeCloudflareAccess, token: str) -> dict[str, str]:
    app = app_for(tmp_path, cf)
    response = app.get(REFRESH, headers={"cf-access-jwt-assertion": token}, status=401)
    error = error_of(response)
    assert error["name"] == "AuthenticationError"
    assert "backstageIdentity" not in response.text
    # A refused token never reaches the identity endpoint.
    assert cf.calls("/cdn-cgi/access/get-identity") == []
    return error


def test_missing_header_and_cookie(tmp_path, cf):
    app = app_for(tmp_path, cf)
    response = app.get(REFRESH, status=401)
    assert error_of(response) == {
        "name": "AuthenticationError",
        "message": "Missing cf-access-jwt-assertion and CF_Authorization from Cloudflare Access",
    }
    assert cf.requests == []


def test_bad_signature(tmp_path, cf, other_rsa_key):
    # Signed by a key Cloudflare does not publish, under the published kid.
    error = refused(tmp_path, cf, cf.sign(key=other_rsa_key))
    assert error["message"] == "Invalid Cloudflare Access JWT: Signature verification failed"


def test_tampered_payload(tmp_path, cf):
    header, payload, signature = cf.sign().split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["sub"] = "someone-else"
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    error = refused(tmp_path, cf, f"{header}.{forged}.{signature}")
    assert error["message"] == "Invalid Cloudflare Access JWT: Signature verification failed"


def test_wrong_audience(tmp_path, cf):
    error = refused(tmp_path, cf, cf.sign(aud=["another-application"]))
    assert error["message"] == "Invalid Cloudflare Access JWT: Audience doesn't match"


def test_wrong_issuer(tmp_path, cf):
    error = refused(tmp_path, cf, cf.sign(iss="https://evil.cloudflareaccess.com"))
    assert error["message"] == "Invalid Cloudflare Access JWT: Invalid issuer"


def test_expired_token(tmp_path, cf):
    now = int(time.time())
    error = refused(tmp_path, cf, cf.sign(iat=now - 700, nbf=now - 700, exp=now - 100))
    assert error["message"] == "Invalid Cloudflare Access JWT: Signature has expired"


def test_token_without_expiry(tmp_path, cf):
    error = refused(tmp_path, cf, cf.sign(exp=None))
    assert error["message"] == 'Invalid Cloudflare Access JWT: Token is missing the "exp" claim'


def test_kid_not_in_the_key_set(tmp_path, cf):
    error = refused(tmp_path, cf, cf.sign(headers={"kid": "not-a-published-kid"}))
    assert error["message"] == (
        "Cloudflare Access JWT is signed with a key ('not-a-published-kid') not in "
        f"{ORIGIN}/cdn-cgi/access/certs"
    )


def test_alg_none(tmp_path, cf):
    error = refused(tmp_path, cf, cf.sign(algorithm="none"))
    assert error["message"] == (
        "Cloudflare Access JWT algorithm 'none' is not allowed (expected RS256)"
    )


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_alg_hs(tmp_path, cf, algorithm):
    error = refused(tmp_path, cf, cf.sign(key=secrets.token_bytes(64), algorithm=algorithm))
    assert error["message"] == (
        f"Cloudflare Access JWT algorithm '{algorithm}' is not allowed (expected RS256)"
    )


def test_not_a_jwt(tmp_path, cf):
    error = refused(tmp_path, cf, "not-a-jwt")
    assert error["message"].startswith("Invalid Cloudflare Access JWT:")


def test_identity_endpoint_refusing_the_token_is_a_401(tmp_path, cf):
    cf.identity_status = 403
    app = app_for(tmp_path, cf)
    response = app.get(REFRESH, headers={"cf-access-jwt-assertion": cf.sign()}, status=401)
    assert error_of(response) == {
        "name": "AuthenticationError",
        "message": "Cloudflare Access refused the identity of this JWT (403)",
    }


# -- outages: 503, never 401 -----------------------------------------------------------------


def test_key_endpoint_down_is_a_503(tmp_path, cf):
    cf.down.add("certs")
    app = app_for(tmp_path, cf)
    response = app.get(REFRESH, headers={"cf-access-jwt-assertion": cf.sign()}, status=503)
    error = error_of(response)
    assert error["name"] == "ServiceUnavailableError"
    assert error["message"].startswith(
        f"Could not load the Cloudflare Access signing keys from {ORIGIN}/cdn-cgi/access/certs"
    )


def test_key_endpoint_unreachable_is_a_503(tmp_path, cf):
    # The team host rerouted to a port nobody listens on.
    app = build_app(
        tmp_path,
        {"cfaccess": provider_config()},
        users=USERS,
        reroute={ORIGIN: "http://127.0.0.1:9"},
    )
    response = app.get(REFRESH, headers={"cf-access-jwt-assertion": cf.sign()}, status=503)
    assert error_of(response)["name"] == "ServiceUnavailableError"
    assert "Cloudflare Access signing keys" in error_of(response)["message"]


def test_identity_endpoint_down_is_a_503(tmp_path, cf):
    cf.down.add("identity")
    app = app_for(tmp_path, cf)
    response = app.get(REFRESH, headers={"cf-access-jwt-assertion": cf.sign()}, status=503)
    error = error_of(response)
    assert error["name"] == "ServiceUnavailableError"
    assert error["message"].startswith(
        f"Failed to populate access identity information from {ORIGIN}/cdn-cgi/access/get-identity"
    )


def test_keys_are_cached(tmp_path, cf):
    app = app_for(tmp_path, cf)
    for _ in range(3):
        app.get(REFRESH, headers={"cf-access-jwt-assertion": cf.sign()})
    assert len(cf.calls("/cdn-cgi/access/certs")) == 1


# -- config ----------------------------------------------------------------------------------


def test_registered():
    assert resolve_providers(["cfaccess"])["cfaccess"] is cfaccess.module


def startup(provider: dict[str, Any]) -> ConfigError:
    config = {
        "app": {"baseUrl": "http://localhost:3000"},
        "backend": {"baseUrl": "http://localhost:7007"},
        "auth": {"keyStore": {"provider": "memory"}, "providers": {"cfaccess": provider}},
    }
    with pytest.raises(ConfigError) as caught:
        create_auth_app(Config.from_dict(config))
    return caught.value


def test_unknown_key_fails_at_startup():
    error = startup(provider_config(jwtHeader="x"))
    assert error.path == "auth.providers.cfaccess.jwtHeader"
    assert "unknown key (known: audience, authorizationCookieName, jwtHeaderName" in str(error)


def test_unknown_service_token_key_fails_at_startup():
    error = startup(provider_config(serviceTokens=[{"token": "a", "subject": "b", "sub": "c"}]))
    assert error.path == "auth.providers.cfaccess.serviceTokens[0].sub"


def test_audience_is_required():
    provider = provider_config()
    del provider["audience"]
    assert startup(provider).path == "auth.providers.cfaccess.audience"


def test_team_name_must_be_a_host_label():
    assert startup(provider_config(teamName="evil.com/x?")).path == (
        "auth.providers.cfaccess.teamName"
    )


def test_a_resolver_is_required():
    provider = provider_config()
    del provider["signIn"]
    assert startup(provider).path == "auth.providers.cfaccess.signIn"


#: backstage.io/docs/auth/cloudflare/provider, its placeholders filled, the optional
#: ``sessionDuration`` uncommented, plus ``audience``, required since 0.5.0 (CHANGELOG).
DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  providers:
    cfaccess:
      # You can find the team name in the Cloudflare Zero Trust dashboard.
      teamName: acme
      audience: 32eafc7626e974616deaf0dc3ce63d7bcbed58a2731e84d06bc3cdf1b53c4228
      serviceTokens:
        - token: '1uh2fh19efvfh129f1f919u21f2f19jf2.access'
          subject: 'bot-user@your-company.com'
      jwtHeaderName: my-header
      authorizationCookieName: MY_CAUTHORIZATION_COOKIE_NAME
      sessionDuration: { hours: 24 }
      signIn:
        resolvers:
          - resolver: emailMatchingUserEntityProfileEmail
"""


def test_check_config_passes_the_documented_config(tmp_path):
    assert check_config_of(tmp_path, DOCS_CONFIG) == []


def test_check_config_names_a_misspelt_key(tmp_path):
    [error] = check_config_of(
        tmp_path, DOCS_CONFIG.replace("authorizationCookieName", "authorisationCookieName")
    )
    assert error.path == "auth.providers.cfaccess.authorisationCookieName"
    assert "unknown key" in str(error)
    assert yaml.safe_load(DOCS_CONFIG)  # the fixture is valid YAML


def test_only_rs256_keys_are_used():
    authenticator = cfaccess.CloudflareAccessAuthenticator(
        team_name=TEAM, audience=AUD, http=create_http_client()
    )
    assert authenticator.keys.algorithms == ("RS256",)
    assert authenticator.keys.jwks_url == f"{ORIGIN}/cdn-cgi/access/certs"
