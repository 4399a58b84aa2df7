"""TokenFactory and StaticTokenIssuer: token bytes, claims, rotation, key listing, faults."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.identity.conftest import ISSUER
from tests.identity.conftest import RecordingKeyStore
from tests.identity.conftest import claims_of
from tests.identity.conftest import kid_of
from tests.identity.conftest import segments
from tests.identity.conftest import verify
from wsgiauth.config import Config
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ConfigError
from wsgiauth.errors import InputError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.identity import token_factory
from wsgiauth.identity.key_stores import MemoryKeyStore
from wsgiauth.identity.key_stores import StaticKeyStore
from wsgiauth.identity.token_factory import StaticTokenIssuer
from wsgiauth.identity.token_factory import TokenFactory
from wsgiauth.identity.token_factory import read_token_expiration
from wsgiauth.identity.user_info import MemoryUserInfoStore
from wsgiauth.types import TokenParams

JANE = "user:default/jane"
DURATION = 600


def params(**claims):
    return TokenParams(claims={"sub": JANE, **claims})


@pytest.fixture
def factory(clock, recording_store):
    return TokenFactory(ISSUER, recording_store, DURATION, clock=clock)


# --- the signing key in the token and the key list ---------------------------------------


def test_public_jwk_is_the_exported_key_with_kid_and_alg_and_no_use(factory):
    token = factory.issue_token(params())
    [jwk] = factory.list_public_keys()
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["kid"]) == (
        "EC",
        "P-256",
        "ES256",
        kid_of(token),
    )


# --- what the factory hands the token format and the user-info store ---------------------
# (The token's bytes, claims and limits are tests/identity/test_tokens.py.)


@pytest.mark.parametrize("omit", [pytest.param(False, id="kept"), pytest.param(True, id="omitted")])
def test_ownership_claim_option_reaches_the_token(clock, omit):
    users = MemoryUserInfoStore()
    factory = TokenFactory(
        ISSUER, MemoryKeyStore(), DURATION, clock=clock, omit_ownership_claim=omit,
        user_info_store=users,
    )  # fmt: skip
    claims = claims_of(factory.issue_token(params()))
    assert ("ent" in claims) is not omit
    # The user info keeps ent even when the token leaves it out (spec §8).
    assert users.get_user_info(JANE)["ent"] == [JANE]


def test_user_info_keeps_sub_ent_exp_and_extra_claims_only(factory, clock):
    users = MemoryUserInfoStore()
    factory = TokenFactory(ISSUER, MemoryKeyStore(), DURATION, clock=clock, user_info_store=users)
    token = factory.issue_token(params(ent=["group:default/a"], name="Jane"))
    exp = claims_of(token)["exp"]
    assert users.get_user_info(JANE) == {
        "name": "Jane",
        "sub": JANE,
        "ent": ["group:default/a"],
        "exp": exp,
    }


def test_the_formats_input_errors_reach_the_caller(factory):
    with pytest.raises(InputError):
        factory.issue_token(TokenParams(claims={"sub": "jane"}))


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"])
def test_other_algorithms_sign_verifiable_tokens(clock, algorithm):
    factory = TokenFactory(ISSUER, MemoryKeyStore(), DURATION, algorithm=algorithm, clock=clock)
    token = factory.issue_token(params())
    assert verify(token, factory.list_public_keys())["sub"] == JANE
    assert segments(token)[0].startswith(
        f'{{"typ":"vnd.backstage.user","alg":"{algorithm}"'.encode()
    )


@pytest.mark.parametrize("algorithm", ["HS256", "none", "XX1"])
def test_symmetric_or_unknown_algorithms_are_refused(algorithm):
    with pytest.raises(ConfigError):
        TokenFactory(ISSUER, MemoryKeyStore(), DURATION, algorithm=algorithm)


# --- keys: lazy, published first, rotated, listed, pruned ---------------------------------


def test_key_is_made_lazily_and_published_before_first_use(clock):
    published = []

    class Store(MemoryKeyStore):
        def add_key(self, key):
            published.append(key["kid"])
            super().add_key(key)

    factory = TokenFactory(ISSUER, Store(clock=clock), DURATION, clock=clock)
    assert published == []
    token = factory.issue_token(params())
    assert published == [kid_of(token)]


def test_publish_first_key_publishes_before_any_token(factory, recording_store):
    assert factory.publish_first_key() == 0.0  # a store of this process alone: no wait
    (stored,) = recording_store.list_keys()
    assert [key["kid"] for key in factory.list_public_keys()] == [stored.key["kid"]]

    assert factory.publish_first_key() == 0.0  # a key already: nothing made
    assert kid_of(factory.issue_token(params())) == stored.key["kid"]
    assert recording_store.calls["add_key"] == 1


def test_publish_first_key_with_the_store_down_raises(factory, recording_store):
    recording_store.down = True
    with pytest.raises(ServiceUnavailableError):
        factory.publish_first_key()


def test_key_rotates_after_one_duration_and_stays_listed_for_three(factory, clock, recording_store):
    first = kid_of(factory.issue_token(params()))
    clock.advance(DURATION)
    assert kid_of(factory.issue_token(params())) == first  # now == created + duration: still valid
    clock.advance(1)
    second = kid_of(factory.issue_token(params()))
    assert second != first
    clock.advance(DURATION + 1)
    third = kid_of(factory.issue_token(params()))
    assert len({first, second, third}) == 3
    assert {k["kid"] for k in factory.list_public_keys()} == {first, second, third}
    # first was made at t0; it is listed until t0 + 3 * duration, then pruned.
    clock.advance(3 * DURATION - (2 * DURATION + 2) - 1)
    assert first in {k["kid"] for k in factory.list_public_keys()}
    clock.advance(2)
    assert first not in {k["kid"] for k in factory.list_public_keys()}
    assert recording_store.removed == [first]


def test_next_key_is_published_ahead_of_use(clock, recording_store):
    factory = TokenFactory(ISSUER, recording_store, DURATION, clock=clock, publish_ahead_seconds=60)
    first = kid_of(factory.issue_token(params()))
    clock.advance(DURATION - 60 + 1)
    assert kid_of(factory.issue_token(params())) == first
    listed = [k["kid"] for k in factory.list_public_keys()]
    assert len(listed) == 2 and first in listed
    upcoming = next(kid for kid in listed if kid != first)
    clock.advance(60)
    assert kid_of(factory.issue_token(params())) == upcoming
    assert recording_store.calls["add_key"] == 2


def test_list_is_served_from_memory_between_refreshes(factory, clock, recording_store):
    factory.issue_token(params())
    for _ in range(1000):
        factory.list_public_keys()
    assert recording_store.calls["list_keys"] == 1


def test_key_of_another_process_appears_after_the_cache_period(factory, clock, recording_store):
    factory.issue_token(params())
    factory.list_public_keys()
    recording_store.add_key({"kid": "other-process", "kty": "EC"})
    assert "other-process" not in {k["kid"] for k in factory.list_public_keys()}
    clock.advance(factory.list_cache_seconds)
    assert "other-process" in {k["kid"] for k in factory.list_public_keys()}


def test_key_of_this_process_appears_at_once(factory, clock):
    factory.issue_token(params())
    listed = {k["kid"] for k in factory.list_public_keys()}
    clock.advance(DURATION + 1)
    kid = kid_of(factory.issue_token(params()))
    assert kid not in listed
    assert kid in {k["kid"] for k in factory.list_public_keys()}


def test_expired_keys_are_pruned_at_most_once_a_minute(factory, clock, recording_store):
    def add_expired(kid):
        saved = clock.now
        clock.now -= 3 * DURATION + 1
        recording_store.add_key({"kid": kid})
        clock.now = saved

    factory.issue_token(params())
    add_expired("old-1")
    assert "old-1" not in {k["kid"] for k in factory.list_public_keys()}
    assert recording_store.removed == ["old-1"]
    add_expired("old-2")
    clock.advance(30)
    assert "old-2" not in {k["kid"] for k in factory.list_public_keys()}
    assert recording_store.removed == ["old-1"]
    clock.advance(30)
    factory.list_public_keys()
    assert recording_store.removed == ["old-1", "old-2"]


def test_cached_list_drops_a_key_the_moment_it_expires(factory, clock):
    kid = kid_of(factory.issue_token(params()))
    clock.advance(DURATION + 1)
    factory.issue_token(params())
    clock.advance(2 * DURATION - 1.5)
    assert kid in {k["kid"] for k in factory.list_public_keys()}
    clock.advance(0.6)  # within the cache period, but past the key's listing time
    assert kid not in {k["kid"] for k in factory.list_public_keys()}


def test_eight_threads_issuing_at_once_make_one_key(clock):
    store = RecordingKeyStore(clock=clock, delay=0.05)
    factory = TokenFactory(ISSUER, store, DURATION, clock=clock)
    barrier = threading.Barrier(8)
    tokens = []

    def issue():
        barrier.wait()
        tokens.append(factory.issue_token(params()))

    threads = [threading.Thread(target=issue) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.calls["add_key"] == 1
    assert len(tokens) == 8
    assert len({kid_of(token) for token in tokens}) == 1


def test_eight_threads_at_a_rotation_make_one_new_key(clock):
    store = RecordingKeyStore(clock=clock)
    factory = TokenFactory(ISSUER, store, DURATION, clock=clock, publish_ahead_seconds=0)
    first = kid_of(factory.issue_token(params()))
    store.delay = 0.05
    clock.advance(DURATION + 1)
    barrier = threading.Barrier(8)
    kids = []

    def issue():
        barrier.wait()
        kids.append(kid_of(factory.issue_token(params())))

    threads = [threading.Thread(target=issue) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.calls["add_key"] == 2
    assert len(set(kids)) == 1 and kids[0] != first


# --- a store other processes read: no key signs before every process can list it ---------


class RecordingSleep:
    """A sleep that records each wait and moves the fake clock on by it."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def sleep(clock):
    return RecordingSleep(clock)


