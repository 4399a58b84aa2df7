"""The ``gcpIap`` provider: the IAP JWT header, checked against a fake Google key endpoint.

The fake serves ``/iap/verify/public_key-jwk`` on loopback for ``www.gstatic.com``,
rerouted by the HttpClient test seam; tokens are ES256, signed by test keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.providers.key_endpoint import KeyEndpoint
from tests.providers.key_endpoint import sign_es256
from tests.providers.popup import build_app
from tests.providers.popup import check_config_of
from tests.providers.popup import user_entity
from tests.providers.proxy_flow import assert_refused
from tests.providers.proxy_flow import ec_key_fixture
from wsgiauth.providers import gcp_iap
from wsgiauth.registry import BUILTIN_PROVIDERS

AUDIENCE = "/projects/123456789/global/backendServices/987654321"
JWKS_PATH = "/iap/verify/public_key-jwk"
KID = "0oeLcQ"
SUB = "accounts.google.com:118171344853296716226"
JANE = user_entity(
    "jane",
    email="jane@acme.org",
    **{"google.com/email": "jane@acme.org", "google.com/user-id": "118171344853296716226"},
)
EMAIL_RESOLVER = {"signIn": {"resolvers": [{"resolver": "emailMatchingUserEntityAnnotation"}]}}
HEADER = "x-goog-iap-jwt-assertion"


key = ec_key_fixture()
other_key = ec_key_fixture()


def public_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "ES256", "use": "sig"}


@pytest.fixture
def google(key) -> Iterator[KeyEndpoint]:
    endpoint = KeyEndpoint()
    endpoint.serve(
        JWKS_PATH, {"keys": [public_jwk(key, KID)]}, headers={"Cache-Control": "max-age=300"}
    )
    with endpoint.serving():
        yield endpoint


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    out = {
        "aud": AUDIENCE,
        "email": "jane@acme.org",
        "exp": now + 600,
        "iat": now,
        "iss": "https://cloud.google.com/iap",
        "sub": SUB,
        "hd": "acme.org",
    }
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not None}


def token(key, *, kid: str | None = KID, **overrides: Any) -> str:
    return sign_es256(key, {"kid": kid} if kid else {}, claims(**overrides))


def app(tmp_path, google: KeyEndpoint, provider: dict[str, Any] | None = None):
    config = {"audience": AUDIENCE, **EMAIL_RESOLVER, **(provider or {})}
    return build_app(
        tmp_path,
        {"gcpIap": config},
        users=[JANE],
        reroute={"https://www.gstatic.com": google.base_url},
    )


def refresh(testapp, value: str | None, *, header: str = HEADER, status: int = 200) -> Any:
    headers = {header: value} if value is not None else {}
    return testapp.get("/api/auth/gcpIap/refresh", headers=headers, status=status)


def refused(testapp, value: str | None, message: str, **kw: Any) -> None:
    assert_refused(refresh(testapp, value, status=401, **kw), message)


# -- the module ------------------------------------------------------------------------------


def test_module_is_registered_under_backstages_id() -> None:
    assert BUILTIN_PROVIDERS["gcpIap"] == "wsgiauth.providers.gcp_iap:module"
    assert gcp_iap.module.provider_id == "gcpIap"
    assert set(gcp_iap.module.resolvers) == {
        "emailMatchingUserEntityAnnotation",
        "idMatchingUserEntityAnnotation",
    }


# -- the /refresh flow -----------------------------------------------------------------------


def test_refresh_signs_in_the_catalog_user_by_google_com_email(tmp_path, google, key) -> None:
    testapp = app(tmp_path, google)
    sent = claims()
    # No X-Requested-With: Backstage's proxy refresh asks for none either.
    body = refresh(testapp, sign_es256(key, {"kid": KID}, sent)).json
    assert body["profile"] == {"email": "jane@acme.org"}
    assert body["providerInfo"] == {"iapToken": sent}
    identity = body["backstageIdentity"]["identity"]
    assert identity["userEntityRef"] == "user:default/jane"
    assert identity["ownershipEntityRefs"] == ["user:default/jane"]
    assert google.requests == [JWKS_PATH]


def test_keys_are_cached_between_requests(tmp_path, google, key) -> None:
    testapp = app(tmp_path, google)
    for _ in range(3):
        refresh(testapp, token(key))
    assert google.requests == [JWKS_PATH]


def test_id_matching_user_entity_annotation_uses_the_id_in_sub(tmp_path, google, key) -> None:
    resolver = {"signIn": {"resolvers": [{"resolver": "idMatchingUserEntityAnnotation"}]}}
    testapp = app(tmp_path, google, resolver)
    # The email is nobody's: only the google.com/user-id annotation can find jane.
    body = refresh(testapp, token(key, email="someone@else.example")).json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


def test_id_matching_dangerous_fallback_names_the_user_id(tmp_path, google, key) -> None:
    resolver = {
        "signIn": {
            "resolvers": [
                {
                    "resolver": "idMatchingUserEntityAnnotation",
                    "dangerouslyAllowSignInWithoutUserInCatalog": True,
                }
            ]
        }
    }
    testapp = app(tmp_path, google, resolver)
    body = refresh(testapp, token(key, sub="accounts.google.com:42")).json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/42"


def test_a_user_missing_from_the_catalog_is_not_signed_in(tmp_path, google, key) -> None:
    testapp = app(tmp_path, google)
    body = refresh(testapp, token(key, email="stranger@acme.org"), status=404).json
    assert body["error"]["name"] == "NotFoundError"


def test_a_custom_jwt_header(tmp_path, google, key) -> None:
    testapp = app(tmp_path, google, {"jwtHeader": "x-custom-header"})
    body = refresh(testapp, token(key), header="x-custom-header").json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    refused(testapp, token(key), "Missing Google IAP header")


# -- refusals --------------------------------------------------------------------------------


def test_a_missing_header_is_refused(tmp_path, google) -> None:
    testapp = app(tmp_path, google)
    refused(testapp, None, "Missing Google IAP header")
    refused(testapp, "", "Missing Google IAP header")
    assert google.requests == []


def test_a_bad_signature_is_refused(tmp_path, google, other_key) -> None:
    refused(app(tmp_path, google), token(other_key), "Signature verification failed")


def test_a_tampered_payload_is_refused(tmp_path, google, key) -> None:
    header, _, signature = token(key).split(".")
    forged = sign_es256(key, {"kid": KID}, claims(email="boss@acme.org")).split(".")[1]
    refused(app(tmp_path, google), f"{header}.{forged}.{signature}", "Signature verification")


def test_the_wrong_audience_is_refused(tmp_path, google, key) -> None:
    testapp = app(tmp_path, google)
    refused(testapp, token(key, aud="/projects/1/apps/other"), "wrong recipient")
    refused(testapp, token(key, aud=[AUDIENCE]), "wrong recipient")


def test_the_wrong_issuer_is_refused(tmp_path, google, key) -> None:
    refused(app(tmp_path, google), token(key, iss="https://accounts.google.com"), "invalid issuer")


def test_an_expired_token_is_refused(tmp_path, google, key) -> None:
    now = int(time.time())
    testapp = app(tmp_path, google)
    # google-auth-library allows 300 s of clock skew: 299 s late passes, 301 s does not.
    refresh(testapp, token(key, iat=now - 1000, exp=now - 299))
    refused(testapp, token(key, iat=now - 1000, exp=now - 301), "Signature has expired")


def test_a_token_without_exp_or_iat_is_refused(tmp_path, google, key) -> None:
    testapp = app(tmp_path, google)
    refused(testapp, token(key, exp=None), 'missing the "exp" claim')
    refused(testapp, token(key, iat=None), 'missing the "iat" claim')


def test_a_token_issued_in_the_future_or_living_too_long_is_refused(tmp_path, google, key) -> None:
    now = int(time.time())
    testapp = app(tmp_path, google)
    refused(testapp, token(key, iat=now + 400, exp=now + 1000), "not yet valid")
    refused(testapp, token(key, exp=now + 86400 + 60), "too far in future")


def test_a_kid_not_in_the_key_set_is_refused(tmp_path, google, key) -> None:
    testapp = app(tmp_path, google)
    refused(testapp, token(key, kid="unknown"), "no Google IAP key has the id 'unknown'")
    refused(testapp, token(key, kid=None), "the token names no key")


@pytest.mark.parametrize("alg", ["none", "HS256", "HS512", "RS256", "ES384"])
def test_algorithms_other_than_es256_are_refused(tmp_path, google, key, alg) -> None:
    testapp = app(tmp_path, google)
    # "none" with no signature; HS256 as if keyed with the published public key.
    payload = token(key).split(".")[1]
    header = jwt.utils.base64url_encode(
        json.dumps({"alg": alg, "kid": KID, "typ": "JWT"}).encode()
    ).decode()
    refused(testapp, f"{header}.{payload}.", "the algorithm must be ES256")
    refused(testapp, f"{header}.{payload}.c2lnbmF0dXJl", "the algorithm must be ES256")


def test_a_token_without_sub_or_email_is_refused(tmp_path, google, key) -> None:
    testapp = app(tmp_path, google)
    refused(testapp, token(key, sub=None), "missing subject claim")
    refused(testapp, token(key, email=None), "missing email claim")


def test_garbage_is_refused(tmp_path, google) -> None:
    refused(app(tmp_path, google), "not-a-jwt", "Google IAP token verification failed")


# -- the key endpoint down -------------------------------------------------------------------


def test_a_key_endpoint_that_is_down_is_a_503_not_a_401(tmp_path, google, key) -> None:
    google.down = True
    testapp = app(tmp_path, google)
    body = refresh(testapp, token(key), status=503).json
    assert body["error"]["name"] == "ServiceUnavailableError"
    assert body["error"]["message"].startswith("Unable to list Google IAP token verification keys")
    # ... and again while it stays down, without asking it on every request.
    refresh(testapp, token(key), status=503)
    assert len(google.requests) == 1


def test_a_missing_header_is_401_even_when_the_keys_are_down(tmp_path, google) -> None:
    google.down = True
    refused(app(tmp_path, google), None, "Missing Google IAP header")


# -- config ----------------------------------------------------------------------------------

#: From https://backstage.io/docs/auth/google/gcp-iap-auth (Configuration).
BACKSTAGE_DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: production
  providers:
    gcpIap:
      audience: '/projects/<project number>/global/backendServices/<backend service id>'
      jwtHeader: x-custom-header # Optional: Only if you are using a custom header for the IAP JWT
      signIn:
        resolvers:
          # See https://backstage.io/docs/auth/google/gcp-iap-auth#resolvers for more resolvers
          - resolver: emailMatchingUserEntityAnnotation
"""


