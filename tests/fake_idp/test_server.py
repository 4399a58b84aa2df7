"""Serving the fake IdP from a thread: the issuer is the bound port."""

from __future__ import annotations

import pytest
import requests

from tests.fake_idp.conftest import CATALOG
from wsgiauth.fake_idp import FakeClient
from wsgiauth.fake_idp import running_fake_idp
from wsgiauth.fake_idp import users_from_catalog
from wsgiauth.fake_idp.server import is_loopback

CLIENT = FakeClient(client_id="c", redirect_uris=("http://127.0.0.1:9/cb",))


def test_running_fake_idp_serves_until_the_block_ends():
    with running_fake_idp(users_from_catalog(CATALOG), [CLIENT]) as idp:
        assert idp.issuer.startswith("http://127.0.0.1:")
        document = requests.get(idp.metadata_url, timeout=10).json()
        assert document["issuer"] == idp.issuer
        assert document["token_endpoint"] == f"{idp.issuer}/token"
    with pytest.raises(requests.ConnectionError):
        requests.get(idp.metadata_url, timeout=10)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),  # noqa: S104
        ("192.168.1.2", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected
