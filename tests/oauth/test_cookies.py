"""OAuth cookies on the wire: names, paths, flags, encoding, chunks and flow cookies (spec §3)."""

from __future__ import annotations

import hashlib
import string
import time
from dataclasses import replace
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from webob import Request
from webob import Response

from wsgiauth.oauth.cookies import CHUNK_SIZE
from wsgiauth.oauth.cookies import DEFAULT_SESSION_MAX_AGE
from wsgiauth.oauth.cookies import MAX_FLOWS
from wsgiauth.oauth.cookies import FlowCookie
from wsgiauth.oauth.cookies import OAuthCookieManager
from wsgiauth.oauth.cookies import _quote
from wsgiauth.oauth.cookies import default_cookie_configurer
from wsgiauth.oauth.cookies import flow_id
from wsgiauth.sealing import CookieSealer
from wsgiauth.sealing import _fernet_key
from wsgiauth.types import CookieSettings

BASE_URL = "http://localhost:7007/api/auth"
CALLBACK = f"{BASE_URL}/google/handler/frame"
APP = "http://localhost:3000"


def make_manager(
    sealer: CookieSealer | None = None, callback_url: str = CALLBACK, **kwargs
) -> OAuthCookieManager:
    return OAuthCookieManager(
        provider_id="google",
        base_url=BASE_URL,
        callback_url=callback_url,
        default_app_origin=APP,
        sealer=sealer or CookieSealer(),
        **kwargs,
    )


def parse(header: str) -> tuple[str, str, dict[str, str]]:
    """``name, value, {attribute (lowercased): value}`` of one Set-Cookie header."""
    pair, *attributes = header.split("; ")
    name, _, value = pair.partition("=")
    attrs = {}
    for attribute in attributes:
        key, _, attr_value = attribute.partition("=")
        attrs[key.lower()] = attr_value
    return name, value, attrs


def written(response: Response) -> list[tuple[str, str, dict[str, str]]]:
    return [parse(header) for header in response.headers.getall("Set-Cookie")]


def by_name(response: Response) -> dict[str, tuple[str, dict[str, str]]]:
    return {name: (value, attrs) for name, value, attrs in written(response)}


def request_with(cookies: dict[str, str]) -> Request:
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return Request.blank("/", headers={"Cookie": header} if header else {})


def echo(response: Response, request: Request | None = None) -> Request:
    """The next request a browser would send: old cookies updated by ``response``."""
    jar = dict(request.cookies) if request is not None else {}
    for name, value, attrs in written(response):
        if attrs.get("max-age") == "0":
            jar.pop(name, None)
        else:
            jar[name] = value
    return request_with(jar)


# -- default cookie configurer ----------------------------------------------------------


@pytest.mark.parametrize(
    ("callback_url", "app_origin", "expected"),
    [
        pytest.param(
            "http://localhost:7007/api/auth/google/handler/frame",
            "http://localhost:3000",
            CookieSettings(path="/api/auth/google", secure=False, same_site="lax"),
            id="default-local",
        ),
        pytest.param(
            "https://auth.example.com/api/auth/google/handler/frame",
            "https://app.example.com",
            CookieSettings(path="/api/auth/google", secure=True, same_site="none"),
            id="https-cross-host",
        ),
        pytest.param(
            "https://example.com:7007/api/auth/google/handler/frame",
            "https://example.com:3000",
            CookieSettings(path="/api/auth/google", secure=True, same_site="lax"),
            id="https-ports-ignored",
        ),
        pytest.param(
            "https://Example.COM/api/auth/google/handler/frame",
            "https://example.com",
            CookieSettings(path="/api/auth/google", secure=True, same_site="lax"),
            id="hostname-case-ignored",
        ),
        pytest.param(
            "http://auth.example.com/api/auth/google/handler/frame",
            "http://app.example.com",
            CookieSettings(path="/api/auth/google", secure=False, same_site="lax"),
            id="http-cross-host-stays-lax",
        ),
        pytest.param(
            "https://auth.example.com/custom/cb",
            "https://auth.example.com",
            CookieSettings(path="/custom/cb/google", secure=True, same_site="lax"),
            id="custom-path",
        ),
        pytest.param(
            "https://auth.example.com/custom/cb/",
            "https://auth.example.com",
            CookieSettings(path="/custom/cb/google", secure=True, same_site="lax"),
            id="custom-path-trailing-slash",
        ),
        pytest.param(
            "http://localhost:7007/api/auth/github/handler/frame",
            "http://localhost:3000",
            CookieSettings(path="/api/auth/github/handler/frame/google", secure=False),
            id="other-provider-callback",
        ),
        pytest.param(
            "http://localhost:7007/base/google/handler/frame?x=1",
            "http://localhost:3000",
            CookieSettings(path="/base/google", secure=False),
            id="query-ignored",
        ),
    ],
)
def test_default_cookie_configurer(
    callback_url: str, app_origin: str, expected: CookieSettings
) -> None:
    settings = default_cookie_configurer("google", BASE_URL, callback_url, app_origin)

    assert settings == expected
    assert settings.domain is None