@pytest.fixture
def shared(clock, recording_store, sleep):
    return TokenFactory(
        ISSUER, recording_store, DURATION, clock=clock, shared_store=True, sleep=sleep
    )


def test_a_first_key_made_on_the_spot_signs_only_after_the_delay(shared, clock, sleep):
    published_at = clock()
    token = shared.issue_token(params())

    assert sleep.waits == [shared.rotation_delay_seconds]
    # The token is stamped when it is signed, after the wait.
    assert claims_of(token)["iat"] == int(published_at + shared.rotation_delay_seconds)
    shared.issue_token(params())
    assert len(sleep.waits) == 1  # once


def test_publish_first_key_names_the_wait_that_spares_the_first_token(shared, clock, sleep):
    assert shared.publish_first_key() == shared.rotation_delay_seconds > 0
    clock.advance(1.5)
    assert shared.publish_first_key() == pytest.approx(shared.rotation_delay_seconds - 1.5)
    clock.advance(shared.rotation_delay_seconds)  # a server that waited it out
    shared.issue_token(params())
    assert sleep.waits == []


def test_a_token_asked_early_waits_only_the_rest(shared, clock, sleep):
    shared.publish_first_key()
    clock.advance(1)
    shared.issue_token(params())
    assert sleep.waits == [pytest.approx(shared.rotation_delay_seconds - 1)]


