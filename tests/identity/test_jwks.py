"""JwksKeys: which keys are kept, when an unknown kid fetches, expiry, and failed fetches."""

from __future__ import annotations

import base64
import threading
import uuid
from typing import Any

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa

from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.http import HttpClient
from wsgiauth.identity.jwks import JWKS_DEFAULT_MAX_AGE
from wsgiauth.identity.jwks import JWKS_MAX_MAX_AGE
from wsgiauth.identity.jwks import JWKS_MIN_MAX_AGE
from wsgiauth.identity.jwks import JWKS_STALE_GRACE
from wsgiauth.identity.jwks import KEY_SOURCE_MAX_AGE
from wsgiauth.identity.jwks import JwksKeys

JWKS_URL = "http://localhost:7007/api/auth/.well-known/jwks.json"
START = 1_700_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def es256_jwk(kid: str | None = None, private: Any = None) -> dict[str, Any]:
    """A public ES256 JWK as the token factory publishes one: uuid kid, alg."""
    private = private or ec.generate_private_key(ec.SECP256R1())
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return {**jwk, "kid": kid or str(uuid.uuid4()), "alg": "ES256"}


def rsa_jwk(**extra: Any) -> dict[str, Any]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {**jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True), **extra}


class KeySource:
    """A key source as the token factory's list_public_keys, counting its calls."""

    def __init__(self, *jwks: dict[str, Any]) -> None:
        self.jwks = list(jwks)
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self) -> list[dict[str, Any]]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return list(self.jwks)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jwk() -> dict[str, Any]:
    return es256_jwk()


@pytest.fixture
def source(jwk) -> KeySource:
    return KeySource(jwk)


@pytest.fixture
def keys(source, clock) -> JwksKeys:
    return JwksKeys(key_source=source, clock=clock)


def _serve_jwks(*jwks: dict[str, Any], cache_control: str | None = "max-age=120") -> None:
    headers = {"Cache-Control": cache_control} if cache_control is not None else {}
    body = {"keys": list(jwks)}
    if responses.registered():
        responses.replace(responses.GET, JWKS_URL, json=body, headers=headers)
    else:
        responses.get(JWKS_URL, json=body, headers=headers)


def _http_keys(clock: Clock, **options: Any) -> JwksKeys:
    return JwksKeys(JWKS_URL, http=HttpClient(), clock=clock, **options)


# -- which keys are kept ----------------------------------------------------------------


def test_keys_are_parsed_once_and_found_by_kid(keys, jwk, source):
    key = keys.key(jwk["kid"])
    assert isinstance(key, jwt.PyJWK)
    assert key.algorithm_name == "ES256"
    assert keys.key(jwk["kid"]) is key
    assert keys.known(jwk["kid"], START) is key
    assert source.calls == 1


def test_unusable_jwks_entries_are_skipped(clock, jwk):
    other = ec.generate_private_key(ec.SECP256R1())
    private_jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(other, as_dict=True), "kid": "private"}
    secret = base64.urlsafe_b64encode(b"s" * 32).rstrip(b"=").decode()
    entries: list[Any] = [
        "not a key",
        {"kty": "EC", "crv": "P-256", "x": "AA", "kid": "broken"},
        {"kty": "oct", "k": secret, "kid": "hmac", "alg": "HS256"},
        {**jwk, "kid": "enc", "use": "enc"},
        {**jwk, "kid": "es384", "alg": "ES384"},
        # A private key in the JWKS is a publishing mistake, never a verification key.
        private_jwk,
        # Without alg an RSA key would serve RS256, which is not allowed.
        rsa_jwk(kid="rsa"),
        rsa_jwk(kid="rs256", alg="RS256"),
        jwk,
    ]
    keys = JwksKeys(key_source=lambda: entries, clock=clock)

    assert keys.key(jwk["kid"]) is not None
    for kid in ("broken", "hmac", "enc", "es384", "private", "rsa", "rs256"):
        assert keys.key(kid) is None, kid


def test_each_key_serves_its_own_algorithm_only(clock):
    p384 = ec.generate_private_key(ec.SECP384R1())
    jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(p384.public_key(), as_dict=True), "kid": "p384"}
    assert JwksKeys(key_source=lambda: [jwk], clock=clock).key("p384") is None
    both = JwksKeys(key_source=lambda: [jwk], algorithms=("ES256", "ES384"), clock=clock)
    assert both.key("p384").algorithm_name == "ES384"


