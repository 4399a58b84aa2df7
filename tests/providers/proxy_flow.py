"""What the proxy providers' tests share: their refusals of ``/refresh``, and their EC keys.

A proxy provider (``awsalb``, ``gcpIap``, ``azureEasyAuth``, ``oauth2Proxy``, ``cfaccess``)
signs in on ``/refresh`` from headers its proxy sets; a request it will not trust is a 401
``AuthenticationError`` in Backstage's JSON error body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec


def ec_key_fixture() -> Any:
    """A module-scoped fixture: a fresh P-256 key (``key = ec_key_fixture()``)."""

    @pytest.fixture(scope="module")
    def fixture() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    return fixture


def assert_refused(response: Any, message: str) -> None:
    """A 401 ``AuthenticationError`` whose message holds ``message``."""
    body = response.json
    assert body["error"]["name"] == "AuthenticationError"
    assert message in body["error"]["message"], body["error"]["message"]
    assert body["response"] == {"statusCode": 401}


def refusal_of(refresh_url: str) -> Callable[[Any, str], None]:
    """A check that a ``GET refresh_url`` answer is exactly the 401 body with ``message``."""

    def refusal(response: Any, message: str) -> None:
        assert response.json == {
            "error": {"name": "AuthenticationError", "message": message},
            "request": {"method": "GET", "url": refresh_url},
            "response": {"statusCode": 401},
        }

    return refusal
