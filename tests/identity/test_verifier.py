"""IdentityVerifier: Backstage-shaped ES256 tokens, forgeries, the token cache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.identity.conftest import CRAFTED_TOKENS
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.http import HttpClient
from wsgiauth.identity.jwks import KEY_SOURCE_MAX_AGE
from wsgiauth.identity.key_stores import MemoryKeyStore
from wsgiauth.identity.token_factory import TokenFactory
from wsgiauth.identity.verifier import BackstageIdentity
from wsgiauth.identity.verifier import IdentityVerifier
from wsgiauth.identity.verifier import parse_bearer_token
from wsgiauth.types import TokenParams

ISSUER = "http://localhost:7007/api/auth"
JWKS_URL = ISSUER + "/.well-known/jwks.json"
START = 1_700_000_000.0
USER = "user:default/jane"
ENT = [USER, "group:default/team-a"]
HMAC_SECRET = b"s" * 32


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SigningKey:
    """An ES256 key as the token factory makes one: uuid kid, public JWK with alg."""

    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or str(uuid.uuid4())
        self.private = ec.generate_private_key(ec.SECP256R1())
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.public_jwk: dict[str, Any] = {**jwk, "kid": self.kid, "alg": "ES256"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(
        self,
        *,
        iat: float = START,
        lifetime: float = 3600,
        headers: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        """A token in the exact Backstage shape (spec §9.1), claims overridable."""
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "sub": USER,
            "ent": ENT,
            "aud": "backstage",
            "iat": int(iat),
            "exp": int(iat + lifetime),
            "uip": "proof",
            **claims,
        }
        for name in drop:
            payload.pop(name)
        header = {"typ": "vnd.backstage.user", "kid": self.kid, **(headers or {})}
        return jwt.encode(payload, self.private, algorithm="ES256", headers=header)


class KeySource:
    """A key source as the token factory's list_public_keys, counting its calls."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self) -> list[dict[str, Any]]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return [key.public_jwk for key in self.keys]


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value))


def parts(token: str) -> list[str]:
    return token.split(".")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def key() -> SigningKey:
    return SigningKey()


@pytest.fixture
def source(key: SigningKey) -> KeySource:
    return KeySource(key)


@pytest.fixture
def verifier(source: KeySource, clock: Clock) -> IdentityVerifier:
    return IdentityVerifier(key_source=source, issuer=ISSUER, clock=clock)


# -- accepted tokens --------------------------------------------------------------------


def test_verifies_a_backstage_token_in_process(verifier, key, source):
    token = key.sign()

    identity = verifier.verify(token)

    assert identity == BackstageIdentity(
        user_entity_ref=USER,
        ownership_entity_refs=tuple(ENT),
        token=token,
        claims=identity.claims,
        expires_at=START + 3600,
    )
    assert dict(identity.claims)["uip"] == "proof"
    assert source.calls == 1
    with pytest.raises(TypeError):
        identity.claims["sub"] = "user:default/mallory"  # type: ignore[index]


def test_ownership_defaults_to_the_user(verifier, key):
    identity = verifier.verify(key.sign(drop=("ent",)))
    assert identity.ownership_entity_refs == (USER,)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda k: _no_typ_header(k, drop=("uip",)), id="pre-2024-no-typ"),
        pytest.param(lambda k: _no_typ_header(k, typ="vnd.backstage.user"), id="2024-typ-claim"),
        pytest.param(lambda k: k.sign(aud=["backstage", "other"]), id="aud-list"),
    ],
)
def test_older_token_formats_are_accepted(verifier, key, make):
    assert verifier.verify(make(key)).user_entity_ref == USER


def _es256(key: SigningKey, signing_input: str) -> str:
    """Sign by hand, for headers PyJWT would not write (no typ at all)."""
    algorithm = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256)
    signature = algorithm.sign(signing_input.encode(), key.private)
    return signing_input + "." + b64(signature)


def _signed_with_header(key: SigningKey, header: dict[str, Any], **claims: Any) -> str:
    """A validly signed token with exactly this header."""
    payload = jwt.decode(key.sign(**claims), options={"verify_signature": False})
    return _es256(key, f"{b64json(header)}.{b64json(payload)}")


def _no_typ_header(key: SigningKey, **claims: Any) -> str:
    return _signed_with_header(key, {"alg": "ES256", "kid": key.kid}, **claims)


def test_leeway_accepts_a_token_just_expired(verifier, key, clock):
    token = key.sign()
    clock.now = START + 3600 + 29
    assert verifier.verify(token).user_entity_ref == USER