# -- nonce ------------------------------------------------------------------------------


def test_nonce_cookie_on_the_wire() -> None:
    response = Response()

    make_manager().set_nonce(response, "q1+/w==", None)

    [(name, value, attrs)] = written(response)
    assert name == "google-nonce"
    assert value == "q1%2B%2Fw%3D%3D"
    assert attrs["path"] == "/api/auth/google/handler"
    assert attrs["max-age"] == "600"
    assert "httponly" in attrs
    assert attrs["samesite"].lower() == "lax"
    assert "secure" not in attrs
    assert "domain" not in attrs
    assert "expires" in attrs


def test_nonce_cookie_cross_site_https() -> None:
    manager = make_manager(callback_url="https://auth.example.com/api/auth/google/handler/frame")
    response = Response()

    manager.set_nonce(response, "n", "https://app.example.com")

    [(_, _, attrs)] = written(response)
    assert "secure" in attrs
    assert attrs["samesite"].lower() == "none"
    assert attrs["path"] == "/api/auth/google/handler"


def test_nonce_same_site_follows_the_request_origin() -> None:
    manager = make_manager(callback_url="https://auth.example.com/api/auth/google/handler/frame")
    response = Response()

    manager.set_nonce(response, "n", "https://auth.example.com")

    [(_, _, attrs)] = written(response)
    assert attrs["samesite"].lower() == "lax"


def test_nonce_reads_back_decoded() -> None:
    manager = make_manager()
    response = Response()
    manager.set_nonce(response, "q1+/w==", None)

    assert manager.get_nonce(echo(response)) == "q1+/w=="
    assert manager.get_nonce(request_with({})) is None


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        pytest.param("a+b/c=", "a%2Bb%2Fc%3D", id="base64"),
        pytest.param("a b;c,d", "a%20b%3Bc%2Cd", id="separators"),
        pytest.param('"\\', "%22%5C", id="quote-backslash"),
        pytest.param("é", "%C3%A9", id="utf8"),
        pytest.param("A-z_0.9~", "A-z_0.9~", id="unreserved"),
    ],
)
def test_values_are_percent_encoded(value: str, wire: str) -> None:
    manager = make_manager()
    response = Response()

    manager.set_nonce(response, value, None)

    [(_, written_value, _)] = written(response)
    assert written_value == wire
    assert manager.get_nonce(echo(response)) == value


def test_custom_cookie_configurer_is_used() -> None:
    def configurer(provider_id, base_url, callback_url, app_origin):
        assert (provider_id, base_url, callback_url) == ("google", BASE_URL, CALLBACK)
        return CookieSettings(path=f"/x/{app_origin[-4:]}", secure=True, domain="example.com")

    manager = make_manager(cookie_configurer=configurer)
    response = Response()

    manager.set_nonce(response, "n", None)

    [(_, _, attrs)] = written(response)
    assert attrs["path"] == "/x/3000/handler"
    assert attrs["domain"] == "example.com"
    assert "secure" in attrs


# -- refresh token and granted scope ----------------------------------------------------


