"""Cookie sealing with ``auth.session.secret``: round trip, rotation, tampering, expiry."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import Fernet

from wsgiauth.sealing import CookieSealer
from wsgiauth.sealing import _fernet_key


def test_round_trip() -> None:
    sealer = CookieSealer(["secret-a"])
    value = "refresh-token-é-☃"

    sealed = sealer.seal(value)

    assert sealer.enabled
    assert value not in sealed
    assert sealed.isascii()
    assert sealer.unseal(sealed) == value


def test_each_seal_is_fresh() -> None:
    sealer = CookieSealer(["secret-a"])

    assert sealer.seal("v") != sealer.seal("v")


def test_off_without_secrets() -> None:
    sealer = CookieSealer()

    assert not sealer.enabled
    assert sealer.seal("plain") == "plain"
    assert sealer.unseal("plain") == "plain"
    assert sealer.unseal("plain", max_age=1) == "plain"


def test_old_secret_still_unseals_after_rotation() -> None:
    sealed = CookieSealer(["a"]).seal("token")

    assert CookieSealer(["b", "a"]).unseal(sealed) == "token"


def test_first_secret_seals() -> None:
    sealed = CookieSealer(["b", "a"]).seal("token")

    assert CookieSealer(["b"]).unseal(sealed) == "token"
    assert CookieSealer(["a"]).unseal(sealed) is None


def test_unknown_secret_does_not_unseal() -> None:
    sealed = CookieSealer(["a"]).seal("token")

    assert CookieSealer(["b"]).unseal(sealed) is None


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda s: s[:-10] + ("A" if s[-10] != "A" else "B") + s[-9:], id="flip-mac"),
        pytest.param(lambda s: s[:30] + ("A" if s[30] != "A" else "B") + s[31:], id="flip-body"),
        pytest.param(lambda s: s[:-4], id="truncated"),
        pytest.param(lambda s: s.rstrip("=") + "AAAA", id="extended"),
        pytest.param(lambda s: "", id="empty"),
        pytest.param(lambda s: "not a token", id="garbage"),
        pytest.param(lambda s: s[:10] + "é" + s[10:], id="non-ascii"),
    ],
)
def test_tampered_value_does_not_unseal(tamper) -> None:
    sealer = CookieSealer(["a"])
    sealed = sealer.seal("token")

    assert sealer.unseal(tamper(sealed)) is None


def test_secret_is_not_the_raw_fernet_key() -> None:
    # A 32-byte url-safe secret must still be derived, not used as the key as is.
    raw = Fernet.generate_key().decode()
    sealed = Fernet(raw.encode()).encrypt(b"token").decode()

    assert CookieSealer([raw]).unseal(sealed) is None


def test_max_age_expires_old_seals() -> None:
    sealer = CookieSealer(["a"])
    fernet = Fernet(_fernet_key("a"))
    now = int(time.time())
    old = fernet.encrypt_at_time(b"token", now - 601).decode()
    fresh = fernet.encrypt_at_time(b"token", now - 500).decode()

    assert sealer.unseal(old) == "token"  # no max_age: refresh tokens live as long as the cookie
    assert sealer.unseal(old, max_age=600) is None
    assert sealer.unseal(fresh, max_age=600) == "token"


def test_invalid_utf8_inside_a_valid_seal_does_not_unseal() -> None:
    sealed = Fernet(_fernet_key("a")).encrypt(b"\xff\xfe").decode()

    assert CookieSealer(["a"]).unseal(sealed) is None