def test_a_first_key_waits_at_most_the_delay_whatever_the_clock_did(shared, clock, sleep):
    shared.publish_first_key()
    clock.now -= 3600  # the wall clock stepped back an hour
    shared.issue_token(params())
    assert sleep.waits == [shared.rotation_delay_seconds]


def test_an_idle_process_signs_with_its_expired_key_until_the_new_one_is_due(
    shared, clock, sleep, recording_store
):
    shared.publish_first_key()
    clock.advance(shared.rotation_delay_seconds)
    first = kid_of(shared.issue_token(params()))
    clock.advance(DURATION + 60)  # no token for a while: nothing was published ahead

    assert kid_of(shared.issue_token(params())) == first  # expired, still listed
    [_, second] = _published(recording_store)
    clock.advance(shared.rotation_delay_seconds + 0.01)
    assert kid_of(shared.issue_token(params())) == second
    assert sleep.waits == []


def test_a_key_too_old_to_outlive_its_tokens_is_replaced_with_a_wait(
    shared, clock, sleep, recording_store
):
    shared.publish_first_key()
    clock.advance(shared.rotation_delay_seconds)
    first = kid_of(shared.issue_token(params()))
    # A token signed now would outlive the key's listing (three durations from its making).
    clock.advance(2 * DURATION)

    token = shared.issue_token(params())
    assert kid_of(token) != first
    assert sleep.waits == [shared.rotation_delay_seconds]
    assert verify(token, shared.list_public_keys(), check_time=False)["sub"] == JANE