def test_backstages_documented_config_passes_check_config(tmp_path) -> None:
    assert check_config_of(tmp_path, BACKSTAGE_DOCS_CONFIG, environ={}) == []
    fuller = BACKSTAGE_DOCS_CONFIG.replace(
        "      signIn:", "      sessionDuration: { hours: 24 }\n      signIn:"
    ).replace("emailMatchingUserEntityAnnotation", "idMatchingUserEntityAnnotation")
    assert check_config_of(tmp_path, fuller, environ={}) == []


def test_check_config_names_a_misspelt_key(tmp_path) -> None:
    errors = check_config_of(
        tmp_path, BACKSTAGE_DOCS_CONFIG.replace("jwtHeader:", "jwtHeadr:"), environ={}
    )
    assert errors
    assert errors[0].path == "auth.providers.gcpIap.jwtHeadr"
    assert "unknown key (known: audience, jwtHeader, sessionDuration, signIn)" in str(errors[0])


def test_check_config_needs_an_audience(tmp_path) -> None:
    errors = check_config_of(
        tmp_path, BACKSTAGE_DOCS_CONFIG.replace("      audience:", "      # audience:"), environ={}
    )
    assert [error.path for error in errors] == ["auth.providers.gcpIap.audience"]


def test_a_resolver_is_required(tmp_path) -> None:
    errors = check_config_of(tmp_path, BACKSTAGE_DOCS_CONFIG.split("      signIn:")[0], environ={})
    assert errors
    assert "No sign-in resolver configured for proxy auth provider 'gcpIap'" in str(errors[0])
