"""OidcTokenVerifier: discovery, the IdP's JWKS and the ID-token checks, against a stubbed IdP."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from typing import Any

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.providers.oidc_idp import CLIENT_ID
from tests.providers.oidc_idp import FLOW_NONCE
from tests.providers.oidc_idp import ISSUER
from tests.providers.oidc_idp import JWKS_URL
from tests.providers.oidc_idp import METADATA_URL
from tests.providers.oidc_idp import FakeClock
from tests.providers.oidc_idp import Idp
from tests.providers.oidc_idp import b64url
from tests.providers.oidc_idp import discovery
from tests.providers.oidc_idp import public_jwk
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.http import create_http_client
from wsgiauth.providers.oidc_tokens import OidcTokenVerifier
from wsgiauth.providers.oidc_tokens import derive_id_token_nonce

NONCE = derive_id_token_nonce(FLOW_NONCE)


@pytest.fixture
def idp(mocked: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey) -> Idp:
    return Idp(mocked, rsa_key)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(
    clock: FakeClock | None = None, *, algorithm: str = "RS256", leeway: float = 60.0
) -> OidcTokenVerifier:
    return OidcTokenVerifier(
        metadata_url=METADATA_URL,
        http=create_http_client(),
        client_id=CLIENT_ID,
        algorithm=algorithm,
        leeway=leeway,
        clock=clock or FakeClock(),
    )


def jwks_calls(idp: Idp) -> int:
    return len(idp.calls(JWKS_URL))


# --- the ID-token nonce


def test_id_token_nonce_is_the_unpadded_hash_of_the_flow_nonce() -> None:
    expected = b64url(hashlib.sha256(FLOW_NONCE.encode()).digest())
    assert derive_id_token_nonce(FLOW_NONCE) == expected
    assert "=" not in expected and FLOW_NONCE not in expected


# --- ID token verification


def _hs256_with_public_key(idp: Idp) -> str:
    """The classic key-confusion forgery: HMAC keyed with the IdP's public PEM."""
    pem = idp.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = b64url(json.dumps(idp.claims()).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def _alg_none(idp: Idp) -> str:
    return jwt.encode(idp.claims(), None, algorithm="none", headers={"kid": "k1"})  # type: ignore[arg-type]


def _tampered(idp: Idp) -> str:
    header, _, signature = idp.id_token().split(".")
    payload = b64url(json.dumps(idp.claims(sub="admin")).encode())
    return f"{header}.{payload}.{signature}"


ID_TOKEN_CASES = [
    pytest.param(
        lambda idp, other: idp.id_token(key=other),
        "Signature verification failed",
        id="bad-signature",
    ),
    pytest.param(lambda idp, other: _tampered(idp), "Signature verification failed", id="tampered"),
    pytest.param(lambda idp, other: _alg_none(idp), "algorithm 'none'", id="alg-none"),
    pytest.param(
        lambda idp, other: _hs256_with_public_key(idp), "algorithm 'HS256'", id="hs256-public-key"
    ),
    pytest.param(lambda idp, other: "not-a-jwt", "Not enough segments", id="garbage"),
    pytest.param(
        lambda idp, other: idp.id_token(iss="https://evil.example.com"),
        "Invalid issuer",
        id="wrong-iss",
    ),
    pytest.param(
        lambda idp, other: idp.id_token(aud="another-client"),
        "Audience doesn't match",
        id="wrong-aud",
    ),
    pytest.param(
        lambda idp, other: idp.id_token(aud=[CLIENT_ID, "another-client"]),
        "several audiences and no authorized party",
        id="multiple-aud-without-azp",
    ),
    pytest.param(
        lambda idp, other: idp.id_token(aud=[CLIENT_ID, "another-client"], azp="another-client"),
        "authorized party (azp) is another client",
        id="azp-another-client",
    ),
    pytest.param(
        lambda idp, other: idp.id_token(exp=int(time.time()) - 120, iat=int(time.time()) - 600),
        "Signature has expired",
        id="expired-past-leeway",
    ),
    pytest.param(
        lambda idp, other: idp.id_token(iat=int(time.time()) + 120),
        "not yet valid (iat)",
        id="iat-in-future-past-leeway",
    ),
    pytest.param(
        lambda idp, other: idp.id_token(nonce=derive_id_token_nonce("another flow")),
        "nonce does not match",
        id="wrong-nonce",
    ),
    pytest.param(
        lambda idp, other: idp.id_token(nonce=FLOW_NONCE),
        "nonce does not match",
        id="raw-flow-nonce",
    ),
    pytest.param(
        lambda idp, other: idp.id_token(nonce=None), "nonce does not match", id="no-nonce"
    ),
    pytest.param(lambda idp, other: idp.id_token(sub=None), 'missing the "sub" claim', id="no-sub"),
    pytest.param(
        lambda idp, other: idp.id_token(kid="unknown"),
        "no signing key 'unknown'",
        id="unknown-kid",
    ),
]


@pytest.mark.parametrize(("forge", "reason"), ID_TOKEN_CASES)
def test_invalid_id_tokens_are_rejected(
    idp: Idp, other_rsa_key: rsa.RSAPrivateKey, forge: Any, reason: str
) -> None:
    with pytest.raises(AuthenticationError) as info:
        make().verify_id_token(forge(idp, other_rsa_key), nonce=NONCE)
    assert info.value.message.startswith("Authentication failed, invalid ID token: ")
    assert reason in info.value.message


def test_the_failure_names_the_step(idp: Idp) -> None:
    with pytest.raises(AuthenticationError, match="^Refresh failed, invalid ID token: "):
        make().verify_id_token(idp.id_token(kid="unknown"), nonce=None, failed="Refresh failed")


@pytest.mark.parametrize(
    "claims",
    [
        # exp and iat are offsets from the time the test runs (not from import time).
        pytest.param({"exp": -30, "iat": -600}, id="expired-within-leeway"),
        pytest.param({"iat": 30}, id="iat-ahead-within-leeway"),
        pytest.param({"aud": [CLIENT_ID, "api"], "azp": CLIENT_ID}, id="multiple-aud-with-azp"),
        pytest.param({"aud": [CLIENT_ID]}, id="single-aud-list"),
    ],
)
def test_valid_edge_id_tokens_are_accepted(idp: Idp, claims: dict[str, Any]) -> None:
    now = int(time.time())
    claims = {k: now + v if k in ("exp", "iat") else v for k, v in claims.items()}
    assert make().verify_id_token(idp.id_token(**claims), nonce=NONCE)["sub"] == "user-1"


def test_no_nonce_skips_the_nonce_check(idp: Idp) -> None:
    # On refresh there is no flow nonce to compare with.
    assert make().verify_id_token(idp.id_token(nonce=None), nonce=None)["sub"] == "user-1"


def test_leeway(idp: Idp) -> None:
    token = idp.id_token(exp=int(time.time()) - 30, iat=int(time.time()) - 600)
    assert make(leeway=60).verify_id_token(token, nonce=NONCE)["sub"] == "user-1"
    with pytest.raises(AuthenticationError, match="Signature has expired"):
        make(leeway=10).verify_id_token(token, nonce=NONCE)


# --- the IdP's signing keys


def test_token_without_kid_uses_the_only_key(idp: Idp) -> None:
    assert make().verify_id_token(idp.id_token(kid=None), nonce=NONCE)["sub"] == "user-1"


def test_token_without_kid_and_several_keys_is_refused(
    idp: Idp, mocked: responses.RequestsMock, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks = {"keys": [public_jwk(idp.key, "k1"), public_jwk(other_rsa_key, "k2")]}
    mocked.replace(responses.GET, JWKS_URL, json=jwks)
    with pytest.raises(AuthenticationError, match="no signing key None"):
        make().verify_id_token(idp.id_token(kid=None), nonce=NONCE)


def test_jwks_key_for_another_algorithm_is_not_used(
    idp: Idp, mocked: responses.RequestsMock
) -> None:
    mocked.replace(responses.GET, JWKS_URL, json={"keys": [public_jwk(idp.key, "k1", alg="RS512")]})
    with pytest.raises(AuthenticationError, match="no signing key 'k1'"):
        make().verify_id_token(idp.id_token(), nonce=NONCE)


def test_a_key_with_no_alg_serves_the_configured_algorithm(
    idp: Idp, mocked: responses.RequestsMock
) -> None:
    jwk = public_jwk(idp.key, "k1")
    del jwk["alg"]
    mocked.replace(responses.GET, JWKS_URL, json={"keys": [jwk]})
    verifier = make(algorithm="PS256")
    assert verifier.verify_id_token(idp.id_token(algorithm="PS256"), nonce=NONCE)["sub"] == "user-1"
    with pytest.raises(AuthenticationError, match="algorithm 'RS256' is not the expected PS256"):
        verifier.verify_id_token(idp.id_token(algorithm="RS256"), nonce=NONCE)


def test_keys_of_other_types_and_uses_are_ignored(idp: Idp, mocked: responses.RequestsMock) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_jwk = jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    jwks = [
        {**ec_jwk, "kid": "ec"},
        {**public_jwk(idp.key, "enc"), "use": "enc"},
        public_jwk(idp.key, "k1"),
    ]
    mocked.replace(responses.GET, JWKS_URL, json={"keys": jwks})
    verifier = make()
    assert verifier.verify_id_token(idp.id_token(), nonce=NONCE)["sub"] == "user-1"
    with pytest.raises(AuthenticationError, match="no signing key 'enc'"):
        verifier.verify_id_token(idp.id_token(kid="enc"), nonce=NONCE)
    with pytest.raises(AuthenticationError, match="no signing key 'ec'"):
        verifier.verify_id_token(idp.id_token(kid="ec"), nonce=NONCE)


# --- JWKS refetch on an unknown kid


def test_unknown_kid_refetches_once_then_fails(idp: Idp, clock: FakeClock) -> None:
    verifier = make(clock)
    verifier.verify_id_token(idp.id_token(), nonce=NONCE)
    assert jwks_calls(idp) == 1

    clock.now += 100
    with pytest.raises(AuthenticationError, match="no signing key 'rotated'"):
        verifier.verify_id_token(idp.id_token(kid="rotated"), nonce=NONCE)
    assert jwks_calls(idp) == 2


def test_unknown_kid_refetch_is_rate_limited(idp: Idp, clock: FakeClock) -> None:
    verifier = make(clock)
    token = idp.id_token(kid="sprayed-1")
    with pytest.raises(AuthenticationError):
        verifier.verify_id_token(token, nonce=NONCE)
    # The cold fetch was just made: an unknown kid does not fetch again at once.
    assert jwks_calls(idp) == 1

    clock.now += 31
    with pytest.raises(AuthenticationError):
        verifier.verify_id_token(token, nonce=NONCE)
    assert jwks_calls(idp) == 2

    clock.now += 10
    token = idp.id_token(kid="sprayed-2")
    with pytest.raises(AuthenticationError):
        verifier.verify_id_token(token, nonce=NONCE)
    assert jwks_calls(idp) == 2  # within 30 s of the refetch: no request to the IdP

    clock.now += 21
    with pytest.raises(AuthenticationError):
        verifier.verify_id_token(token, nonce=NONCE)
    assert jwks_calls(idp) == 3


def test_key_rotation_is_picked_up_by_the_refetch(
    idp: Idp, mocked: responses.RequestsMock, clock: FakeClock, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = make(clock)
    verifier.verify_id_token(idp.id_token(), nonce=NONCE)
    mocked.replace(responses.GET, JWKS_URL, json={"keys": [public_jwk(other_rsa_key, "k2")]})
    clock.now += 60
    token = idp.id_token(key=other_rsa_key, kid="k2")
    assert verifier.verify_id_token(token, nonce=NONCE)["sub"] == "user-1"
    assert jwks_calls(idp) == 2


def test_jwks_is_refreshed_after_an_hour(idp: Idp, clock: FakeClock) -> None:
    verifier = make(clock)
    verifier.verify_id_token(idp.id_token(), nonce=NONCE)
    clock.now += 3599
    verifier.verify_id_token(idp.id_token(), nonce=NONCE)
    assert jwks_calls(idp) == 1
    clock.now += 2
    verifier.verify_id_token(idp.id_token(), nonce=NONCE)
    assert jwks_calls(idp) == 2


def test_a_jwks_uri_moved_by_discovery_is_fetched(
    idp: Idp, mocked: responses.RequestsMock, clock: FakeClock, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = make(clock)
    verifier.verify_id_token(idp.id_token(), nonce=NONCE)
    moved = f"{ISSUER}/keys/v2"
    mocked.replace(responses.GET, METADATA_URL, json=discovery(jwks_uri=moved))
    mocked.get(moved, json={"keys": [public_jwk(other_rsa_key, "k2")]})
    clock.now += 3601
    token = idp.id_token(key=other_rsa_key, kid="k2")
    assert verifier.verify_id_token(token, nonce=NONCE)["sub"] == "user-1"
    with pytest.raises(AuthenticationError, match="no signing key 'k1'"):
        verifier.verify_id_token(idp.id_token(), nonce=NONCE)


@pytest.mark.parametrize(
    "jwks",
    [
        pytest.param({"keys": "nope"}, id="keys-not-a-list"),
        pytest.param({}, id="no-keys"),
    ],
)
def test_unusable_jwks_is_503(
    idp: Idp, mocked: responses.RequestsMock, jwks: dict[str, Any]
) -> None:
    mocked.replace(responses.GET, JWKS_URL, json=jwks)
    with pytest.raises(ServiceUnavailableError) as info:
        make().verify_id_token(idp.id_token(), nonce=NONCE)
    assert info.value.message == "The JWKS at idp.example.com has no list of keys"


def test_jwks_down_is_503_with_the_idps_error_and_is_not_cached(
    idp: Idp, mocked: responses.RequestsMock, clock: FakeClock
) -> None:
    mocked.replace(responses.GET, JWKS_URL, body=requests.ConnectionError("down"))
    verifier = make(clock)
    for calls in (1, 2):  # no rate limit on a failed fetch: the next login asks again
        with pytest.raises(ServiceUnavailableError, match="idp.example.com is unreachable"):
            verifier.verify_id_token(idp.id_token(), nonce=NONCE)
        assert jwks_calls(idp) == calls
    mocked.replace(responses.GET, JWKS_URL, json={"keys": [public_jwk(idp.key, "k1")]})
    assert verifier.verify_id_token(idp.id_token(), nonce=NONCE)["sub"] == "user-1"


def test_jwks_down_at_the_hour_is_503_without_grace(
    idp: Idp, mocked: responses.RequestsMock, clock: FakeClock
) -> None:
    verifier = make(clock)
    verifier.verify_id_token(idp.id_token(), nonce=NONCE)
    mocked.replace(responses.GET, JWKS_URL, status=502)
    clock.now += 3600
    with pytest.raises(ServiceUnavailableError, match="answered 502"):
        verifier.verify_id_token(idp.id_token(), nonce=NONCE)


# --- discovery


def test_discovery_is_cached_for_an_hour(idp: Idp, clock: FakeClock) -> None:
    verifier = make(clock)
    verifier.metadata()
    clock.now += 3599
    verifier.metadata()
    assert len(idp.calls(METADATA_URL)) == 1
    clock.now += 2
    verifier.metadata()
    assert len(idp.calls(METADATA_URL)) == 2


def test_failed_discovery_is_not_cached(mocked: responses.RequestsMock) -> None:
    mocked.get(METADATA_URL, body=requests.ConnectionError("down"))
    verifier = make()
    with pytest.raises(ServiceUnavailableError, match="idp.example.com is unreachable"):
        verifier.metadata()
    mocked.replace(responses.GET, METADATA_URL, json=discovery())
    assert verifier.metadata().issuer == ISSUER


def test_discovery_is_fetched_once_by_concurrent_threads(idp: Idp) -> None:
    verifier = make()
    barrier = threading.Barrier(8)

    def login() -> None:
        barrier.wait()
        verifier.metadata()

    threads = [threading.Thread(target=login) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(idp.calls(METADATA_URL)) == 1


def test_discovery_document_is_read(mocked: responses.RequestsMock) -> None:
    mocked.get(
        METADATA_URL,
        json={**discovery(), "authorization_response_iss_parameter_supported": True},
    )
    metadata = make().metadata()
    assert (metadata.issuer, metadata.jwks_uri) == (ISSUER, JWKS_URL)
    assert metadata.authorization_response_iss_parameter_supported is True


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"jwks_uri": None}, "has no jwks_uri", id="no-jwks_uri"),
        pytest.param({"issuer": None}, "has no issuer", id="no-issuer"),
        pytest.param({"token_endpoint": None}, "has no token_endpoint", id="no-token-endpoint"),
        pytest.param(
            {"authorization_endpoint": "/relative"},
            "has an invalid authorization_endpoint",
            id="relative-endpoint",
        ),
        pytest.param({"userinfo_endpoint": 42}, "has an invalid userinfo_endpoint", id="not-a-str"),
    ],
)
def test_discovery_document_is_validated(
    mocked: responses.RequestsMock, overrides: dict[str, Any], message: str
) -> None:
    mocked.get(METADATA_URL, json=discovery(**overrides))
    with pytest.raises(ServiceUnavailableError) as info:
        make().metadata()
    assert info.value.message == f"The OIDC discovery document at idp.example.com {message}"