def test_key_algorithm_reads_every_key_for_it(clock):
    # An identity provider's RSA key with no alg serves the configured PS256.
    jwks = [rsa_jwk(kid="no-alg"), rsa_jwk(kid="rs256", alg="RS256"), es256_jwk(kid="ec")]
    keys = JwksKeys(
        key_source=lambda: jwks, algorithms=("PS256",), key_algorithm="PS256", clock=clock
    )
    assert keys.key("no-alg").algorithm_name == "PS256"
    assert keys.key("rs256") is None  # published for another algorithm
    assert keys.key("ec") is None  # another key type
    # Without key_algorithm the same key reads as RS256, which is not allowed.
    assert (
        JwksKeys(key_source=lambda: jwks, algorithms=("PS256",), clock=clock).key("no-alg") is None
    )


def test_key_algorithm_must_be_allowed():
    with pytest.raises(ValueError, match="key_algorithm"):
        JwksKeys(key_source=list, algorithms=("RS256",), key_algorithm="PS256")


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="neither"),
        pytest.param({"jwks_url": JWKS_URL, "key_source": list}, id="both"),
    ],
)
def test_one_place_to_fetch_from(kwargs):
    with pytest.raises(ValueError, match="exactly one"):
        JwksKeys(**kwargs)


def test_a_token_without_kid_finds_the_only_key(clock):
    anonymous = {key: value for key, value in es256_jwk().items() if key != "kid"}
    keys = JwksKeys(key_source=lambda: [anonymous], clock=clock)
    assert keys.key(None) is not None
    assert keys.key("x") is None  # a key without kid answers to no kid
    assert JwksKeys(key_source=lambda: [es256_jwk()], clock=clock).key(None) is not None
    two = JwksKeys(key_source=lambda: [es256_jwk(), anonymous], clock=clock)
    assert two.key(None) is None  # ambiguous


def test_unchanged_keys_keep_their_object_across_refetches(keys, jwk, source, clock):
    # The verifier's token cache trusts a token while its key object is still in force.
    key = keys.key(jwk["kid"])
    clock.now += KEY_SOURCE_MAX_AGE
    assert keys.key(jwk["kid"]) is key
    source.jwks = [{**jwk, "x": es256_jwk()["x"]}]  # replaced under the same kid
    clock.now += KEY_SOURCE_MAX_AGE
    assert keys.known(jwk["kid"], clock.now) is not key
    assert source.calls == 3


# -- unknown kid: refetch, rate limits ---------------------------------------------------


def test_a_new_kid_is_found_after_one_refetch(keys, jwk, source, clock):
    keys.key(jwk["kid"])
    clock.now += 5
    rotated = es256_jwk()
    source.jwks.append(rotated)

    assert keys.key(rotated["kid"], lambda: clock.now) is not None
    assert source.calls == 2
    # The old key is still known: no further fetch.
    assert keys.key(jwk["kid"]) is not None
    assert source.calls == 2


def test_unknown_kid_refetches_once_then_none(keys, jwk, source, clock):
    keys.key(jwk["kid"])
    clock.now += 31  # past refetch_interval
    assert keys.key("unknown") is None
    assert source.calls == 2


def test_without_an_issue_time_only_refetch_interval_counts(keys, jwk, source, clock):
    keys.key(jwk["kid"])
    clock.now += 29
    assert keys.key("unknown") is None
    assert keys.key("unknown", lambda: None) is None
    assert source.calls == 1


def test_a_flood_of_random_kids_does_not_hammer_the_key_source(keys, jwk, source, clock):
    keys.key(jwk["kid"])
    for _ in range(200):
        assert keys.key(str(uuid.uuid4()), lambda: clock.now) is None
    # The clock did not move: no refetch, whatever iat the tokens claim.
    assert source.calls == 1


def test_flood_with_a_moving_clock_is_bounded(keys, jwk, source, clock):
    keys.key(jwk["kid"])
    for step in range(40):  # 10 s of tokens, four per second
        clock.now = START + 0.25 * (step + 1)
        # Fresh iat: one fetch per min_refetch_interval at most.
        assert keys.key(str(step), lambda: clock.now) is None
    assert 2 <= source.calls <= 1 + 10

    calls = source.calls
    for step in range(40):  # 10 s more, tokens claiming to be older than our last fetch
        clock.now = START + 10 + 0.25 * (step + 1)
        assert keys.key(f"old{step}", lambda: START - 60) is None
    assert source.calls == calls