@responses.activate
def test_verifies_over_http_and_fetches_the_jwks_once(key, clock):
    responses.get(JWKS_URL, json={"keys": [key.public_jwk]})
    verifier = IdentityVerifier(JWKS_URL, issuer=ISSUER, clock=clock, http=HttpClient())

    assert verifier.verify(key.sign()).user_entity_ref == USER
    assert verifier.verify(key.sign(sub="user:default/john")).user_entity_ref == (
        "user:default/john"
    )
    assert len(responses.calls) == 1


def test_rotation_in_another_process_right_after_our_fetch(verifier, key, source, clock):
    """Two processes sharing a key store rotate a moment apart: no 401 in between."""
    ours = SigningKey()
    source.keys.append(ours)
    verifier.verify(ours.sign(iat=clock.now))  # first fetch
    clock.now += 1.5
    theirs = SigningKey()
    source.keys.append(theirs)

    assert verifier.verify(theirs.sign(iat=clock.now)).user_entity_ref == USER
    assert source.calls == 2


# -- refused tokens ---------------------------------------------------------------------


def _alg_none(key: SigningKey) -> str:
    header = {"alg": "none", "typ": "vnd.backstage.user", "kid": key.kid}
    payload = jwt.decode(key.sign(), options={"verify_signature": False})
    return f"{b64json(header)}.{b64json(payload)}."


def _hs256_with_public_pem(key: SigningKey) -> str:
    # The classic confusion attack: HMAC "signed" with the published public key.
    header = {"alg": "HS256", "typ": "vnd.backstage.user", "kid": key.kid}
    payload = jwt.decode(key.sign(), options={"verify_signature": False})
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    signature = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def _tampered(key: SigningKey) -> str:
    header, payload, signature = parts(key.sign())
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "user:default/admin"
    return f"{header}.{b64json(claims)}.{signature}"


def _same_kid_other_key(key: SigningKey) -> str:
    return SigningKey(kid=key.kid).sign()


def _rs256(key: SigningKey) -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(
        {"iss": ISSUER, "sub": USER, "aud": "backstage", "iat": int(START), "exp": int(START) + 60},
        private,
        algorithm="RS256",
        headers={"typ": "vnd.backstage.user", "kid": key.kid},
    )


def _limited_user(key: SigningKey) -> str:
    return key.sign(headers={"typ": "vnd.backstage.limited-user"})


FORGERIES = [
    pytest.param(_alg_none, "algorithm 'none' is not allowed", id="alg-none"),
    pytest.param(_hs256_with_public_pem, "algorithm 'HS256' is not allowed", id="hs256-public-pem"),
    pytest.param(_tampered, "signature verification failed", id="tampered-payload"),
    pytest.param(lambda k: SigningKey().sign(), "unknown signing key", id="unknown-kid"),
    pytest.param(lambda k: k.sign(aud="catalog"), "wrong audience", id="wrong-aud"),
    pytest.param(lambda k: k.sign(aud=["a", "b"]), "wrong audience", id="aud-list-without-us"),
    pytest.param(lambda k: k.sign(iss="http://evil/api/auth"), "wrong issuer", id="wrong-iss"),
    pytest.param(lambda k: k.sign(iat=START - 3631), "token expired", id="expired-past-leeway"),
    pytest.param(lambda k: k.sign(drop=("exp",)), "missing claim exp", id="missing-exp"),
    pytest.param(lambda k: k.sign(drop=("iat",)), "missing claim iat", id="missing-iat"),
    pytest.param(lambda k: k.sign(drop=("sub",)), "missing claim sub", id="missing-sub"),
    pytest.param(lambda k: k.sign(drop=("aud",)), "missing claim aud", id="missing-aud"),
    pytest.param(lambda k: k.sign(drop=("iss",)), "missing claim iss", id="missing-iss"),
    pytest.param(lambda k: k.sign(exp="soon"), "exp", id="exp-not-a-number"),
    pytest.param(lambda k: k.sign(iat=START + 3600), "issued in the future", id="iat-future"),
    pytest.param(lambda k: k.sign(nbf=START + 600), "not valid yet", id="nbf-future"),
    pytest.param(lambda k: k.sign(sub=""), "sub", id="empty-sub"),
    pytest.param(lambda k: k.sign(ent="group:default/a"), "ent", id="ent-not-a-list"),
    pytest.param(lambda k: k.sign(ent=[1]), "ent", id="ent-not-strings"),
    pytest.param(lambda k: "!!!.@@@.###", "malformed", id="garbage-base64"),
    pytest.param(
        lambda k: f"{b64('not json')}.{b64('nor this')}.{b64('sig')}",
        "malformed",
        id="three-parts-not-json",
    ),
    pytest.param(lambda k: "a.b", "malformed", id="two-parts"),
    pytest.param(lambda k: "", "malformed", id="empty"),
    pytest.param(lambda k: "x" * 40_000, "size", id="oversized"),
    pytest.param(_limited_user, "limited-user", id="limited-user-typ"),
    pytest.param(
        lambda k: _no_typ_header(k, typ="vnd.backstage.limited-user"),
        "limited-user",
        id="limited-user-typ-claim",
    ),
    pytest.param(lambda k: k.sign(headers={"typ": "JWT"}), "'JWT'", id="jwt-typ"),
    pytest.param(lambda k: _signed_with_header(k, {"alg": "ES256"}), "kid", id="no-kid"),
    pytest.param(
        lambda k: _signed_with_header(k, {"alg": "ES256", "kid": 7}), "", id="kid-not-a-string"
    ),
    pytest.param(_same_kid_other_key, "signature verification failed", id="same-kid-other-key"),
    pytest.param(_rs256, "algorithm 'RS256' is not allowed", id="rs256"),
]