def test_refresh_token_cookie_on_the_wire() -> None:
    manager = make_manager()
    response = Response()

    manager.set_refresh_token(response, request_with({}), "rt+1/=", None)

    [(name, value, attrs)] = written(response)
    assert name == "google-refresh-token"
    assert value == "rt%2B1%2F%3D"
    assert attrs["path"] == "/api/auth/google"
    assert attrs["max-age"] == str(DEFAULT_SESSION_MAX_AGE) == "86400000"
    assert "httponly" in attrs
    assert attrs["samesite"].lower() == "lax"
    assert manager.get_refresh_token(echo(response)) == "rt+1/="


def test_session_duration_sets_max_age() -> None:
    manager = make_manager(session_duration=3600)
    response = Response()

    manager.set_refresh_token(response, request_with({}), "rt", None)
    manager.set_granted_scopes(response, request_with({}), "openid", None)

    assert [attrs["max-age"] for _, _, attrs in written(response)] == ["3600", "3600"]


def test_missing_refresh_token_is_none() -> None:
    assert make_manager().get_refresh_token(request_with({})) is None
    assert make_manager().get_refresh_token(request_with({"google-refresh-token": ""})) is None


def test_remove_refresh_token_deletes_with_same_attributes() -> None:
    manager = make_manager(callback_url="https://auth.example.com/api/auth/google/handler/frame")
    response = Response()

    manager.remove_refresh_token(
        response, request_with({"google-refresh-token": "rt"}), "https://app.example.com"
    )

    [(name, value, attrs)] = written(response)
    assert (name, value) == ("google-refresh-token", "")
    assert attrs["max-age"] == "0"
    assert attrs["path"] == "/api/auth/google"
    assert "secure" in attrs
    assert "httponly" in attrs
    assert attrs["samesite"].lower() == "none"


def test_granted_scopes_set_get_remove() -> None:
    manager = make_manager()
    response = Response()
    manager.set_granted_scopes(response, request_with({}), "openid email", None)

    [(name, value, attrs)] = written(response)
    assert (name, value, attrs["path"]) == (
        "google-granted-scope",
        "openid%20email",
        "/api/auth/google",
    )
    request = echo(response)
    assert manager.get_granted_scopes(request) == "openid email"

    removal = Response()
    manager.remove_granted_scopes(removal, request, None)
    assert by_name(removal)["google-granted-scope"][1]["max-age"] == "0"
    assert manager.get_granted_scopes(echo(removal, request)) is None


# -- chunking ---------------------------------------------------------------------------


def long_value(length: int) -> str:
    return "".join("abcdefghij"[i % 10] for i in range(length))


def test_value_of_exactly_chunk_size_is_not_chunked() -> None:
    response = Response()

    make_manager().set_refresh_token(response, request_with({}), long_value(CHUNK_SIZE), None)

    assert [name for name, _, _ in written(response)] == ["google-refresh-token"]


def test_long_value_is_chunked_and_plain_cookie_cleaned() -> None:
    manager = make_manager()
    token = long_value(9000)
    request = request_with({"google-refresh-token": "old"})
    response = Response()

    manager.set_refresh_token(response, request, token, None)

    cookies = written(response)
    assert [(name, len(value), attrs["max-age"]) for name, value, attrs in cookies] == [
        ("google-refresh-token", 0, "0"),
        ("google-refresh-token-0", 4000, "86400000"),
        ("google-refresh-token-1", 4000, "86400000"),
        ("google-refresh-token-2", 1000, "86400000"),
    ]
    assert all(attrs["path"] == "/api/auth/google" for _, _, attrs in cookies)
    assert all("httponly" in attrs for _, _, attrs in cookies)
    assert manager.get_refresh_token(echo(response, request)) == token


def test_long_value_without_plain_cookie_deletes_nothing() -> None:
    response = Response()

    make_manager().set_refresh_token(response, request_with({}), long_value(4001), None)

    assert [(name, attrs["max-age"]) for name, _, attrs in written(response)] == [
        ("google-refresh-token-0", "86400000"),
        ("google-refresh-token-1", "86400000"),
    ]