def test_without_a_shared_store_an_idle_process_switches_at_once(factory, clock, recording_store):
    first = kid_of(factory.issue_token(params()))
    clock.advance(DURATION + 60)
    assert kid_of(factory.issue_token(params())) != first
    assert len(_published(recording_store)) == 2


def test_the_first_token_another_process_signs_verifies_here_at_once(tmp_path):
    """Two processes on one SQLite file, each verifying with its own key list, on real time.

    B's key list and verifier were refreshed a moment ago; A's first key is made on
    the spot. Without the wait, B refuses A's first token ("unknown signing key").
    """
    from wsgiauth.identity.database import Database
    from wsgiauth.identity.key_stores import SqlKeyStore
    from wsgiauth.identity.verifier import IdentityVerifier

    def first_token_of_a_at_b(shared_store: bool) -> str:
        database = Database.sqlite(tmp_path / f"keys-{shared_store}.sqlite3")
        a = TokenFactory(
            ISSUER, SqlKeyStore(database), DURATION, list_cache_seconds=0.25,
            shared_store=shared_store,
        )  # fmt: skip
        # How B's own first key waits is not the point here.
        b = TokenFactory(ISSUER, SqlKeyStore(database), DURATION, list_cache_seconds=0.25)
        b_verifier = IdentityVerifier(issuer=ISSUER, key_source=b.list_public_keys)
        b_verifier.verify(b.issue_token(params()))  # B's caches are fresh now
        token = a.issue_token(params())
        try:
            return b_verifier.verify(token).user_entity_ref
        except AuthenticationError as exc:
            return str(exc)

    assert first_token_of_a_at_b(shared_store=True) == JANE
    assert "unknown signing key" in first_token_of_a_at_b(shared_store=False)


# --- rotation on request (wsgiauth keys rotate) ------------------------------------------


def _published(store) -> list[str]:
    return [stored.key["kid"] for stored in store.list_keys()]


def test_a_rotation_request_publishes_a_key_that_signs_only_after_the_delay(
    factory, clock, recording_store
):
    first = kid_of(factory.issue_token(params()))
    clock.advance(5)
    recording_store.request_rotation(clock())
    clock.advance(1)
    # Seen on the next issue: the new key is published, the old one still signs.
    assert kid_of(factory.issue_token(params())) == first
    [_, second] = _published(recording_store)
    assert second in {k["kid"] for k in factory.list_public_keys()}
    clock.advance(factory.rotation_delay_seconds)
    assert kid_of(factory.issue_token(params())) == first  # not past the delay yet
    clock.advance(0.01)
    token = factory.issue_token(params())
    assert kid_of(token) == second
    # The old key stays listed: tokens it signed still verify.
    assert {first, second} <= {k["kid"] for k in factory.list_public_keys()}
    assert verify(token, factory.list_public_keys(), check_time=False)["sub"] == JANE
    assert recording_store.calls["add_key"] == 2


def test_the_default_delay_covers_two_list_cache_periods_and_the_margin(recording_store):
    factory = TokenFactory(ISSUER, recording_store, DURATION, list_cache_seconds=1.5)
    assert factory.rotation_delay_seconds == 2 * 1.5 + token_factory.ROTATION_MARGIN


