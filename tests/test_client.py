"""The browser client route: ``<base>/.client/wsgiauth.js``, served with an ETag."""

from __future__ import annotations

import re

import pytest

from tests.conftest import base_config
from tests.conftest import make_testapp
from wsgiauth.client import CLIENT_PATH

SCRIPT = "/api/auth" + CLIENT_PATH


@pytest.fixture
def testapp():
    return make_testapp(base_config())


def test_script_is_served_as_javascript_with_an_etag(testapp):
    response = testapp.get(SCRIPT)
    assert response.content_type == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["ETag"])
    assert b"WsgiAuth" in response.body


def test_script_revalidates_with_its_etag(testapp):
    first = testapp.get(SCRIPT)
    etag = first.headers["ETag"]
    again = testapp.get(SCRIPT, headers={"If-None-Match": etag}, status=304)
    assert again.body == b""
    assert again.headers["ETag"] == etag
    assert "Content-Type" not in again.headers
    assert testapp.head(SCRIPT, headers={"If-None-Match": etag}, status=304).body == b""
    other = testapp.get(SCRIPT, headers={"If-None-Match": '"x"'})
    assert other.status_int == 200
    assert other.body == first.body