def test_chunk_boundaries_count_decoded_characters() -> None:
    # 4000 "+" become 12000 wire characters but are still one chunk's worth.
    manager = make_manager()
    response = Response()

    manager.set_refresh_token(response, request_with({}), "+" * 4001, None)

    chunks = by_name(response)
    assert chunks["google-refresh-token-0"][0] == "%2B" * 4000
    assert chunks["google-refresh-token-1"][0] == "%2B"
    assert manager.get_refresh_token(echo(response)) == "+" * 4001


def test_shrinking_back_cleans_chunks() -> None:
    manager = make_manager()
    request = request_with({f"google-refresh-token-{i}": "x" for i in range(3)})
    response = Response()

    manager.set_refresh_token(response, request, "short", None)

    assert [(name, value, attrs["max-age"]) for name, value, attrs in written(response)] == [
        ("google-refresh-token", "short", "86400000"),
        ("google-refresh-token-0", "", "0"),
        ("google-refresh-token-1", "", "0"),
        ("google-refresh-token-2", "", "0"),
    ]
    assert manager.get_refresh_token(echo(response, request)) == "short"


def test_fewer_chunks_clean_the_extra_ones() -> None:
    manager = make_manager()
    request = request_with({f"google-refresh-token-{i}": "x" for i in range(3)})
    response = Response()

    manager.set_refresh_token(response, request, long_value(5000), None)

    assert [(name, attrs["max-age"]) for name, _, attrs in written(response)] == [
        ("google-refresh-token-0", "86400000"),
        ("google-refresh-token-1", "86400000"),
        ("google-refresh-token-2", "0"),
    ]
    assert manager.get_refresh_token(echo(response, request)) == long_value(5000)


@pytest.mark.parametrize(
    ("cookies", "expected"),
    [
        pytest.param({"google-refresh-token": "plain"}, "plain", id="plain"),
        pytest.param(
            {"google-refresh-token-0": "ab", "google-refresh-token-1": "cd"}, "abcd", id="chunks"
        ),
        pytest.param(
            {"google-refresh-token": "plain", "google-refresh-token-0": "chunk"},
            "chunk",
            id="chunks-win",
        ),
        pytest.param(
            {"google-refresh-token-0": "ab", "google-refresh-token-2": "ef"},
            "ab",
            id="stops-at-gap",
        ),
        pytest.param(
            {"google-refresh-token-1": "cd", "google-refresh-token": "plain"},
            "plain",
            id="no-first-chunk",
        ),
        pytest.param(
            {"google-refresh-token-0": "%2B", "google-refresh-token-1": "%2F"},
            "+/",
            id="chunks-decoded",
        ),
    ],
)
def test_reading_chunks(cookies: dict[str, str], expected: str) -> None:
    assert make_manager().get_refresh_token(request_with(cookies)) == expected


@pytest.mark.parametrize(
    ("cookies", "deleted"),
    [
        pytest.param({}, ["google-refresh-token"], id="nothing"),
        pytest.param({"google-refresh-token": "x"}, ["google-refresh-token"], id="plain"),
        pytest.param(
            {"google-refresh-token-0": "a", "google-refresh-token-1": "b"},
            ["google-refresh-token-0", "google-refresh-token-1"],
            id="chunks",
        ),
        pytest.param(
            {"google-refresh-token": "x", "google-refresh-token-0": "a"},
            ["google-refresh-token-0", "google-refresh-token"],
            id="both",
        ),
    ],
)
def test_removal_deletes_whichever_forms_exist(cookies: dict[str, str], deleted: list[str]) -> None:
    response = Response()

    make_manager().remove_refresh_token(response, request_with(cookies), None)

    cookies_written = written(response)
    assert [name for name, _, _ in cookies_written] == deleted
    assert all(value == "" and attrs["max-age"] == "0" for _, value, attrs in cookies_written)


# -- sealing ----------------------------------------------------------------------------


def test_sealed_refresh_token_is_not_readable_on_the_wire() -> None:
    manager = make_manager(CookieSealer(["s3cret"]))
    response = Response()

    manager.set_refresh_token(response, request_with({}), "my-refresh-token", None)

    [header] = response.headers.getall("Set-Cookie")
    assert "my-refresh-token" not in header
    assert manager.get_refresh_token(echo(response)) == "my-refresh-token"