@pytest.mark.parametrize(("forge", "reason"), FORGERIES)
def test_forged_and_broken_tokens_are_401(verifier, key, forge, reason):
    token = forge(key)

    with pytest.raises(AuthenticationError) as raised:
        verifier.verify(token)

    assert raised.value.status_code == 401
    assert raised.value.message.startswith("Invalid identity token: ")
    assert reason in raised.value.message


@pytest.mark.parametrize(("token", "reason"), CRAFTED_TOKENS)
def test_crafted_segments_are_401_not_an_exception(verifier, token, reason):
    """Issue 8 item 5: a nesting bomb or an odd segment is an invalid token, never a 500."""
    with pytest.raises(AuthenticationError) as raised:
        verifier.verify(token)
    assert raised.value.status_code == 401
    assert raised.value.message == f"Invalid identity token: {reason}"


def test_nested_payload_is_no_exception_when_it_decides_a_refetch(verifier, key, source, clock):
    """The unverified payload is read for its iat when an unknown kid might warrant a
    refetch; a payload nested past the recursion limit only means "no hint"."""
    verifier.verify(key.sign())
    clock.now += 5  # past min_refetch_interval, before refetch_interval: the hint decides
    header = b64json({"alg": "ES256", "typ": "vnd.backstage.user", "kid": "unknown"})
    token = f"{header}.{b64('[' * 20_000)}.{b64('sig')}"

    with pytest.raises(AuthenticationError, match="unknown signing key"):
        verifier.verify(token)
    assert source.calls == 1  # no usable iat: no refetch


def test_recursion_error_from_pyjwt_is_401(verifier, key, monkeypatch):
    """PyJWT releases we allow (>=2.8) may let a deeply nested payload raise RecursionError."""

    def nested_too_deep(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")

    monkeypatch.setattr(jwt, "decode", nested_too_deep)
    with pytest.raises(AuthenticationError, match="malformed token"):
        verifier.verify(key.sign())


@settings(max_examples=200, deadline=None)
@given(header=st.binary(max_size=900), payload=st.binary(max_size=900))
def test_arbitrary_segment_bytes_are_only_ever_a_401(header, payload):
    key = SigningKey()
    clock = Clock()
    verifier = IdentityVerifier(key_source=KeySource(key), issuer=ISSUER, clock=clock)
    verifier.verify(key.sign())
    clock.now += 5  # so that an unknown kid reads the payload for its iat
    with pytest.raises(AuthenticationError):
        verifier.verify(f"{b64(header)}.{b64(payload)}.{b64('sig')}")


def test_pyjwt_errors_are_chained(verifier, key):
    with pytest.raises(AuthenticationError) as raised:
        verifier.verify(_tampered(key))
    assert isinstance(raised.value.__cause__, jwt.InvalidSignatureError)


def test_an_rsa_key_in_the_jwks_does_not_help_an_rs256_token(key, clock):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)}
    rsa_jwk["kid"] = "rsa"
    source = KeySource(key)
    verifier = IdentityVerifier(
        key_source=lambda: [*source(), rsa_jwk, {**rsa_jwk, "kid": "rsa2", "alg": "RS256"}],
        issuer=ISSUER,
        clock=clock,
    )
    for kid in ("rsa", "rsa2"):
        token = jwt.encode(
            {"iss": ISSUER, "sub": USER, "aud": "backstage", "iat": START, "exp": START + 60},
            private,
            algorithm="RS256",
            headers={"kid": kid, "typ": "vnd.backstage.user"},
        )
        with pytest.raises(AuthenticationError, match="'RS256' is not allowed"):
            verifier.verify(token)


