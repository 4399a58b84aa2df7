"""Bad input: forged postMessages, provider text with markup, and the callback page's CSP.

A sign-in is resolved only by a message from the popup the client opened, from
the backend's origin, of type ``authorization_response``. Each test below
starts a real sign-in, has an attacker post forged results (a forged error and
a forged session for mallory, see ``pages.FORGED_MESSAGES``), checks that they
arrived and changed nothing, then finishes the real login and checks that it is
jane who is signed in.

The callback page embeds the provider's error text, encoded, in a script pinned
by a CSP hash: markup in that text is shown as text, and markup injected into
the page cannot run.
"""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest

from tests.e2e.browser.conftest import Frontend
from tests.e2e.browser.conftest import idp_login
from tests.e2e.browser.conftest import user_of
from tests.e2e.browser.conftest import wait_closed
from tests.e2e.browser.pages import FORGED_MESSAGES

pytestmark = pytest.mark.e2e

JANE = "user:default/jane"
POST_TO_OPENER = "messages => messages.forEach((m) => window.opener.postMessage(m, '*'))"
#: Right window, right origin, wrong shape: each must be ignored.
WRONG_SHAPES = [
    "authorization_response",
    None,
    42,
    [FORGED_MESSAGES[1]],
    {**FORGED_MESSAGES[1], "type": "AUTHORIZATION_RESPONSE"},
    {**FORGED_MESSAGES[1], "type": "authorization_result"},
    {"response": FORGED_MESSAGES[1]["response"]},
]


def navigate(page, url: str) -> None:
    """Navigate from inside the page, which (unlike ``page.goto``) keeps ``window.opener``."""
    with page.expect_navigation(wait_until="commit"):
        page.evaluate("url => location.assign(url)", url)


def callback_with_error(frontend: Frontend, context, env, params: dict[str, str]):
    """Start a real sign-in; send its popup to the callback with ``params`` and its state.

    The state (and the nonce cookie behind it) come from a real ``start``, and ``iss``
    names the real provider (RFC 9207: it promises ``iss`` on every response, errors
    included), so the callback gets past its checks and reports the provider's error.
    """
    authorize: list[str] = []
    context.on(
        "request",
        lambda r: authorize.append(r.url) if urlsplit(r.url).path == "/auth" else None,
    )
    popup = frontend.start_popup("signin")
    popup.wait_for_load_state("domcontentloaded")
    (url,) = authorize
    state = parse_qs(urlsplit(url).query)["state"][0]
    query = urlencode({"state": state, **params, "iss": env.idp.issuer})
    navigate(popup, f"{env.callback}?{query}")
    return popup


def wait_for_messages(frontend: Frontend, origin: str, count: int) -> None:
    """Wait until ``count`` messages from ``origin`` (not from the page itself) arrived."""
    frontend.page.wait_for_function(
        "([origin, count]) => t.messages.filter((m) => m.origin === origin).length >= count",
        arg=[origin, count],
    )


def assert_untouched(frontend: Frontend) -> None:
    assert frontend.state("signin") == {"state": "pending"}
    assert frontend.session() is None
    assert frontend.page.evaluate("t.changes") == []
    assert frontend.text("#error") == ""


def finish_as_jane(frontend: Frontend, popup) -> None:
    idp_login(popup, frontend.env, "jane")
    outcome = frontend.outcome("signin")
    assert outcome["state"] == "resolved", outcome
    assert user_of(outcome["value"]) == JANE
    assert frontend.page.evaluate("t.changes") == [f"oidc:{JANE}"]


def test_forged_messages_from_the_page_itself_are_ignored(frontend, browser_env):
    # Same origin as the backend, but not the popup: only the source check stops these.
    frontend.open()
    popup = frontend.start_popup("signin")
    frontend.page.evaluate("t.postToSelf()")
    wait_for_messages(frontend, browser_env.backend, len(FORGED_MESSAGES))
    assert_untouched(frontend)
    finish_as_jane(frontend, popup)


def test_forged_messages_from_a_frame_on_another_origin_are_ignored(frontend, browser_env):
    frontend.open()
    popup = frontend.start_popup("signin")
    frontend.page.evaluate("url => t.embed(url)", f"{browser_env.other}/hostile-frame")
    wait_for_messages(frontend, browser_env.other, len(FORGED_MESSAGES))
    assert_untouched(frontend)
    finish_as_jane(frontend, popup)


