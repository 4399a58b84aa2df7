"""``/authorize`` and the sign-in page: what is refused, how, and what a pick issues."""

from __future__ import annotations

import pytest

from tests.fake_idp.conftest import ISSUER
from tests.fake_idp.conftest import JANE
from tests.fake_idp.conftest import REDIRECT
from tests.fake_idp.conftest import Browser
from tests.fake_idp.conftest import make_idp
from tests.fake_idp.conftest import new_flow
from tests.fake_idp.conftest import query_of
from wsgiauth.fake_idp.authorize import BANNER


def test_the_page_lists_the_users_and_warns(browser):
    page = browser.page(new_flow())
    assert page.content_type == "text/html"
    assert BANNER in page.text
    buttons = page.html.find_all("button", attrs={"name": "user"})
    assert [b["value"] for b in buttons] == [
        "user:development/guest",
        JANE,
        "user:default/o",
    ]
    assert "Jane Doe" in page.text and "jane@example.com" in page.text
    assert "<b>" not in page.text, "names are escaped"
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "form-action 'self' http://127.0.0.1:7007" in csp
    assert page.headers["Cache-Control"] == "no-store"


def test_picking_a_user_redirects_with_code_state_and_iss(browser):
    flow = new_flow()
    callback = browser.sign_in(flow)
    assert set(callback) == {"code", "state", "iss"}
    assert callback["state"] == flow.state
    assert callback["iss"] == ISSUER


@pytest.mark.parametrize(
    ("override", "message"),
    [
        pytest.param({"client_id": "nobody"}, "Unknown client_id", id="unknown-client"),
        pytest.param({"client_id": None}, "Unknown client_id", id="no-client"),
        pytest.param({"redirect_uri": REDIRECT + "x"}, "not registered", id="redirect-suffix"),
        pytest.param(
            {"redirect_uri": "http://127.0.0.1:7007/CB"}, "not registered", id="redirect-case"
        ),
        pytest.param({"redirect_uri": None}, "not registered", id="no-redirect"),
    ],
)
def test_bad_client_or_redirect_uri_gets_a_page_never_a_redirect(browser, override, message):
    response = browser.app.get("/authorize", new_flow().params(**override), status=400)
    assert "Location" not in response.headers
    assert message in response.text


@pytest.mark.parametrize(
    ("override", "error"),
    [
        pytest.param({"code_challenge": None}, "invalid_request", id="no-pkce"),
        pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="plain-pkce"),
        pytest.param({"code_challenge_method": None}, "invalid_request", id="no-method"),
        pytest.param({"code_challenge": "short"}, "invalid_request", id="bad-challenge"),
        pytest.param({"scope": "profile email"}, "invalid_scope", id="no-openid"),
        pytest.param({"response_type": "token"}, "unsupported_response_type", id="implicit"),
        pytest.param({"response_mode": "fragment"}, "invalid_request", id="fragment"),
        pytest.param({"prompt": "none"}, "login_required", id="prompt-none"),
        pytest.param({"request": "eyJ"}, "request_not_supported", id="request-object"),
    ],
)
def test_bad_requests_go_back_to_the_client_as_errors(browser, override, error):
    flow = new_flow()
    response = browser.app.get("/authorize", flow.params(**override), status=303)
    assert response.location.startswith(REDIRECT + "?")
    query = query_of(response.location)
    assert query["error"] == error
    assert query["state"] == flow.state
    assert query["iss"] == ISSUER
    assert "code" not in query


def test_a_repeated_parameter_is_refused(browser):
    params = list(new_flow().params().items()) + [("scope", "openid")]
    browser.app.get("/authorize", params, status=400)


def test_the_page_is_bound_to_the_browser_it_was_shown_to(idp):
    victim, attacker = Browser(idp), Browser(idp)
    page = attacker.page(new_flow())
    request_id = page.forms[0]["request"].value
    # Without the page's cookie, the request id alone signs no one in.
    victim.app.post("/sign-in", {"request": request_id, "user": JANE}, status=400)
    assert page.forms[0].submit("user", value=JANE, status=303)


def test_a_sign_in_page_is_answered_once(browser):
    page = browser.page(new_flow())
    cookies = dict(browser.app.cookies)
    page.forms[0].submit("user", value=JANE, status=303)
    for name, value in cookies.items():  # even with the page's cookie put back
        browser.app.set_cookie(name, value)
    response = page.forms[0].submit("user", value=JANE, status=400)
    assert "expired or was already used" in response.text


def test_two_pages_in_one_browser_both_work(browser):
    flows = [new_flow(), new_flow()]
    pages = [browser.page(flow) for flow in flows]
    for flow, page in zip(flows, pages, strict=True):
        response = page.forms[0].submit("user", value=JANE, status=303)
        assert query_of(response.location)["state"] == flow.state


def test_an_unknown_user_is_refused(browser):
    page = browser.page(new_flow())
    form = page.forms[0]
    form.fields["user"][0].force_value("user:default/mallory")
    form.submit("user", index=0, status=400)


def test_cancel_sends_access_denied(browser):
    flow = new_flow()
    response = browser.page(flow).forms[0].submit("deny", status=303)
    query = query_of(response.location)
    assert query["error"] == "access_denied"
    assert query["state"] == flow.state


def test_auto_consent_issues_the_code_without_a_page():
    browser = Browser(make_idp(auto_consent=JANE))
    flow = new_flow()
    response = browser.app.get("/authorize", flow.params(prompt="none"), status=303)
    query = query_of(response.location)
    assert set(query) == {"code", "state", "iss"}
    tokens = browser.redeem(flow, query["code"]).json
    assert (
        browser.app.get(
            "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        ).json["sub"]
        == JANE
    )


def test_auto_consent_must_name_a_user():
    with pytest.raises(ValueError, match="not one of the users"):
        make_idp(auto_consent="user:default/nobody")