def test_concurrent_first_use_fetches_once(keys, jwk, source):
    found: list[Any] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            found.append(keys.key(jwk["kid"]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(found) == 64 and len({id(key) for key in found}) == 1
    assert source.calls == 1


# -- failed fetches ----------------------------------------------------------------------


@responses.activate
def test_jwks_down_with_keys_cached_still_verifies(jwk, clock):
    _serve_jwks(jwk)
    keys = _http_keys(clock)
    keys.key(jwk["kid"])
    responses.replace(responses.GET, JWKS_URL, body=requests.ConnectionError("down"))
    clock.now += 60

    # An unknown kid while the JWKS is down: a refetch is tried, and the kid is unknown.
    assert keys.key("unknown", lambda: clock.now) is None
    # Known keys go on working.
    assert keys.key(jwk["kid"]) is not None
    assert len(responses.calls) == 2


@responses.activate
def test_jwks_down_without_keys_is_503_and_retried_sparingly(jwk, clock):
    responses.get(JWKS_URL, status=502)
    keys = _http_keys(clock)

    with pytest.raises(ServiceUnavailableError) as raised:
        keys.key(jwk["kid"])
    assert isinstance(raised.value.__cause__, ServiceUnavailableError)
    assert "Could not load the identity signing keys" in raised.value.full_message()
    with pytest.raises(ServiceUnavailableError):
        keys.key(jwk["kid"])
    assert len(responses.calls) == 1  # not asked again within min_refetch_interval

    _serve_jwks(jwk)
    clock.now += 1
    assert keys.key(jwk["kid"]) is not None
    assert len(responses.calls) == 2


@responses.activate
def test_jwks_without_a_key_list_is_503(jwk, clock):
    responses.get(JWKS_URL, json={"keys": "none"})
    with pytest.raises(ServiceUnavailableError):
        _http_keys(clock).key(jwk["kid"])


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ServiceUnavailableError("key store down"), id="service-unavailable"),
        pytest.param(RuntimeError("driver exploded"), id="unexpected"),
    ],
)
def test_key_source_failure_without_keys_is_503(jwk, clock, error):
    source = KeySource(jwk)
    source.error = error
    with pytest.raises(ServiceUnavailableError) as raised:
        JwksKeys(key_source=source, clock=clock).key(jwk["kid"])
    assert "driver exploded" not in raised.value.full_message()


@responses.activate
def test_failed_refetch_serves_the_last_keys_for_a_grace_then_503(jwk, clock, caplog):
    _serve_jwks(jwk, cache_control="max-age=60")
    keys = _http_keys(clock)
    keys.key(jwk["kid"])
    responses.replace(responses.GET, JWKS_URL, body=requests.ConnectionError("down"))
    clock.now += 60

    # The auth service is down: the last good keys go on, with a warning.
    assert keys.key(jwk["kid"]) is not None
    assert len(responses.calls) == 2
    assert "Could not refetch the identity keys" in caplog.text
    clock.now += 29
    assert keys.key(jwk["kid"]) is not None
    assert len(responses.calls) == 2  # retried once per refetch_interval, not per request
    clock.now += 1
    keys.key(jwk["kid"])
    assert len(responses.calls) == 3

    # But not for ever: past the grace no key is usable, not even a known one.
    clock.now = START + 60 + JWKS_STALE_GRACE
    with pytest.raises(ServiceUnavailableError):
        keys.key(jwk["kid"])
    with pytest.raises(ServiceUnavailableError):
        keys.known(jwk["kid"], clock.now)

    _serve_jwks(jwk)
    clock.now += 1  # min_refetch_interval
    assert keys.key(jwk["kid"]) is not None


def test_a_due_refetch_does_not_hold_up_other_requests(jwk, clock):
    """While one thread refetches slowly, the others go on with the keys in hand."""
    fetching, release = threading.Event(), threading.Event()
    source = KeySource(jwk)
    waited_out: list[bool] = []

    def slow_source() -> list[dict[str, Any]]:
        if source.calls:
            fetching.set()
            # Released once the other request is answered, unless it queued behind us.
            waited_out.append(not release.wait(5))
        return source()

    keys = JwksKeys(key_source=slow_source, clock=clock)
    keys.key(jwk["kid"])
    clock.now += KEY_SOURCE_MAX_AGE
    slow = threading.Thread(target=keys.key, args=(jwk["kid"],))
    slow.start()
    try:
        assert fetching.wait(5)
        assert keys.key(jwk["kid"]) is not None
    finally:
        release.set()
        slow.join()
    assert waited_out == [False]
    assert source.calls == 2