def test_sealed_refresh_token_survives_rotation() -> None:
    response = Response()
    make_manager(CookieSealer(["old"])).set_refresh_token(response, request_with({}), "rt", None)

    assert make_manager(CookieSealer(["new", "old"])).get_refresh_token(echo(response)) == "rt"
    assert make_manager(CookieSealer(["new"])).get_refresh_token(echo(response)) is None


def test_sealed_long_token_is_chunked_and_unsealed() -> None:
    manager = make_manager(CookieSealer(["s3cret"]))
    token = long_value(5000)
    response = Response()

    manager.set_refresh_token(response, request_with({}), token, None)

    assert len(written(response)) == 2
    assert manager.get_refresh_token(echo(response)) == token


def test_tampered_sealed_refresh_token_is_none() -> None:
    manager = make_manager(CookieSealer(["s3cret"]))

    assert manager.get_refresh_token(request_with({"google-refresh-token": "forged"})) is None


def test_unsealed_refresh_token_is_stored_as_is() -> None:
    manager = make_manager()
    response = Response()

    manager.set_refresh_token(response, request_with({}), "my-refresh-token", None)

    [header] = response.headers.getall("Set-Cookie")
    assert header.startswith("google-refresh-token=my-refresh-token;")


# -- flow cookies -----------------------------------------------------------------------


def flow(nonce: str, started_at: int = 1000, verifier: str = "verifier-1") -> FlowCookie:
    return FlowCookie.for_nonce(nonce, verifier, started_at)


def flow_cookie_value(manager: OAuthCookieManager, item: FlowCookie) -> str:
    """The wire value ``set_flow`` writes for ``item``."""
    response = Response()
    manager.set_flow(response, request_with({}), item, None)
    [(_, value, _)] = written(response)
    return value


def test_flow_cookie_on_the_wire_unsealed() -> None:
    manager = make_manager()
    response = Response()

    manager.set_flow(response, request_with({}), flow("q1+/w==", 1234), None)

    [(name, value, attrs)] = written(response)
    assert name == f"google-flow-{flow_id('q1+/w==')}"
    assert len(flow_id("q1+/w==")) == 12
    # started-at, verifier and the nonce's SHA-256: URL-safe, so nothing is percent-encoded.
    assert value == "1234.verifier-1." + hashlib.sha256(b"q1+/w==").hexdigest()
    assert attrs["path"] == "/api/auth/google"
    assert attrs["max-age"] == "600"
    assert "httponly" in attrs


def test_flow_cookie_round_trip_and_removal() -> None:
    manager = make_manager()
    response = Response()
    manager.set_flow(response, request_with({}), flow("n1", 1234), None)
    request = echo(response)

    assert manager.get_flow(request, "n1") == flow("n1", 1234)
    assert manager.get_flow(request, "n2") is None

    removal = Response()
    manager.remove_flow(removal, "n1", None)
    [(name, value, attrs)] = written(removal)
    assert (name, value, attrs["max-age"]) == (f"google-flow-{flow_id('n1')}", "", "0")
    assert attrs["path"] == "/api/auth/google"
    assert manager.get_flow(echo(removal, request), "n1") is None


def test_two_flows_live_side_by_side() -> None:
    manager = make_manager()
    first = Response()
    manager.set_flow(first, request_with({}), flow("n1", 1, "v1"), None)
    second = Response()
    manager.set_flow(second, echo(first), flow("n2", 2, "v2"), None)
    request = echo(second, echo(first))

    assert manager.get_flow(request, "n1") == flow("n1", 1, "v1")
    assert manager.get_flow(request, "n2") == flow("n2", 2, "v2")


def existing_flows(manager: OAuthCookieManager, count: int) -> dict[str, str]:
    """Flow cookies started at 100, 200, ... (in shuffled order in the header)."""
    cookies = {}
    for index in reversed(range(count)):
        nonce = f"nonce-{index}"
        cookies[f"google-flow-{flow_id(nonce)}"] = flow_cookie_value(
            manager, flow(nonce, 100 * (index + 1))
        )
    return cookies


