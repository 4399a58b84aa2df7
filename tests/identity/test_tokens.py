"""The Backstage user token format: bytes, claims and limits, from ``issue_user_token`` itself."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import assume
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from jwt.utils import der_to_raw_signature

from tests.identity.conftest import ISSUER
from tests.identity.conftest import b64encode
from tests.identity.conftest import segments
from tests.identity.conftest import verify
from wsgiauth.catalog.refs import is_entity_ref
from wsgiauth.errors import InputError
from wsgiauth.identity import tokens
from wsgiauth.identity.tokens import SigningKey
from wsgiauth.identity.tokens import TokenTooLargeError
from wsgiauth.identity.tokens import issue_user_token
from wsgiauth.types import TokenParams

JANE = "user:default/jane"
DURATION = 600
NOW = 1_700_000_000.5


@pytest.fixture(scope="module")
def key() -> SigningKey:
    private_key = ec.generate_private_key(ec.SECP256R1())
    public = jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return SigningKey("k1", "ES256", private_key, {**public, "kid": "k1", "alg": "ES256"}, NOW)


def issue(key: SigningKey, *, omit: bool = False, **claims: object) -> tuple[str, dict]:
    claims = {"sub": JANE, **claims}
    return issue_user_token(
        key,
        TokenParams(claims=claims),
        issuer=ISSUER,
        duration=DURATION,
        now=NOW,
        omit_ownership_claim=omit,
    )


def claims_of(token: str) -> dict:
    return json.loads(segments(token)[1])


def test_the_wire_constants_are_backstages():
    assert tokens.TYP_USER == "vnd.backstage.user"
    assert tokens.TYP_LIMITED_USER == "vnd.backstage.limited-user"
    assert tokens.AUDIENCE == "backstage"
    assert tokens.MAX_TOKEN_LENGTH == 32768


# --- the token, byte for byte ----------------------------------------------------------


def test_header_and_payload_bytes_follow_backstage(key):
    token, _ = issue(key, ent=["user:default/jane", "group:default/team"], x=1)
    header, payload = segments(token)
    assert header == b'{"typ":"vnd.backstage.user","alg":"ES256","kid":"k1"}'
    claims = json.loads(payload)
    assert list(claims) == ["x", "iss", "sub", "ent", "aud", "iat", "exp", "uip"]
    iat = int(NOW)
    expected = {
        "x": 1,
        "iss": ISSUER,
        "sub": JANE,
        "ent": ["user:default/jane", "group:default/team"],
        "aud": "backstage",
        "iat": iat,
        "exp": iat + DURATION,
        "uip": claims["uip"],
    }
    assert payload == json.dumps(expected, separators=(",", ":")).encode()
    assert verify(token, [key.public_jwk], check_time=False) == expected


@pytest.mark.parametrize(
    "sub",
    [
        pytest.param(JANE, id="ascii"),
        pytest.param("user:default/jöhn", id="non-ascii-as-utf8"),
    ],
)
def test_uip_rebuilds_a_limited_token_that_verifies(key, sub):
    token, _ = issue(key, sub=sub)
    claims = claims_of(token)
    # What a Backstage backend does (UserTokenHandler.createLimitedUserToken).
    header = b'{"typ":"vnd.backstage.limited-user","alg":"ES256","kid":"k1"}'
    payload = f'{{"sub":"{sub}","iat":{claims["iat"]},"exp":{claims["exp"]}}}'.encode()
    limited = f"{b64encode(header)}.{b64encode(payload)}.{claims['uip']}"
    decoded = jwt.api_jws.PyJWS().decode_complete(
        limited, jwt.PyJWK(key.public_jwk), algorithms=["ES256"]
    )
    assert decoded["payload"] == payload


# --- claims ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "omit", "expected"),
    [
        pytest.param({}, False, [JANE], id="default-is-sub"),
        pytest.param({"ent": ["group:default/a"]}, False, ["group:default/a"], id="given"),
        pytest.param({"ent": []}, False, [], id="empty-kept"),
        pytest.param({}, True, None, id="omitted"),
    ],
)
def test_ownership_claim(key, given, omit, expected):
    token, user_info = issue(key, omit=omit, **given)
    claims = claims_of(token)
    assert claims.get("ent") == expected
    assert ("ent" in claims) is not omit
    # The user info keeps ent even when the token leaves it out (spec §8).
    assert user_info["ent"] == given.get("ent", [JANE])


def test_user_info_keeps_sub_ent_exp_and_extra_claims_only(key):
    token, user_info = issue(key, ent=["group:default/a"], name="Jane")
    assert user_info == {
        "name": "Jane",
        "sub": JANE,
        "ent": ["group:default/a"],
        "exp": claims_of(token)["exp"],
    }


@pytest.mark.parametrize("claim", ["iss", "aud", "iat", "exp", "uip"])
def test_extra_claims_cannot_override_the_reserved_ones(key, claim):
    # A resolver's extra claims must not forge the issuer, audience or lifetime.
    claims = claims_of(issue(key, **{claim: "forged"})[0])
    assert claims[claim] != "forged"
    assert claims["aud"] == "backstage"
    assert claims["iss"] == ISSUER


@pytest.mark.parametrize(
    "sub",
    [
        pytest.param("jane", id="no-kind"),
        pytest.param("default/jane", id="namespace-no-kind"),
        pytest.param("user:", id="empty-name"),
        pytest.param(":jane", id="empty-kind"),
        pytest.param("user:/jane", id="empty-namespace"),
        pytest.param("a/b:c", id="slash-before-colon"),
        pytest.param("", id="empty"),
        pytest.param(None, id="missing"),
        pytest.param(42, id="not-a-string"),
    ],
)
def test_sub_must_be_an_entity_ref(key, sub):
    claims = {} if sub is None else {"sub": sub}
    with pytest.raises(InputError) as info:
        issue_user_token(
            key,
            TokenParams(claims=claims),
            issuer=ISSUER,
            duration=DURATION,
            now=NOW,
            omit_ownership_claim=False,
        )
    assert (
        info.value.message == '"sub" claim provided by the auth resolver is not a valid EntityRef.'
    )
    if isinstance(sub, str):
        assert not is_entity_ref(sub)


@pytest.mark.parametrize(
    "sub",
    [
        pytest.param("user:jane", id="default-namespace"),
        pytest.param("user:default/jane", id="full"),
        pytest.param("group:ns/a/b", id="slash-in-name"),
    ],
)
def test_valid_entity_refs_are_accepted(key, sub):
    assert is_entity_ref(sub)
    assert claims_of(issue(key, sub=sub)[0])["sub"] == sub


@pytest.mark.parametrize(
    "ent",
    [pytest.param("user:default/jane", id="string"), pytest.param([1], id="not-strings")],
)
def test_ent_must_be_a_list_of_strings(key, ent):
    with pytest.raises(InputError):
        issue(key, ent=ent)


def test_claims_that_are_not_json_are_an_input_error(key):
    with pytest.raises(InputError, match="not valid JSON"):
        issue(key, extra=object())


def test_oversized_token_is_refused(key):
    ent = [f"group:default/team-{i:05d}-with-a-long-name" for i in range(1000)]
    with pytest.raises(TokenTooLargeError) as info:
        issue(key, ent=ent)
    assert info.value.status_code == 500
    assert "excessively large" in info.value.message


# --- signing: PyJWT's bytes, with the header segment made once per key -------------------


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "RS256", "PS256", "EdDSA"])
def test_signing_makes_pyjwts_bytes_for_every_key(algorithm):
    from wsgiauth.identity.token_factory import _new_key

    payload = '{"sub":"user:default/jöhn","iat":1,"exp":2}'.encode()
    for kid_key in (_new_key(algorithm, NOW), _new_key(algorithm, NOW)):  # two kids
        for typ in (tokens.TYP_USER, tokens.TYP_LIMITED_USER):
            ours = tokens._sign(kid_key, typ, payload)
            theirs = jwt.api_jws.PyJWS().encode(
                payload,
                kid_key.private_key,
                algorithm,
                headers={"typ": typ, "alg": algorithm, "kid": kid_key.kid},
                sort_headers=False,
            )
            assert ours.rsplit(".", 1)[0] == theirs.rsplit(".", 1)[0]
            decoded = jwt.api_jws.PyJWS().decode_complete(
                ours, jwt.PyJWK(kid_key.public_jwk), algorithms=[algorithm]
            )
            assert decoded["payload"] == payload
            assert decoded["header"] == {"typ": typ, "alg": algorithm, "kid": kid_key.kid}


@settings(max_examples=200)
@given(
    r=st.integers(min_value=1, max_value=2**384 - 1),
    s=st.integers(min_value=1, max_value=2**384 - 1),
    curve=st.sampled_from([ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()]),
)
def test_ec_signature_is_pyjwts_raw_form_of_the_der_signature(r, s, curve):
    """``r || s`` as wide as the curve: PyJWT's ``der_to_raw_signature``, byte for byte."""
    width = (curve.key_size + 7) // 8
    assume(r < 2 ** (8 * width) and s < 2 ** (8 * width))
    der = encode_dss_signature(r, s)

    class Key:  # what _ec_signature uses of a private key
        def __init__(self) -> None:
            self.curve = curve

        def sign(self, message: bytes, algorithm: ec.ECDSA) -> bytes:
            assert message == b"m"
            return der

    assert tokens._ec_signature(Key(), hashes.SHA256, b"m") == der_to_raw_signature(der, curve)


def test_an_ec_key_on_another_curve_than_its_algorithm_is_refused():
    """PyJWT's curve check still runs: ES256 is P-256 only."""
    key = tokens.SigningKey(
        kid="k",
        algorithm="ES256",
        private_key=ec.generate_private_key(ec.SECP384R1()),
        public_jwk={},
        created_at=NOW,
    )
    with pytest.raises(jwt.exceptions.InvalidKeyError):
        tokens._sign(key, tokens.TYP_USER, b"{}")