# -- failures not tolerated (an identity provider's JWKS) ---------------------------------


def test_untolerated_failures_raise_their_own_error_and_are_tried_again(jwk, clock):
    source = KeySource(jwk)
    source.error = ServiceUnavailableError("Identity provider at idp.example answered 500")
    keys = JwksKeys(key_source=source, tolerate_failures=False, max_age=600, clock=clock)

    for calls in (1, 2):  # nothing of the attempt is kept: the next use asks again
        with pytest.raises(ServiceUnavailableError, match="idp.example answered 500"):
            keys.key(jwk["kid"])
        assert source.calls == calls

    source.error = None
    assert keys.key(jwk["kid"]) is not None
    clock.now += 31
    source.error = ServiceUnavailableError("down")
    with pytest.raises(ServiceUnavailableError, match="down"):
        keys.key("unknown")  # the refetch for an unknown kid fails aloud too
    assert keys.key(jwk["kid"]) is not None  # the keys in hand are untouched
    clock.now += 600
    with pytest.raises(ServiceUnavailableError, match="down"):
        keys.key(jwk["kid"])  # past max-age: no grace


# -- keys expire: a withdrawn key stops verifying ----------------------------------------


@responses.activate
def test_a_key_withdrawn_from_the_jwks_stops_verifying_after_max_age(jwk, clock):
    other = es256_jwk()
    _serve_jwks(jwk, other)
    keys = _http_keys(clock)
    assert keys.key(jwk["kid"]) is not None
    _serve_jwks(other)  # the key leaked and was withdrawn
    clock.now += 119

    # Within max-age the keys are not fetched again.
    assert keys.known(jwk["kid"], clock.now) is not None
    assert len(responses.calls) == 1
    clock.now += 1

    assert keys.key(jwk["kid"]) is None
    assert len(responses.calls) == 2
    assert keys.key(other["kid"]) is not None


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [
        pytest.param("public, max-age=120", 120, id="honoured"),
        pytest.param('max-age="90"', 90, id="quoted"),
        pytest.param("max-age=0", JWKS_MIN_MAX_AGE, id="zero-clamped-up"),
        pytest.param("no-store, max-age=600", JWKS_MIN_MAX_AGE, id="no-store"),
        pytest.param("no-cache", JWKS_MIN_MAX_AGE, id="no-cache"),
        pytest.param("max-age=31536000", JWKS_MAX_MAX_AGE, id="a-year-clamped-down"),
        pytest.param("max-age=" + "9" * 5000, JWKS_MAX_MAX_AGE, id="huge-number"),
        pytest.param("max-age=soon", JWKS_DEFAULT_MAX_AGE, id="not-a-number"),
        pytest.param("max-age=-5", JWKS_DEFAULT_MAX_AGE, id="negative"),
        pytest.param("public", JWKS_DEFAULT_MAX_AGE, id="no-max-age"),
        pytest.param(None, JWKS_DEFAULT_MAX_AGE, id="no-header"),
    ],
)
@responses.activate
def test_jwks_max_age_is_honoured_within_bounds(jwk, clock, cache_control, seconds):
    _serve_jwks(jwk, cache_control=cache_control)
    keys = _http_keys(clock)
    keys.key(jwk["kid"])
    clock.now += seconds - 1
    keys.key(jwk["kid"])
    assert len(responses.calls) == 1  # no refetch before the max-age
    clock.now += 1
    keys.key(jwk["kid"])
    assert len(responses.calls) == 2


@responses.activate
def test_a_fixed_max_age_overrides_cache_control(jwk, clock):
    _serve_jwks(jwk, cache_control="max-age=60")
    keys = _http_keys(clock, max_age=3600)
    keys.key(jwk["kid"])
    clock.now += 3599
    keys.key(jwk["kid"])
    assert len(responses.calls) == 1
    clock.now += 1
    keys.key(jwk["kid"])
    assert len(responses.calls) == 2


def test_key_source_keys_expire_too(keys, jwk, source, clock):
    keys.key(jwk["kid"])
    source.jwks = [es256_jwk()]
    clock.now += KEY_SOURCE_MAX_AGE - 1
    assert keys.key(jwk["kid"]) is not None
    assert source.calls == 1
    clock.now += 1

    assert keys.key(jwk["kid"]) is None
    assert source.calls == 2