def test_a_key_made_after_the_mark_is_kept(factory, clock, recording_store):
    recording_store.request_rotation(clock())
    first = kid_of(factory.issue_token(params()))
    for _ in range(3):
        clock.advance(factory.rotation_delay_seconds + 1)
        assert kid_of(factory.issue_token(params())) == first
    assert recording_store.calls["add_key"] == 1


def test_a_mark_ahead_of_this_clock_rotates_once_not_in_a_loop(factory, clock, recording_store):
    """An operator's clock 100 s ahead: keys made after the request still predate the mark."""
    first = kid_of(factory.issue_token(params()))
    recording_store.request_rotation(clock() + 100)
    signers = set()
    for _ in range(20):
        clock.advance(factory.rotation_delay_seconds / 2)
        signers.add(kid_of(factory.issue_token(params())))
    assert len(signers) == 2 and first in signers
    assert recording_store.calls["add_key"] == 2


def test_a_second_request_replaces_the_key_still_waiting(factory, clock, recording_store):
    first = kid_of(factory.issue_token(params()))
    clock.advance(2)
    recording_store.request_rotation(clock())
    clock.advance(1)
    factory.issue_token(params())
    clock.advance(1)
    recording_store.request_rotation(clock())
    clock.advance(1)
    assert kid_of(factory.issue_token(params())) == first
    [_, waiting, third] = _published(recording_store)
    clock.advance(factory.rotation_delay_seconds + 0.01)
    assert kid_of(factory.issue_token(params())) == third != waiting


def test_the_mark_is_read_once_per_cache_period(clock, recording_store, monkeypatch):
    reads = []
    read = recording_store.rotation_requested_at
    monkeypatch.setattr(recording_store, "rotation_requested_at", lambda: reads.append(1) or read())
    factory = TokenFactory(ISSUER, recording_store, DURATION, clock=clock, list_cache_seconds=2)
    for _ in range(10):
        factory.issue_token(params())
    assert len(reads) == 1
    clock.advance(2)
    factory.issue_token(params())
    factory.issue_token(params())
    assert len(reads) == 2


def test_a_mark_that_cannot_be_read_does_not_stop_issuing(factory, clock, recording_store):
    def down():
        raise ServiceUnavailableError("The database is unavailable")

    recording_store.rotation_requested_at = down
    token = factory.issue_token(params())
    assert verify(token, factory.list_public_keys(), check_time=False)["sub"] == JANE


def test_a_rotation_the_store_cannot_take_keeps_the_current_key_and_retries(
    factory, clock, recording_store, monkeypatch
):
    monkeypatch.setattr(token_factory, "RETRY_INTERVAL", 0.0)
    first = kid_of(factory.issue_token(params()))
    clock.advance(1)
    recording_store.request_rotation(clock())
    recording_store.down = True
    clock.advance(1)
    assert kid_of(factory.issue_token(params())) == first
    recording_store.down = False
    assert kid_of(factory.issue_token(params())) == first
    clock.advance(factory.rotation_delay_seconds + 0.01)
    assert kid_of(factory.issue_token(params())) != first
    assert recording_store.calls["add_key"] == 3  # the first, the failed one, the retry


def test_a_rotation_near_expiry_keeps_the_old_key_until_the_new_one_is_due(clock, recording_store):
    factory = TokenFactory(ISSUER, recording_store, DURATION, clock=clock, publish_ahead_seconds=0)
    first = kid_of(factory.issue_token(params()))
    clock.advance(DURATION - 1)
    recording_store.request_rotation(clock())
    clock.advance(0.5)
    factory.issue_token(params())
    [_, second] = _published(recording_store)
    clock.advance(1)  # the first key is past its lifetime, the new one is not due yet
    assert kid_of(factory.issue_token(params())) == first
    clock.advance(factory.rotation_delay_seconds)
    assert kid_of(factory.issue_token(params())) == second
    assert recording_store.calls["add_key"] == 2


# --- the key store is down ---------------------------------------------------------------


