"""The ``awsalb`` provider: the ALB's signed headers, checked against a fake ALB key endpoint.

The fake serves one PEM per ``kid`` on loopback for
``public-keys.auth.elb.us-west-2.amazonaws.com``, rerouted by the HttpClient test seam;
tokens are ES256, signed by test keys, their segments padded with ``=`` as ALB does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.hazmat.primitives.serialization import PublicFormat

from tests.providers.key_endpoint import KeyEndpoint
from tests.providers.key_endpoint import sign_es256
from tests.providers.popup import build_app
from tests.providers.popup import check_config_of
from tests.providers.popup import user_entity
from tests.providers.proxy_flow import assert_refused
from tests.providers.proxy_flow import ec_key_fixture
from wsgiauth.providers import awsalb
from wsgiauth.registry import BUILTIN_PROVIDERS

REGION = "us-west-2"
KEY_HOST = "https://public-keys.auth.elb.us-west-2.amazonaws.com"
ISSUER = "https://example.okta.com/oauth2/default"
SIGNER = (
    "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/portal/50dc6c495c0c9188"
)
KID = "8c1f8a14-6a35-4bb6-9f0b-2f3d8a1e5c77"
JANE = user_entity("jane", email="jane@acme.org")
RESOLVER = {"signIn": {"resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]}}
ACCESS_TOKEN = "opaque-access-token"  # noqa: S105


key = ec_key_fixture()
other_key = ec_key_fixture()


def pem(key: Any) -> bytes:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(autouse=True)
def no_new_kid_interval(monkeypatch) -> None:
    """Tests ask for several kids in a row; one test checks the interval itself."""
    monkeypatch.setattr(awsalb, "NEW_KID_INTERVAL", 0.0)


@pytest.fixture
def aws(key) -> Iterator[KeyEndpoint]:
    endpoint = KeyEndpoint()
    endpoint.serve(f"/{KID}", pem(key), content_type="application/x-pem-file")
    with endpoint.serving():
        yield endpoint


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    out = {
        "sub": "00u1abcd",
        "name": "Jane Doe",
        "given_name": "Jane",
        "family_name": "Doe",
        "picture": "https://pics.example/jane.png",
        "email": "jane@acme.org",
        "exp": now + 120,
        "iss": ISSUER,
    }
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not None}


def alb_header(**overrides: Any) -> dict[str, Any]:
    out = {"kid": KID, "signer": SIGNER, "iss": ISSUER, "client": "client-id", "exp": 0}
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not None}


def token(key, header: dict[str, Any] | None = None, *, pad: bool = True, **overrides) -> str:
    return sign_es256(key, alb_header() if header is None else header, claims(**overrides), pad=pad)


def app(tmp_path, aws: KeyEndpoint, provider: dict[str, Any] | None = None):
    config = {"issuer": ISSUER, "signer": SIGNER, "region": REGION, **RESOLVER, **(provider or {})}
    return build_app(tmp_path, {"awsalb": config}, users=[JANE], reroute={KEY_HOST: aws.base_url})


def refresh(testapp, data: str | None, access: str | None = ACCESS_TOKEN, *, status=200) -> Any:
    headers = {}
    if data is not None:
        headers["x-amzn-oidc-data"] = data
    if access is not None:
        headers["x-amzn-oidc-accesstoken"] = access
    return testapp.get("/api/auth/awsalb/refresh", headers=headers, status=status)


def refused(testapp, data: str | None, message: str, **kw: Any) -> None:
    assert_refused(refresh(testapp, data, status=401, **kw), message)


# -- the module ------------------------------------------------------------------------------


def test_module_is_registered_under_backstages_id() -> None:
    assert BUILTIN_PROVIDERS["awsalb"] == "wsgiauth.providers.awsalb:module"
    assert awsalb.module.provider_id == "awsalb"
    assert set(awsalb.module.resolvers) == {"emailMatchingUserEntityProfileEmail"}


def test_the_key_endpoint_of_a_region() -> None:
    assert awsalb.public_key_endpoint("eu-west-1") == (
        "https://public-keys.auth.elb.eu-west-1.amazonaws.com"
    )
    assert awsalb.public_key_endpoint("us-gov-west-1") == (
        "https://s3-us-gov-west-1.amazonaws.com/aws-elb-public-keys-prod-us-gov-west-1"
    )


# -- the /refresh flow -----------------------------------------------------------------------


def test_refresh_signs_in_the_catalog_user_by_profile_email(tmp_path, aws, key) -> None:
    testapp = app(tmp_path, aws)
    sent = token(key)
    assert "=" in sent  # ALB's padding, read as sent
    body = refresh(testapp, sent).json  # no X-Requested-With, as in Backstage
    assert body["profile"] == {
        "email": "jane@acme.org",
        "displayName": "Jane Doe",
        "picture": "https://pics.example/jane.png",
    }
    exp = jwt.decode(sent, options={"verify_signature": False})["exp"]
    assert body["providerInfo"] == {"accessToken": ACCESS_TOKEN, "expiresInSeconds": exp}
    identity = body["backstageIdentity"]["identity"]
    assert identity["userEntityRef"] == "user:default/jane"
    assert aws.requests == [f"/{KID}"]


def test_unpadded_tokens_verify_too(tmp_path, aws, key) -> None:
    body = refresh(app(tmp_path, aws), token(key, pad=False)).json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


def test_keys_are_cached_by_kid(tmp_path, aws, key) -> None:
    testapp = app(tmp_path, aws)
    for _ in range(3):
        refresh(testapp, token(key))
    assert aws.requests == [f"/{KID}"]


def test_a_second_kid_is_fetched_by_its_id(tmp_path, aws, key, other_key) -> None:
    aws.serve("/second-kid", pem(other_key))
    testapp = app(tmp_path, aws)
    refresh(testapp, token(key))
    refresh(testapp, token(other_key, alb_header(kid="second-kid")))
    assert aws.requests == [f"/{KID}", "/second-kid"]


def test_the_profile_without_name_or_picture(tmp_path, aws, key) -> None:
    testapp = app(tmp_path, aws)
    body = refresh(testapp, token(key, name=None, picture=None)).json
    # The email's local part names the user; an opaque access token adds nothing.
    assert body["profile"] == {"email": "jane@acme.org", "displayName": "jane"}
    # A JWT access token fills the picture (unverified, as Backstage's makeProfileInfo).
    access = jwt.encode({"picture": "https://pics.example/at.png"}, "k" * 32, algorithm="HS256")
    body = refresh(testapp, token(key, picture=None), access).json
    assert body["profile"]["picture"] == "https://pics.example/at.png"


def test_the_albs_resolver_does_not_retry_without_a_plus_tag(tmp_path, aws, key) -> None:
    testapp = app(tmp_path, aws)
    body = refresh(testapp, token(key, email="jane+portal@acme.org"), status=404).json
    assert body["error"]["name"] == "NotFoundError"


def test_the_dangerous_fallback_names_the_email(tmp_path, aws, key) -> None:
    resolver = {
        "signIn": {
            "resolvers": [
                {
                    "resolver": "emailMatchingUserEntityProfileEmail",
                    "dangerouslyAllowSignInWithoutUserInCatalog": True,
                }
            ]
        }
    }
    body = refresh(app(tmp_path, aws, resolver), token(key, email="new@acme.org")).json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/new@acme.org"


def test_the_common_local_part_resolver_is_offered(tmp_path, aws, key) -> None:
    resolver = {"signIn": {"resolvers": [{"resolver": "emailLocalPartMatchingUserEntityName"}]}}
    body = refresh(app(tmp_path, aws, resolver), token(key)).json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


def test_without_signer_any_signer_is_taken_with_a_warning(tmp_path, aws, key, caplog) -> None:
    testapp = build_app(
        tmp_path,
        {"awsalb": {"issuer": ISSUER, "region": REGION, **RESOLVER}},
        users=[JANE],
        reroute={KEY_HOST: aws.base_url},
    )
    refresh(testapp, token(key, alb_header(signer="arn:aws:elasticloadbalancing:other")))
    assert "signer is not set: a token signed by any ALB in us-west-2" in caplog.text


# -- refusals --------------------------------------------------------------------------------


def test_missing_headers_are_refused(tmp_path, aws, key) -> None:
    testapp = app(tmp_path, aws)
    refused(testapp, None, "Missing ALB OIDC header: x-amzn-oidc-data")
    refused(testapp, "", "Missing ALB OIDC header: x-amzn-oidc-data")
    refused(testapp, token(key), "Missing ALB OIDC header: x-amzn-oidc-accesstoken", access=None)
    assert aws.requests == []


def test_a_bad_signature_is_refused(tmp_path, aws, other_key) -> None:
    refused(app(tmp_path, aws), token(other_key), "Signature verification failed")


def test_a_tampered_payload_is_refused(tmp_path, aws, key) -> None:
    header, _, signature = token(key).split(".")
    forged = token(key, email="boss@acme.org").split(".")[1]
    refused(app(tmp_path, aws), f"{header}.{forged}.{signature}", "Signature verification")


def test_the_wrong_issuer_is_refused(tmp_path, aws, key) -> None:
    refused(app(tmp_path, aws), token(key, iss="https://evil.example"), "Issuer mismatch")


def test_the_wrong_signer_is_refused(tmp_path, aws, key) -> None:
    testapp = app(tmp_path, aws)
    other_alb = SIGNER.replace("portal", "someone-elses")
    refused(testapp, token(key, alb_header(signer=other_alb)), "Signer mismatch on JWT token")
    refused(testapp, token(key, alb_header(signer=None)), "Signer mismatch on JWT token")


def test_an_expired_token_is_refused(tmp_path, aws, key) -> None:
    testapp = app(tmp_path, aws)
    refused(testapp, token(key, exp=int(time.time()) - 5), "Signature has expired")
    refused(testapp, token(key, exp=None), 'missing the "exp" claim')


def test_a_token_without_email_is_refused(tmp_path, aws, key) -> None:
    refused(app(tmp_path, aws), token(key, email=None), "Missing email in the JWT token")


def test_a_kid_not_in_the_key_set_is_refused(tmp_path, aws, key) -> None:
    testapp = app(tmp_path, aws)
    refused(testapp, token(key, alb_header(kid="unknown-kid")), "no AWS ALB public key")
    # Remembered: asking again does not fetch again.
    refused(testapp, token(key, alb_header(kid="unknown-kid")), "no AWS ALB public key")
    assert aws.requests == ["/unknown-kid"]
    refused(testapp, token(key, alb_header(kid=None)), "No key id was specified in header")
    refused(testapp, token(key, alb_header(kid="../../etc")), "the key id is malformed")
    assert aws.requests == ["/unknown-kid"]


def test_unseen_kids_are_fetched_at_most_once_per_interval(tmp_path, aws, key, monkeypatch):
    monkeypatch.setattr(awsalb, "NEW_KID_INTERVAL", 60.0)
    testapp = app(tmp_path, aws)
    refused(testapp, token(key, alb_header(kid="made-up-1")), "no AWS ALB public key")
    refused(testapp, token(key, alb_header(kid="made-up-2")), "no AWS ALB public key")
    assert aws.requests == ["/made-up-1"]


@pytest.mark.parametrize("alg", ["none", "HS256", "HS384", "RS256", "ES384"])
def test_algorithms_other_than_es256_are_refused(tmp_path, aws, key, alg) -> None:
    testapp = app(tmp_path, aws)
    payload = token(key).split(".")[1]
    header = jwt.utils.base64url_encode(json.dumps({**alb_header(), "alg": alg}).encode()).decode()
    refused(testapp, f"{header}.{payload}.", "the algorithm must be ES256")
    refused(testapp, f"{header}.{payload}.c2lnbmF0dXJl", "the algorithm must be ES256")


def test_garbage_is_refused(tmp_path, aws) -> None:
    refused(app(tmp_path, aws), "not-a-jwt", "Exception occurred during JWT processing")


# -- the key endpoint down -------------------------------------------------------------------


def test_a_key_endpoint_that_is_down_is_a_503_not_a_401(tmp_path, aws, key) -> None:
    aws.down = True
    testapp = app(tmp_path, aws)
    body = refresh(testapp, token(key), status=503).json
    assert body["error"]["name"] == "ServiceUnavailableError"
    message = body["error"]["message"]
    assert message.startswith(f"Unable to fetch the AWS ALB public key '{KID}' from {KEY_HOST}")
    assert "answered 502" in message
    refresh(testapp, token(key), status=503)
    assert len(aws.requests) == 1  # not asked again at once
    # Once it is back (and the retry is due), the same token signs in.
    aws.down = False
    time.sleep(1.1)
    refresh(testapp, token(key))


def test_a_key_endpoint_that_answers_garbage_is_a_503(tmp_path, aws, key) -> None:
    aws.serve(f"/{KID}", b"<html>maintenance</html>", content_type="text/html")
    body = refresh(app(tmp_path, aws), token(key), status=503).json
    assert "not a PEM public key" in body["error"]["message"]


def test_a_key_that_is_not_p256_is_a_503(tmp_path, aws, key) -> None:
    aws.serve(f"/{KID}", pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    body = refresh(app(tmp_path, aws), token(key), status=503).json
    assert "not a P-256 public key" in body["error"]["message"]


# -- config ----------------------------------------------------------------------------------

#: From https://backstage.io/docs/auth/aws-alb/provider (Configuration).
BACKSTAGE_DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: production
  providers:
    awsalb:
      # this is the URL of the IdP you configured
      issuer: 'https://example.okta.com/oauth2/default'
      # this is the ARN of your ALB instance
      signer: 'arn:aws:elasticloadbalancing:us-east-2:123456789012:loadbalancer/app/my-load-balancer/1234567890123456'
      # this is the region where your ALB instance resides
      region: 'us-west-2'
      ## uncomment to set lifespan of user session
      # sessionDuration: { hours: 24 } # supports `ms` library format (e.g. '24h', '2 days'), ISO duration, "human duration" as used in code
      signIn:
        resolvers:
          # See https://backstage.io/docs/auth/aws-alb/provider#resolvers for more resolvers
          - resolver: emailMatchingUserEntityProfileEmail
"""  # noqa: E501


