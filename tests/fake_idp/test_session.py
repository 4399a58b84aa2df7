"""``/userinfo``, ``/revoke`` and ``/end-session``."""

from __future__ import annotations

import pytest

from tests.fake_idp.conftest import CLIENT_ID
from tests.fake_idp.conftest import PUBLIC_ID
from tests.fake_idp.conftest import SECRET
from tests.fake_idp.conftest import query_of


def userinfo(browser, token: str, status: int = 200):
    return browser.app.get("/userinfo", headers={"Authorization": f"Bearer {token}"}, status=status)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="none"),
        pytest.param("Bearer made-up", id="unknown"),
        pytest.param("Basic eDp5", id="basic"),
    ],
)
def test_userinfo_needs_a_live_access_token(browser, header):
    headers = {"Authorization": header} if header else {}
    response = browser.app.get("/userinfo", headers=headers, status=401)
    assert response.json["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_userinfo_by_post(browser):
    tokens = browser.tokens()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert browser.app.post("/userinfo", headers=headers).json["sub"] == "user:default/jane"


def test_revoking_the_refresh_token_ends_the_grant(browser):
    tokens = browser.tokens()
    response = browser.app.post(
        "/revoke",
        {"token": tokens["refresh_token"], "client_id": CLIENT_ID, "client_secret": SECRET},
    )
    assert response.status_int == 200
    browser.refresh(tokens["refresh_token"], status=400)
    userinfo(browser, tokens["access_token"], status=401)


def test_revoking_an_access_token_ends_it_alone(browser):
    tokens = browser.tokens()
    browser.app.post(
        "/revoke",
        {"token": tokens["access_token"], "client_id": CLIENT_ID, "client_secret": SECRET},
    )
    userinfo(browser, tokens["access_token"], status=401)
    assert browser.refresh(tokens["refresh_token"]).json["access_token"]


def test_a_client_cannot_revoke_another_clients_tokens(browser):
    tokens = browser.tokens()
    browser.app.post("/revoke", {"token": tokens["refresh_token"], "client_id": PUBLIC_ID})
    assert browser.refresh(tokens["refresh_token"]).json["access_token"]


def test_revocation_needs_client_authentication(browser):
    tokens = browser.tokens()
    response = browser.app.post("/revoke", {"token": tokens["refresh_token"]}, status=401)
    assert response.json["error"] == "invalid_client"
    assert browser.refresh(tokens["refresh_token"]).json["access_token"]


def test_end_session_with_a_hint_ends_the_grant_and_redirects(browser):
    tokens = browser.tokens()
    response = browser.app.get(
        "/end-session",
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "http://127.0.0.1:7007/",
            "state": "s1",
        },
        status=303,
    )
    assert response.location == "http://127.0.0.1:7007/?state=s1"
    assert query_of(response.location) == {"state": "s1"}
    browser.refresh(tokens["refresh_token"], status=400)


def test_end_session_without_a_redirect_shows_a_page(browser):
    tokens = browser.tokens()
    response = browser.app.get("/end-session", {"id_token_hint": tokens["id_token"]})
    assert "Signed out" in response.text
    userinfo(browser, tokens["access_token"], status=401)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"post_logout_redirect_uri": "https://evil.example/"}, id="unregistered"),
        pytest.param(
            {"post_logout_redirect_uri": "http://127.0.0.1:7007/", "use_hint": ""}, id="no-client"
        ),
        pytest.param({"client_id": PUBLIC_ID}, id="hint-of-another-client"),
        pytest.param({"forged": ""}, id="forged-hint"),
    ],
)
def test_end_session_refusals(browser, params):
    tokens = browser.tokens()
    params = dict(params)
    query = {"id_token_hint": tokens["id_token"]}
    if "use_hint" in params:
        params.pop("use_hint")
        query = {}
    forged = params.pop("forged", None) is not None
    if forged:
        header, payload, signature = tokens["id_token"].split(".")
        query["id_token_hint"] = f"{header}.{payload}.{signature[::-1]}"
    response = browser.app.get("/end-session", {**query, **params}, status=400)
    assert "Location" not in response.headers
    # Nothing was ended by a refused request (except a genuine hint's own grant).
    if not query or forged:
        assert browser.refresh(tokens["refresh_token"]).json["access_token"]
