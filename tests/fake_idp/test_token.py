"""``/token``: client authentication, code + PKCE, refresh rotation, and the ID token."""

from __future__ import annotations

import base64
import hashlib

import jwt
import pytest

from tests.fake_idp.conftest import CLIENT_ID
from tests.fake_idp.conftest import ISSUER
from tests.fake_idp.conftest import JANE
from tests.fake_idp.conftest import PUBLIC_ID
from tests.fake_idp.conftest import PUBLIC_REDIRECT
from tests.fake_idp.conftest import SECRET
from tests.fake_idp.conftest import Browser
from tests.fake_idp.conftest import make_idp
from tests.fake_idp.conftest import new_flow
from tests.fake_idp.conftest import pkce
from wsgiauth.fake_idp import FakeClient
from wsgiauth.fake_idp import FakeIdp
from wsgiauth.fake_idp.grants import GrantStore


def claims_of(idp, id_token: str, audience: str = CLIENT_ID) -> dict:
    jwks = jwt.PyJWKSet.from_dict(idp.context.keys.jwks())
    kid = jwt.get_unverified_header(id_token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    return jwt.decode(id_token, key, algorithms=[key.algorithm_name], audience=audience)


def bearer(browser, access_token: str, status: int = 200):
    headers = {"Authorization": f"Bearer {access_token}"}
    return browser.app.get("/userinfo", headers=headers, status=status)


def test_code_flow_issues_tokens_and_an_id_token(idp, browser):
    flow = new_flow()
    response = browser.redeem(flow, browser.code(flow))
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "openid profile email"
    claims = claims_of(idp, body["id_token"])
    assert jwt.get_unverified_header(body["id_token"])["alg"] == "RS256"
    assert claims["iss"] == ISSUER
    assert claims["sub"] == JANE
    assert claims["aud"] == CLIENT_ID
    assert claims["azp"] == CLIENT_ID
    assert claims["nonce"] == flow.nonce
    assert claims["email"] == "jane@example.com"
    assert claims["name"] == "Jane Doe"
    assert claims["exp"] - claims["iat"] == 3600
    assert isinstance(claims["sid"], str)
    assert bearer(browser, body["access_token"]).json == {
        "sub": JANE,
        "preferred_username": "jane",
        "name": "Jane Doe",
        "email": "jane@example.com",
        "email_verified": True,
    }


def test_a_public_client_gets_es256_id_tokens(idp, browser):
    flow = new_flow(client_id=PUBLIC_ID, redirect_uri=PUBLIC_REDIRECT)
    body = browser.redeem(flow, browser.code(flow)).json
    assert jwt.get_unverified_header(body["id_token"])["alg"] == "ES256"
    assert claims_of(idp, body["id_token"], PUBLIC_ID)["sub"] == JANE


@pytest.mark.parametrize(
    ("override", "description"),
    [
        pytest.param({"code_verifier": None}, "code_verifier", id="no-verifier"),
        pytest.param({"code_verifier": "x" * 43}, "does not match", id="wrong-verifier"),
        pytest.param({"code_verifier": "short"}, "code_verifier", id="short-verifier"),
        pytest.param({"redirect_uri": "http://127.0.0.1:7007/other"}, "redirect_uri", id="uri"),
        pytest.param({"redirect_uri": None}, "redirect_uri", id="no-redirect-uri"),
    ],
)
def test_a_code_is_checked(browser, override, description):
    flow = new_flow()
    code = browser.code(flow)
    response = browser.redeem(flow, code, status=400, **override)
    assert response.json["error"] == "invalid_grant"
    assert description in response.json["error_description"]
    assert response.headers["Cache-Control"] == "no-store"
    # A failed attempt burns the code: the right verifier cannot use it afterwards.
    browser.redeem(flow, code, status=400)


def test_a_verifier_outside_rfc7636_is_refused_even_when_it_hashes_right(browser):
    """43 to 128 unreserved characters: a short, guessable verifier is refused."""
    verifier = "short"
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    flow = new_flow()
    flow.verifier, flow.challenge = verifier, challenge
    response = browser.redeem(flow, browser.code(flow), status=400)
    assert "RFC 7636" in response.json["error_description"]


def test_an_unknown_code_is_refused(browser):
    response = browser.redeem(new_flow(), "made-up", status=400)
    assert "unknown" in response.json["error_description"]


def test_the_challenge_of_another_flow_does_not_fit(browser):
    flow, other = new_flow(), new_flow()
    code = browser.code(flow)
    browser.redeem(flow, code, status=400, code_verifier=other.verifier)


def test_a_code_is_used_once_and_a_replay_revokes_its_tokens(browser):
    flow = new_flow()
    code = browser.code(flow)
    tokens = browser.redeem(flow, code).json
    assert browser.redeem(flow, code, status=400).json["error"] == "invalid_grant"
    bearer(browser, tokens["access_token"], status=401)
    browser.refresh(tokens["refresh_token"], status=400)


def test_a_code_expires():
    now = [1_000_000.0]
    browser = Browser(make_idp(store=GrantStore(clock=lambda: now[0])))
    flow, late = new_flow(), new_flow()
    code, late_code = browser.code(flow), browser.code(late)
    now[0] += 59
    browser.redeem(flow, code)
    now[0] += 2
    browser.redeem(late, late_code, status=400)


def test_a_code_of_another_client_is_refused(browser):
    flow = new_flow()
    code = browser.code(flow)
    public = new_flow(client_id=PUBLIC_ID, redirect_uri=PUBLIC_REDIRECT)
    response = browser.redeem(
        public, code, status=400, redirect_uri=flow.redirect_uri, code_verifier=flow.verifier
    )
    assert "another client" in response.json["error_description"]


# --- client authentication ---------------------------------------------------------------


def test_client_secret_post_works(browser):
    flow = new_flow()
    form = {
        "grant_type": "authorization_code",
        "code": browser.code(flow),
        "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }
    assert "id_token" in browser.token(**form).json


def test_basic_credentials_are_form_decoded():
    base = make_idp()
    client = FakeClient(client_id="a b:c", client_secret="s&e:t", redirect_uris=(PUBLIC_REDIRECT,))
    idp = FakeIdp(ISSUER, list(base.context.users.values()), [client])
    browser = Browser(idp)
    flow = new_flow(client_id="a b:c", redirect_uri=PUBLIC_REDIRECT)
    code = browser.code(flow)
    form = {"grant_type": "authorization_code", "code": code}
    form.update(redirect_uri=flow.redirect_uri, code_verifier=flow.verifier)
    browser.token(auth=("a+b%3Ac", "s%26e%3At"), **form)


@pytest.mark.parametrize(
    ("auth", "form", "basic"),
    [
        pytest.param((CLIENT_ID, "wrong"), {}, True, id="wrong-basic-secret"),
        pytest.param(None, {"client_id": CLIENT_ID, "client_secret": "wrong"}, False, id="post"),
        pytest.param(None, {"client_id": CLIENT_ID}, False, id="no-secret"),
        pytest.param(None, {}, False, id="no-client"),
        pytest.param(("nobody", SECRET), {}, True, id="unknown-client"),
        pytest.param((CLIENT_ID, SECRET), {"client_secret": SECRET}, True, id="two-methods"),
        pytest.param((CLIENT_ID, SECRET), {"client_id": PUBLIC_ID}, True, id="two-ids"),
        pytest.param(
            None, {"client_id": PUBLIC_ID, "client_secret": "x"}, False, id="public-secret"
        ),
    ],
)
def test_a_client_must_authenticate(browser, auth, form, basic):
    flow = new_flow()
    code = browser.code(flow)
    response = browser.token(
        401,
        auth=auth,
        grant_type="authorization_code",
        code=code,
        redirect_uri=flow.redirect_uri,
        code_verifier=flow.verifier,
        **form,
    )
    assert response.json["error"] == "invalid_client"
    assert ("WWW-Authenticate" in response.headers) == basic


def test_malformed_basic_credentials(browser):
    for header in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer x"):
        response = browser.app.post(
            "/token", {"grant_type": "refresh_token"}, headers={"Authorization": header}, status=401
        )
        assert response.json["error"] == "invalid_client"


def test_unknown_grant_type(browser):
    response = browser.token(400, auth=(CLIENT_ID, SECRET), grant_type="password")
    assert response.json["error"] == "unsupported_grant_type"


def test_a_repeated_parameter_is_refused(browser):
    body = "grant_type=refresh_token&grant_type=authorization_code&client_id=spa"
    response = browser.app.post(
        "/token", body, content_type="application/x-www-form-urlencoded", status=400
    )
    assert "repeated" in response.json["error_description"]


# --- refresh ------------------------------------------------------------------------------


def test_refresh_rotates_and_returns_a_new_id_token(idp, browser):
    first = browser.tokens()
    second = browser.refresh(first["refresh_token"]).json
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    claims = claims_of(idp, second["id_token"])
    assert claims["sub"] == JANE
    assert "nonce" not in claims
    assert claims["sid"] == claims_of(idp, first["id_token"])["sid"]
    third = browser.refresh(second["refresh_token"]).json
    assert bearer(browser, third["access_token"]).json["sub"] == JANE


def test_reusing_a_rotated_refresh_token_revokes_the_grant(browser):
    first = browser.tokens()
    second = browser.refresh(first["refresh_token"]).json
    replay = browser.refresh(first["refresh_token"], status=400).json
    assert replay["error"] == "invalid_grant"
    # The thief's replay ends the legitimate holder's tokens too.
    browser.refresh(second["refresh_token"], status=400)
    bearer(browser, second["access_token"], status=401)


def test_other_grants_survive_a_revocation(browser):
    mine, theirs = browser.tokens(), browser.tokens()
    browser.refresh(mine["refresh_token"])
    browser.refresh(mine["refresh_token"], status=400)
    assert browser.refresh(theirs["refresh_token"]).json["refresh_token"]


def test_a_refresh_token_of_another_client_is_refused_and_not_spent(browser):
    tokens = browser.tokens()
    response = browser.token(
        400, grant_type="refresh_token", refresh_token=tokens["refresh_token"], client_id=PUBLIC_ID
    )
    assert "another client" in response.json["error_description"]
    browser.refresh(tokens["refresh_token"])


def test_a_refresh_may_narrow_scopes_but_never_widen_them(idp, browser):
    tokens = browser.tokens()
    narrowed = browser.refresh(tokens["refresh_token"], scope="openid email").json
    assert narrowed["scope"] == "openid email"
    assert "name" not in bearer(browser, narrowed["access_token"]).json
    widened = browser.refresh(narrowed["refresh_token"], status=400, scope="openid offline_access")
    assert widened.json["error"] == "invalid_scope"


def test_pkce_helper_makes_a_valid_pair():
    verifier, challenge = pkce()
    assert 43 <= len(verifier) <= 128
    assert len(challenge) == 43