def test_backstages_documented_config_passes_check_config(tmp_path) -> None:
    assert check_config_of(tmp_path, BACKSTAGE_DOCS_CONFIG, environ={}) == []
    with_duration = BACKSTAGE_DOCS_CONFIG.replace("# sessionDuration", "sessionDuration")
    assert check_config_of(tmp_path, with_duration, environ={}) == []


def test_check_config_names_a_misspelt_key(tmp_path) -> None:
    errors = check_config_of(
        tmp_path, BACKSTAGE_DOCS_CONFIG.replace("signer:", "singer:"), environ={}
    )
    assert errors
    assert errors[0].path == "auth.providers.awsalb.singer"
    assert "unknown key (known: issuer, region, sessionDuration, signIn, signer)" in str(errors[0])


def test_check_config_needs_issuer_and_a_region(tmp_path) -> None:
    no_issuer = BACKSTAGE_DOCS_CONFIG.replace("      issuer:", "      # issuer:")
    errors = check_config_of(tmp_path, no_issuer, environ={})
    assert [e.path for e in errors] == ["auth.providers.awsalb.issuer"]
    url_region = BACKSTAGE_DOCS_CONFIG.replace("'us-west-2'", "'https://evil.example/x'")
    errors = check_config_of(tmp_path, url_region, environ={})
    assert [e.path for e in errors] == ["auth.providers.awsalb.region"]
