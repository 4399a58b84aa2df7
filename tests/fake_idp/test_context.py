"""The shared context: its checks, the form reader and the two answer shapes."""

from __future__ import annotations

import pytest
from webob import Request

from wsgiauth.fake_idp.context import IdpContext
from wsgiauth.fake_idp.context import OAuthError
from wsgiauth.fake_idp.context import form_of
from wsgiauth.fake_idp.context import json_response
from wsgiauth.fake_idp.registry import FakeClient
from wsgiauth.fake_idp.registry import FakeUser

JANE = FakeUser(ref="user:default/jane", name="jane")
CLIENT = FakeClient(client_id="c", redirect_uris=("http://a/cb",))


@pytest.mark.parametrize(
    ("users", "clients", "auto", "message"),
    [
        pytest.param([JANE, JANE], [CLIENT], None, "same entity ref", id="two-users"),
        pytest.param([JANE], [CLIENT, CLIENT], None, "same client_id", id="two-clients"),
        pytest.param([JANE], [], None, "at least one client", id="no-client"),
        pytest.param([JANE], [CLIENT], "user:default/x", "not one of", id="auto-consent"),
    ],
)
def test_create_checks(users, clients, auto, message):
    with pytest.raises(ValueError, match=message):
        IdpContext.create("http://i", users, clients, auto_consent=auto)


def test_the_issuer_loses_its_trailing_slash():
    assert IdpContext.create("http://i/", [JANE], [CLIENT]).issuer == "http://i"


def test_form_of():
    request = Request.blank("/", method="POST", body=b"a=1&b=&c=%C3%A9")
    assert form_of(request) == {"a": "1", "b": "", "c": "é"}
    with pytest.raises(OAuthError, match="repeated"):
        form_of(Request.blank("/", method="POST", body=b"a=1&a=2"))
    with pytest.raises(OAuthError, match="UTF-8"):
        form_of(Request.blank("/", method="POST", body=b"a=%ff\xff"))


def test_answers_are_never_cached():
    response = json_response({"a": 1})
    assert response.headers["Cache-Control"] == "no-store"
    assert response.content_type == "application/json"
    error = OAuthError("invalid_grant", "no", 400)
    error.headers["WWW-Authenticate"] = "Basic"
    answer = error.response()
    assert answer.status_int == 400
    assert answer.json == {"error": "invalid_grant", "error_description": "no"}
    assert answer.headers["WWW-Authenticate"] == "Basic"