@pytest.mark.parametrize(
    ("existing", "evicted"),
    [
        pytest.param(0, [], id="none"),
        pytest.param(MAX_FLOWS - 1, [], id="room-left"),
        pytest.param(MAX_FLOWS, ["nonce-0"], id="full"),
        pytest.param(MAX_FLOWS + 2, ["nonce-0", "nonce-1", "nonce-2"], id="over-full"),
    ],
)
def test_oldest_flows_are_evicted(existing: int, evicted: list[str]) -> None:
    manager = make_manager()
    request = request_with(existing_flows(manager, existing))
    response = Response()

    manager.set_flow(response, request, flow("new", 10_000), None)

    cookies = written(response)
    deleted = [name for name, _, attrs in cookies if attrs["max-age"] == "0"]
    assert sorted(deleted) == sorted(f"google-flow-{flow_id(nonce)}" for nonce in evicted)
    assert cookies[-1][0] == f"google-flow-{flow_id('new')}"
    live = echo(response, request)
    assert sum(name.startswith("google-flow-") for name in live.cookies) == min(
        existing + 1, MAX_FLOWS
    )
    assert manager.get_flow(live, "new") == flow("new", 10_000)


def test_unreadable_flow_cookies_are_evicted_first() -> None:
    manager = make_manager()
    cookies = existing_flows(manager, MAX_FLOWS - 1)
    cookies["google-flow-garbage"] = "not-a-flow"
    response = Response()

    manager.set_flow(response, request_with(cookies), flow("new", 10_000), None)

    deleted = [name for name, _, attrs in written(response) if attrs["max-age"] == "0"]
    assert deleted == ["google-flow-garbage"]


def test_other_providers_flows_are_left_alone() -> None:
    manager = make_manager()
    cookies = existing_flows(manager, MAX_FLOWS - 1)
    cookies["github-flow-abc"] = "1.v.n"
    cookies["google-nonce"] = "n"
    response = Response()

    manager.set_flow(response, request_with(cookies), flow("new", 10_000), None)

    assert [name for name, _, _ in written(response)] == [f"google-flow-{flow_id('new')}"]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
        pytest.param("abc.v.n1", id="non-numeric-start"),
        pytest.param("1..n1", id="no-verifier"),
        pytest.param("1.v.", id="no-nonce"),
        pytest.param("\u00b2.v.n1", id="superscript-digit-start"),
        pytest.param("%D9%A3.v.n1", id="arabic-digit-start"),
    ],
)
def test_malformed_flow_cookie_is_none(value: str) -> None:
    request = request_with({f"google-flow-{flow_id('n1')}": value})

    assert make_manager().get_flow(request, "n1") is None


def test_sealed_flow_cookie_hides_the_verifier() -> None:
    manager = make_manager(CookieSealer(["s3cret"]))
    response = Response()

    manager.set_flow(response, request_with({}), flow("the-nonce", 1234, "pkce-verifier"), None)

    [header] = response.headers.getall("Set-Cookie")
    assert "pkce-verifier" not in header
    assert "the-nonce" not in header


def test_sealed_flow_cookie_unseals_while_fresh() -> None:
    manager = make_manager(CookieSealer(["s3cret"]))
    response = Response()
    started = int(time.time())
    manager.set_flow(response, request_with({}), flow("n1", started), None)

    assert manager.get_flow(echo(response), "n1") == flow("n1", started)


def test_tampered_or_foreign_sealed_flow_cookie_is_none() -> None:
    manager = make_manager(CookieSealer(["s3cret"]))
    name = f"google-flow-{flow_id('n1')}"
    foreign = flow_cookie_value(make_manager(CookieSealer(["other"])), flow("n1"))
    good = flow_cookie_value(manager, flow("n1"))
    tampered = good[:20] + ("A" if good[20] != "A" else "B") + good[21:]
    unsealed = flow_cookie_value(make_manager(), flow("n1"))

    assert manager.get_flow(request_with({name: good}), "n1") == flow("n1")
    for value in (foreign, tampered, unsealed):
        assert manager.get_flow(request_with({name: value}), "n1") is None