def test_es256_header_on_a_key_for_another_algorithm_is_refused(key, clock):
    # An ES384 key (P-384) published under a kid: an ES256 token naming it must fail
    # even if ES384 is also accepted.
    p384 = ec.generate_private_key(ec.SECP384R1())
    jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(p384.public_key(), as_dict=True), "kid": "p384"}
    verifier = IdentityVerifier(
        key_source=lambda: [jwk], issuer=ISSUER, algorithms=("ES256", "ES384"), clock=clock
    )
    token = jwt.encode(
        {"iss": ISSUER, "sub": USER, "aud": "backstage", "iat": START, "exp": START + 60},
        key.private,
        algorithm="ES256",
        headers={"kid": "p384"},
    )
    with pytest.raises(AuthenticationError):
        verifier.verify(token)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_is_only_ever_a_401(text):
    verifier = IdentityVerifier(key_source=list, issuer=ISSUER, clock=Clock())
    with pytest.raises(AuthenticationError):
        verifier.verify(text)


@settings(max_examples=100, deadline=None)
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "typ", "kid"]),
        st.none() | st.booleans() | st.integers() | st.text() | st.lists(st.text(), max_size=3),
    ),
)
def test_odd_header_values_are_only_ever_a_401(header):
    verifier = IdentityVerifier(key_source=list, issuer=ISSUER, clock=Clock())
    token = f"{b64json(header)}.{b64json({'sub': USER})}.{b64('sig')}"
    with pytest.raises((AuthenticationError, ServiceUnavailableError)) as raised:
        verifier.verify(token)
    # An empty key set is not a fault: only a 401.
    assert raised.value.status_code == 401


# -- cached tokens and the keys in force ---------------------------------------------------
# (Fetching, refetch limits, expiry and failed fetches of the keys: test_jwks.py.)


def _http_verifier(clock: Clock) -> IdentityVerifier:
    return IdentityVerifier(JWKS_URL, issuer=ISSUER, clock=clock, http=HttpClient())


def _serve_jwks(*keys: SigningKey, cache_control: str | None = "max-age=120") -> None:
    headers = {"Cache-Control": cache_control} if cache_control is not None else {}
    jwks = {"keys": [key.public_jwk for key in keys]}
    if responses.registered():
        responses.replace(responses.GET, JWKS_URL, json=jwks, headers=headers)
    else:
        responses.get(JWKS_URL, json=jwks, headers=headers)


@responses.activate
def test_a_cached_token_does_not_outlive_its_withdrawn_key(key, clock, decode_calls):
    other = SigningKey()
    _serve_jwks(key, other)
    verifier = _http_verifier(clock)
    token, kept = key.sign(), other.sign()
    verifier.verify(token)
    verifier.verify(kept)
    _serve_jwks(other)
    clock.now += 120

    with pytest.raises(AuthenticationError, match="unknown signing key"):
        verifier.verify(token)
    # A key still published keeps its cached tokens: no verification again.
    calls = len(decode_calls)
    assert verifier.verify(kept).user_entity_ref == USER
    assert len(decode_calls) == calls


@responses.activate
def test_a_cached_token_does_not_outlive_a_key_replaced_under_its_kid(key, clock):
    _serve_jwks(key)
    verifier = _http_verifier(clock)
    token = key.sign()
    verifier.verify(token)
    _serve_jwks(SigningKey(kid=key.kid))
    clock.now += 120

    with pytest.raises(AuthenticationError, match="signature verification failed"):
        verifier.verify(token)


def test_unchanged_keys_keep_their_cached_tokens_across_refetches(
    verifier, key, source, clock, decode_calls
):
    token = key.sign()
    verifier.verify(token)
    for _ in range(3):
        clock.now += KEY_SOURCE_MAX_AGE
        verifier.verify(token)
    assert source.calls == 4
    assert len(decode_calls) == 1


# -- verified-token cache ----------------------------------------------------------------


@pytest.fixture
def decode_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token, *args, **kwargs):
        if kwargs.get("options", {}).get("verify_signature", True):
            calls.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    return calls


def test_a_repeated_token_is_not_verified_again(verifier, key, decode_calls):
    token = key.sign()
    first = verifier.verify(token)
    second = verifier.verify(token)
    assert second is first
    assert len(decode_calls) == 1


