"""The IdP's keys, JWKS and discovery document."""

from __future__ import annotations

import jwt
import pytest

from wsgiauth.fake_idp.discovery import SigningKeys
from wsgiauth.fake_idp.discovery import discovery_document

ISSUER = "http://127.0.0.1:8400"


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys()


def test_the_jwks_has_one_public_key_per_algorithm(keys):
    jwks = keys.jwks()["keys"]
    assert [(k["alg"], k["kty"], k["use"]) for k in jwks] == [
        ("RS256", "RSA", "sig"),
        ("ES256", "EC", "sig"),
    ]
    assert len({k["kid"] for k in jwks}) == 2
    for key in jwks:
        assert "d" not in key and "p" not in key, "no private part"


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_signed_tokens_verify_against_the_jwks(keys, algorithm):
    token = keys.sign({"iss": ISSUER, "sub": "s", "aud": "c"}, algorithm)
    header = jwt.get_unverified_header(token)
    jwk = next(k for k in keys.jwks()["keys"] if k["kid"] == header["kid"])
    key = jwt.PyJWK.from_dict(jwk)
    assert jwt.decode(token, key, algorithms=[algorithm], audience="c")["sub"] == "s"
    assert keys.verify(token, issuer=ISSUER)["aud"] == "c"


def test_verify_refuses_what_it_did_not_sign(keys):
    other = SigningKeys()
    token = other.sign({"iss": ISSUER, "sub": "s", "aud": "c"}, "RS256")
    with pytest.raises(jwt.PyJWTError):
        keys.verify(token, issuer=ISSUER)
    mine = keys.sign({"iss": "http://elsewhere", "sub": "s", "aud": "c"}, "ES256")
    with pytest.raises(jwt.PyJWTError):
        keys.verify(mine, issuer=ISSUER)


def test_verify_accepts_an_expired_hint(keys):
    token = keys.sign({"iss": ISSUER, "sub": "s", "aud": "c", "exp": 1}, "RS256")
    assert keys.verify(token, issuer=ISSUER)["sub"] == "s"


def test_the_discovery_document():
    document = discovery_document(ISSUER)
    assert document["issuer"] == ISSUER
    assert document["jwks_uri"] == f"{ISSUER}/jwks"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["response_types_supported"] == ["code"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