def test_issuing_without_a_published_key_fails_with_503(factory, recording_store, monkeypatch):
    monkeypatch.setattr(token_factory, "RETRY_INTERVAL", 0.0)
    recording_store.down = True
    with pytest.raises(ServiceUnavailableError) as info:
        factory.issue_token(params())
    assert info.value.message == "Unable to issue an identity token: the key store is unavailable"
    assert isinstance(info.value.__cause__, ServiceUnavailableError)
    recording_store.down = False
    assert verify(factory.issue_token(params()), factory.list_public_keys())["sub"] == JANE


def test_failed_publication_is_not_retried_by_every_caller(factory, recording_store):
    recording_store.down = True
    for _ in range(5):
        with pytest.raises(ServiceUnavailableError):
            factory.issue_token(params())
    assert recording_store.calls["add_key"] == 1


def test_listing_falls_back_to_the_last_good_list(factory, clock, recording_store):
    kid = kid_of(factory.issue_token(params()))
    factory.list_public_keys()
    recording_store.down = True
    clock.advance(5)
    assert [k["kid"] for k in factory.list_public_keys()] == [kid]
    # Keys that expire during the outage leave the list all the same.
    clock.advance(3 * DURATION)
    assert factory.list_public_keys() == []


def test_listing_with_no_good_list_fails_with_503(factory, recording_store):
    recording_store.down = True
    with pytest.raises(ServiceUnavailableError):
        factory.list_public_keys()


def test_store_down_near_rotation_keeps_issuing_with_the_current_key(clock, recording_store):
    factory = TokenFactory(ISSUER, recording_store, DURATION, clock=clock, publish_ahead_seconds=60)
    first = kid_of(factory.issue_token(params()))
    recording_store.down = True
    clock.advance(DURATION - 30)
    assert kid_of(factory.issue_token(params())) == first


# --- static keys ---------------------------------------------------------------------------


def _write_pair(directory: Path, name: str, private_key) -> dict[str, str]:
    private = directory / f"{name}.key"
    public = directory / f"{name}.pub"
    private.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return {"privateKeyFile": private.name, "publicKeyFile": public.name}


def test_static_issuer_signs_with_the_first_key_and_never_rotates(tmp_path, clock):
    keys = [
        {**_write_pair(tmp_path, "a", ec.generate_private_key(ec.SECP256R1())), "keyId": "a"},
        {
            **_write_pair(tmp_path, "b", rsa.generate_private_key(65537, 2048)),
            "keyId": "b",
            "algorithm": "RS256",
        },
    ]
    config = Config.from_dict(
        {"auth": {"keyStore": {"provider": "static", "static": {"keys": keys}}}}
    )
    store = StaticKeyStore.from_config(config, base_dir=tmp_path)
    issuer = StaticTokenIssuer(ISSUER, store, DURATION, clock=clock)
    token = issuer.issue_token(params())
    assert segments(token)[0] == b'{"typ":"vnd.backstage.user","alg":"ES256","kid":"a"}'
    jwks = issuer.list_public_keys()
    assert [(k["kid"], k["alg"], k["use"]) for k in jwks] == [
        ("a", "ES256", "sig"),
        ("b", "RS256", "sig"),
    ]
    assert verify(token, jwks)["ent"] == [JANE]
    clock.advance(100 * DURATION)
    assert kid_of(issuer.issue_token(params())) == "a"
    assert "uip" in claims_of(token)


# --- auth.backstageTokenExpiration --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, 3600, id="default"),
        pytest.param("2h", 7200, id="hours"),
        pytest.param({"minutes": 5}, 600, id="clamped-up"),
        pytest.param("2 days", 86400, id="clamped-down"),
        pytest.param({"seconds": 900.5}, 901, id="rounded"),
        pytest.param("PT20M", 1200, id="iso"),
    ],
)
def test_read_token_expiration(value, expected):
    auth = {} if value is None else {"backstageTokenExpiration": value}
    assert read_token_expiration(Config.from_dict({"auth": auth})) == expected


def test_read_token_expiration_rejects_garbage():
    with pytest.raises(ConfigError) as info:
        read_token_expiration(Config.from_dict({"auth": {"backstageTokenExpiration": "soon"}}))
    assert info.value.path == "auth.backstageTokenExpiration"
