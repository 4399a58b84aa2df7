"""Fixtures for provider tests: RSA signing keys made once per session, and stubbed HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import rsa


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    """The identity provider's signing key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_rsa_key() -> rsa.RSAPrivateKey:
    """A key the identity provider does not publish (forged signatures)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """Outbound HTTP stubbed; a request nobody stubbed fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