def test_forged_messages_from_a_hostile_opener_are_ignored(context, browser_env):
    # The attacker's page (another origin) opens the app, which then signs in.
    hostile = context.new_page()
    hostile.goto(f"{browser_env.other}/hostile")
    with hostile.expect_popup() as opened:
        hostile.evaluate("url => hostile.open(url)", f"{browser_env.backend}/")
    frontend = Frontend(opened.value, browser_env)
    frontend.page.wait_for_url(f"{browser_env.backend}/")
    frontend.wait("restore")
    popup = frontend.start_popup("signin")

    hostile.evaluate("hostile.blast()")
    wait_for_messages(frontend, browser_env.other, len(FORGED_MESSAGES))
    assert_untouched(frontend)
    finish_as_jane(frontend, popup)


def test_forged_messages_from_the_popup_on_another_origin_are_ignored(frontend, browser_env):
    # The right window, but while it shows the IdP: only the origin check stops these.
    frontend.open()
    popup = frontend.start_popup("signin")
    popup.wait_for_load_state("domcontentloaded")
    assert popup.url.startswith(browser_env.idp.issuer)
    popup.evaluate(POST_TO_OPENER, FORGED_MESSAGES)
    wait_for_messages(frontend, browser_env.idp.issuer, len(FORGED_MESSAGES))
    assert_untouched(frontend)
    finish_as_jane(frontend, popup)


def test_messages_of_another_shape_from_the_popup_on_the_backend_origin_are_ignored(
    frontend, context, browser_env
):
    frontend.open()
    starts: list[str] = []
    context.on("request", lambda r: starts.append(r.url) if "/oidc/start" in r.url else None)
    popup = frontend.start_popup("signin")
    popup.wait_for_load_state("domcontentloaded")
    # The popup, on the backend's origin (any page there), posts odd shapes.
    navigate(popup, f"{browser_env.backend}/hostile-frame")
    popup.evaluate(POST_TO_OPENER, WRONG_SHAPES)
    wait_for_messages(frontend, browser_env.backend, len(WRONG_SHAPES))
    assert_untouched(frontend)
    # Back to the login, in the same popup window.
    navigate(popup, starts[0])
    finish_as_jane(frontend, popup)


#: Provider-supplied text that would run script if it were pasted into HTML or JS.
PAYLOAD = (
    "</script><script>window.pwned=1</script>"
    """'";window.pwned=2;//<img src=x onerror="window.pwned=3">"""
)


@pytest.mark.parametrize(
    "params, message",
    [
        pytest.param(
            {"error": "access_denied", "error_description": PAYLOAD},
            f"Authentication rejected, {PAYLOAD}",
            id="error_description",
        ),
        pytest.param({"error": PAYLOAD}, f"Authentication rejected, {PAYLOAD}", id="error"),
    ],
)
def test_provider_error_text_is_shown_as_text_and_never_run(
    frontend, context, console, browser_env, params, message
):
    frontend.open()
    popup = callback_with_error(frontend, context, browser_env, params)
    outcome = frontend.outcome("signin")
    wait_closed(popup)

    assert outcome["state"] == "rejected"
    assert (outcome["name"], outcome["message"]) == ("AuthenticationError", message)
    assert frontend.text("#error") == f"AuthenticationError: {message}"
    assert frontend.page.evaluate("window.pwned") is None
    assert frontend.page.locator("#error script, #error img").count() == 0
    assert console.texts("PWNED") == []


INJECTED = (
    "<script>window.pwned='inline'; window.opener.pwned='inline';</script>"
    '<img src="x" onerror="window.opener.pwned=\'handler\'">'
    "<script src=\"data:text/javascript,window.opener.pwned='src'\"></script>"
)


def test_callback_page_csp_blocks_any_other_script(frontend, context, console, browser_env):
    seen = []

    # Markup injected into the callback page, as a flaw in it would let through.
    def inject(route):
        response = route.fetch()
        seen.append(response.headers)
        route.fulfill(response=response, body=response.text() + INJECTED)

    context.route(lambda url: url.startswith(browser_env.callback), inject)
    frontend.open()
    popup = callback_with_error(frontend, context, browser_env, {"error": "access_denied"})
    outcome = frontend.outcome("signin")
    wait_closed(popup)

    # The page's own script (pinned by its hash) still delivered the result...
    assert outcome["state"] == "rejected", outcome
    assert outcome["message"] == "Authentication rejected, access_denied"
    (headers,) = seen
    assert headers["content-security-policy"].startswith("script-src 'sha256-")
    assert headers["x-frame-options"].lower() == "sameorigin"
    # ...and nothing else ran: the browser reported each blocked script.
    assert console.texts("PWNED") == []
    assert frontend.page.evaluate("window.pwned") is None
    violations = [
        text
        for url, _, text in console.entries
        if url.startswith(browser_env.callback) and text.startswith("CSP-VIOLATION script-src")
    ]
    assert len(violations) >= 3, console.entries