def test_a_cached_token_expires_with_its_exp(verifier, key, clock, decode_calls):
    token = key.sign(lifetime=600)
    verifier.verify(token)
    clock.now = START + 599
    verifier.verify(token)
    assert len(decode_calls) == 1

    clock.now = START + 600  # exp reached: the cache no longer answers
    verifier.verify(token)  # still within the leeway
    assert len(decode_calls) == 2
    clock.now = START + 631
    with pytest.raises(AuthenticationError, match="expired"):
        verifier.verify(token)


def test_cache_is_bounded_and_evicts_the_oldest(key, source, clock, decode_calls):
    verifier = IdentityVerifier(key_source=source, issuer=ISSUER, clock=clock, cache_size=2)
    tokens = [key.sign(sub=f"user:default/u{i}") for i in range(3)]
    for token in tokens:
        verifier.verify(token)
    assert len(decode_calls) == 3

    verifier.verify(tokens[2])
    verifier.verify(tokens[1])
    assert len(decode_calls) == 3
    verifier.verify(tokens[0])  # evicted
    assert len(decode_calls) == 4


def test_cache_size_zero_disables_the_cache(key, source, clock, decode_calls):
    verifier = IdentityVerifier(key_source=source, issuer=ISSUER, clock=clock, cache_size=0)
    token = key.sign()
    verifier.verify(token)
    verifier.verify(token)
    assert len(decode_calls) == 2


# -- bearer header and construction ------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("Bearer abc.def.ghi", "abc.def.ghi", id="plain"),
        pytest.param("bearer abc", "abc", id="lowercase-scheme"),
        pytest.param("BEARER   abc", "abc", id="several-spaces"),
        pytest.param("Bearer", None, id="no-token"),
        pytest.param("Bearer ", None, id="empty-token"),
        pytest.param("Bearer a b", None, id="two-tokens"),
        pytest.param("Bearer\tabc", None, id="tab"),
        pytest.param("Basic dXNlcjpwYXNz", None, id="basic"),
        pytest.param(" Bearer abc", None, id="leading-space"),
    ],
)
def test_parse_bearer_token(header, expected):
    assert parse_bearer_token(header) == expected


def test_identity_from_environ(verifier, key):
    assert verifier.identity_from_environ({}) is None
    token = key.sign()
    identity = verifier.identity_from_environ({"HTTP_AUTHORIZATION": f"Bearer {token}"})
    assert identity is not None
    assert identity.user_entity_ref == USER
    with pytest.raises(AuthenticationError, match="Bearer <token>"):
        verifier.identity_from_environ({"HTTP_AUTHORIZATION": f"Basic {token}"})
    with pytest.raises(AuthenticationError, match="Invalid identity token"):
        verifier.identity_from_environ({"HTTP_AUTHORIZATION": "Bearer nope"})


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="no-key-source"),
        pytest.param({"jwks_url": JWKS_URL, "key_source": list}, id="both"),
        pytest.param({"key_source": list, "algorithms": ("HS256",)}, id="hmac"),
        pytest.param({"key_source": list, "algorithms": ("none",)}, id="none"),
        pytest.param({"key_source": list, "algorithms": ()}, id="empty"),
    ],
)
def test_bad_construction_is_refused(kwargs):
    with pytest.raises(ValueError):
        IdentityVerifier(issuer=ISSUER, **kwargs)


# -- with the real token factory ---------------------------------------------------------


def test_in_process_with_the_token_factory_through_rotations(clock):
    """Two processes share one key store, rotate on their own schedules, verify each other."""
    store = MemoryKeyStore(clock=clock)
    first = TokenFactory(ISSUER, store, 600, clock=clock)
    second = TokenFactory(ISSUER, store, 600, clock=clock)
    verifiers = [
        IdentityVerifier(key_source=factory.list_public_keys, issuer=ISSUER, clock=clock)
        for factory in (first, second)
    ]
    kids: set[str] = set()
    failures = []
    for step in range(1200):  # four key lifetimes, a token every 2 s from each side
        clock.now = START + 2 * step
        # The second process starts 74 s later, so the two rotate at different times.
        issuers = [first, second] if step >= 37 else [first]
        for issuer in issuers:
            token = issuer.issue_token(TokenParams(claims={"sub": USER, "ent": ENT}))
            kids.add(jwt.get_unverified_header(token)["kid"])
            for verifier in verifiers:
                try:
                    assert verifier.verify(token).ownership_entity_refs == tuple(ENT)
                except AuthenticationError as exc:
                    failures.append((step, exc.message))
    assert failures == []
    assert len(kids) >= 8  # both processes rotated several times