def test_sealed_flow_cookie_expires_after_ten_minutes() -> None:
    manager = make_manager(CookieSealer(["s3cret"]))
    fernet = Fernet(_fernet_key("s3cret"))
    name = f"google-flow-{flow_id('n1')}"
    now = int(time.time())
    old = fernet.encrypt_at_time(
        b"1.verifier-1." + hashlib.sha256(b"n1").hexdigest().encode(), now - 700
    ).decode()
    recent = fernet.encrypt_at_time(
        b"1.verifier-1." + hashlib.sha256(b"n1").hexdigest().encode(), now - 500
    ).decode()

    assert manager.get_flow(request_with({name: old}), "n1") is None
    assert manager.get_flow(request_with({name: recent}), "n1") == flow("n1", 1)


# -- providers whose IdP POSTs the callback (SAML) -----------------------------------------


@pytest.mark.parametrize(
    ("callback", "same_site"),
    [
        pytest.param("https://auth.example.com/api/auth/google/handler/frame", "none", id="https"),
        pytest.param(CALLBACK, "lax", id="http-cannot-be-none"),
    ],
)
def test_posted_callback_flow_cookies_go_with_a_cross_site_post(callback, same_site) -> None:
    """The IdP's page POSTs from its own site: a Lax cookie would stay behind."""
    manager = make_manager(callback_url=callback, posts_callback=True)
    response = Response()
    origin = "https://auth.example.com"
    manager.set_nonce(response, "n", origin)
    manager.set_flow(response, request_with({}), flow("n"), origin)
    manager.set_refresh_token(response, request_with({}), "session", origin)
    cookies = {name: attrs["samesite"].lower() for name, _, attrs in written(response)}
    assert cookies["google-nonce"] == same_site
    assert cookies[f"google-flow-{flow_id('n')}"] == same_site
    assert cookies["google-refresh-token"] == "lax"  # read by the app's own fetch only


def test_a_session_cookie_is_refused_after_the_session_duration(monkeypatch) -> None:
    manager = make_manager(sealer=CookieSealer(["s"]), session_duration=60, session_cookie=True)
    response = Response()
    manager.set_refresh_token(response, request_with({}), "session", None)
    request = echo(response)
    assert manager.get_refresh_token(request) == "session"
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 61)
    assert manager.get_refresh_token(request) is None


# -- fast paths: the same bytes as the general path, bounded caches ---------------------------


@settings(max_examples=300)
@given(
    st.one_of(st.text(max_size=60), st.text(alphabet=string.ascii_letters + "0123456789+/=-_.~%"))
)
def test_cookie_value_quoting_is_quote_with_nothing_safe(value):
    assert _quote(value) == quote(value, safe="")


@pytest.mark.parametrize("posts_callback", [False, True])
@pytest.mark.parametrize(
    "callback_url", [CALLBACK, "https://auth.example/api/auth/google/handler/frame"]
)
def test_cached_nonce_and_flow_settings_are_those_computed_per_request(
    posts_callback, callback_url
):
    manager = make_manager(callback_url=callback_url, posts_callback=posts_callback)
    for origin in [None, APP, "https://other.example", APP]:
        settings_ = manager.settings(origin)
        if posts_callback and settings_.secure:
            settings_ = replace(settings_, same_site="none")
        assert manager._flow_settings(origin) == settings_
        response = Response()
        manager.set_nonce(response, "n+1/=", origin)
        _, value, attrs = written(response)[0]
        assert value == "n%2B1%2F%3D"
        assert attrs["path"] == f"{settings_.path}/handler"
        assert attrs["samesite"] == settings_.same_site


def test_per_origin_cookie_settings_caches_are_bounded():
    manager = make_manager()
    for index in range(200):
        manager.set_nonce(Response(), "n", f"https://app{index}.example")
    for cache in (manager._settings, manager._flow_settings_of, manager._nonce_settings_of):
        assert cache.cache_info().currsize <= 64
