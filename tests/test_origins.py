"""Origins: ``new URL(x).origin`` normalisation and the allow-list (spec §12.1)."""

from __future__ import annotations

import pytest

from tests.conftest import base_config
from tests.conftest import make_testapp
from wsgiauth import origins
from wsgiauth.config import Config
from wsgiauth.errors import ConfigError
from wsgiauth.origins import checked_origin_patterns
from wsgiauth.origins import create_origin_filter
from wsgiauth.origins import origin_of


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        pytest.param("http://localhost:3000", "http://localhost:3000", id="plain"),
        pytest.param("http://localhost:3000/path?q=1#frag", "http://localhost:3000", id="path"),
        pytest.param("http://example.com:80/", "http://example.com", id="default-http-port"),
        pytest.param("https://example.com:443", "https://example.com", id="default-https-port"),
        pytest.param("https://example.com:80", "https://example.com:80", id="other-port"),
        pytest.param("http://example.com:080", "http://example.com", id="port-leading-zero"),
        pytest.param("http://example.com:0", "http://example.com:0", id="port-zero"),
        pytest.param("http://example.com:", "http://example.com", id="empty-port"),
        pytest.param("HTTPS://App.Example.COM:8443", "https://app.example.com:8443", id="case"),
        pytest.param("http://user:pw@host:8080/", "http://host:8080", id="userinfo"),
        pytest.param("http://[::1]:3000/", "http://[::1]:3000", id="ipv6-port"),
        pytest.param("http://[::1]:80", "http://[::1]", id="ipv6-default-port"),
        pytest.param("http://[2001:DB8:0:0::1]", "http://[2001:db8::1]", id="ipv6-compressed"),
        pytest.param("http://[::ffff:1.2.3.4]", "http://[::ffff:102:304]", id="ipv4-mapped"),
        pytest.param("http://127.0.0.1:7007", "http://127.0.0.1:7007", id="ipv4"),
        pytest.param("http://bücher.example", "http://xn--bcher-kva.example", id="idna"),
        # UTS #46 non-transitional, as browsers: ß stays ß (IDNA2003 makes it ss).
        pytest.param("http://graß.example", "http://xn--gra-7ka.example", id="idna-sharp-s"),
        # Mapped as written: a final capital Σ is σ to a browser, ς to str.lower().
        pytest.param("http://example.ΑΣ", "http://example.xn--mxa0b", id="idna-final-sigma"),
        pytest.param("http://例え。テスト", "http://xn--r8jz45g.xn--zckzah", id="idna-full-stop"),
        pytest.param("  http://a.example\n", "http://a.example", id="outer-whitespace"),
        # WHATWG reads "\" as "/" in http(s) URLs: the host is evil.example, as in a browser.
        pytest.param("http://evil.example\\@good.example", "http://evil.example", id="backslash"),
        pytest.param("http:\\\\evil.example", "http://evil.example", id="backslash-slashes"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
        pytest.param("/relative/path", id="relative"),
        pytest.param("//example.com", id="scheme-relative"),
        pytest.param("localhost:3000", id="no-scheme"),
        pytest.param("ftp://example.com", id="ftp"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("data:text/html,hi", id="data"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("http://", id="no-host"),
        pytest.param("http://:80", id="port-only"),
        pytest.param("http://example.com:99999", id="port-range"),
        pytest.param("http://example.com:abc", id="port-text"),
        pytest.param("http://[zz]", id="bad-ipv6"),
        pytest.param("http://[v1.x]", id="ipvfuture"),
        pytest.param("http://[fe80::1%25eth0]", id="ipv6-zone"),
        pytest.param("http://exa mple.com", id="space-in-host"),
        pytest.param("http://evil.com%2f.example.net", id="percent-in-host"),
        pytest.param("http://a<b.example", id="angle-in-host"),
        pytest.param("http://a^b.example", id="caret-in-host"),
        # idna refuses what IDNA2008 disallows (a browser would take it): never looser.
        pytest.param("http://☃.example", id="idna-disallowed"),
    ],
)
def test_origin_of_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        origin_of(url)


def test_filter_allows_the_app_origin_exactly() -> None:
    allowed = create_origin_filter("http://localhost:3000/some/path")

    assert allowed("http://localhost:3000")
    assert not allowed("http://localhost:3001")
    assert not allowed("https://localhost:3000")
    assert not allowed("http://localhost:3000/")
    assert not allowed("http://localhost")
    assert not allowed("http://evil.localhost:3000")


def test_filter_normalises_the_app_url() -> None:
    allowed = create_origin_filter("HTTPS://App.Example.com:443/")

    assert allowed("https://app.example.com")


def test_filter_rejects_a_bad_app_url() -> None:
    with pytest.raises(ValueError):
        create_origin_filter("not a url")


PATTERNS = ["https://test-*.example.net", "http://localhost:30??"]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        pytest.param("https://app.example.com", True, id="app-origin"),
        pytest.param("https://test-1.example.net", True, id="glob"),
        pytest.param("https://test-.example.net", True, id="glob-empty"),
        pytest.param("https://test-a.b.example.net", True, id="glob-dots"),
        pytest.param("HTTPS://TEST-1.EXAMPLE.NET", True, id="glob-nocase"),
        pytest.param("http://test-1.example.net", False, id="glob-scheme"),
        pytest.param("https://test-1.example.net:8443", False, id="glob-port"),
        pytest.param("https://test-1.example.net.evil.com", False, id="glob-suffix"),
        pytest.param("https://xtest-1.example.net", False, id="glob-prefix"),
        pytest.param("https://test-a/b.example.net", False, id="star-no-slash"),
        pytest.param("https://test-1.exampleXnet", False, id="dot-literal"),
        pytest.param("http://localhost:3000", True, id="question-marks"),
        pytest.param("http://localhost:300", False, id="question-mark-needs-char"),
        pytest.param("http://localhost:30/0", False, id="question-mark-no-slash"),
    ],
)
def test_filter_globs(origin: str, allowed: bool) -> None:
    is_allowed = create_origin_filter("https://app.example.com", PATTERNS)

    assert is_allowed(origin) is allowed


def test_filter_without_patterns_allows_only_the_app() -> None:
    is_allowed = create_origin_filter("https://app.example.com", [])

    assert not is_allowed("https://test-1.example.net")


def test_pattern_regex_characters_are_literal() -> None:
    is_allowed = create_origin_filter("https://app.example.com", ["https://a+b.example.(net)"])

    assert is_allowed("https://a+b.example.(net)")
    assert not is_allowed("https://aab.example.net")


# -- IDNA: hosts compared as browsers serialise them (hardening issue 8, item 11) ----------


def test_sharp_s_is_not_ss() -> None:
    """IDNA2003 folds graß into grass; a browser does not, and neither may we."""
    assert origin_of("https://graß.example") != origin_of("https://grass.example")
    is_allowed = create_origin_filter("https://grass.example")
    assert not is_allowed(origin_of("https://graß.example"))


def test_non_ascii_patterns_are_mapped_like_origins() -> None:
    is_allowed = create_origin_filter(
        "https://app.example.com", ["https://*.bücher.example", "https://graß.example"]
    )

    # What a browser sends for https://shop.bücher.example and https://graß.example:
    assert is_allowed("https://shop.xn--bcher-kva.example")
    assert is_allowed("https://xn--gra-7ka.example")
    assert not is_allowed("https://grass.example")


def test_a_wildcard_in_a_non_ascii_label_is_refused() -> None:
    with pytest.raises(ValueError, match="wildcard"):
        create_origin_filter("https://app.example.com", ["https://bü*.example"])


# -- null and other non-origins (hardening issue 8, item 4) -------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("*", id="star"),
        pytest.param("example.com", id="host-only"),
        pytest.param("*.example.com", id="glob-host-only"),
        pytest.param("*://example.com", id="glob-scheme"),
        pytest.param("http*://example.com", id="glob-in-scheme"),
        pytest.param("ftp://example.com", id="other-scheme"),
        pytest.param("https://", id="no-host"),
    ],
)
def test_a_pattern_must_name_its_scheme(pattern: str) -> None:
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        create_origin_filter("https://app.example.com", ["https://ok.example", pattern])


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param("null", id="null"),
        pytest.param("https://exa mple.com", id="space"),
        pytest.param("https://a<b.example", id="angle"),
        pytest.param("https://a.example:99999", id="port-range"),
        pytest.param("https://a.example:443", id="default-port-not-serialised"),
        pytest.param("https://bücher.example", id="non-ascii-not-serialised"),
        pytest.param("https://\u212a.example", id="kelvin-sign-lowers-to-k"),
    ],
)
def test_non_origins_never_match(origin: str) -> None:
    is_allowed = create_origin_filter("https://app.example.com", ["https://*", "http://*"])

    assert not is_allowed(origin)


def test_null_never_matches_even_past_the_pattern_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a ``*`` ever slip past the load-time check, ``null`` still matches nothing."""
    monkeypatch.setattr(origins, "_origin_pattern", lambda pattern: pattern)
    is_allowed = create_origin_filter("https://app.example.com", ["*", "n*", "?ull"])

    assert not is_allowed("null")


@pytest.mark.parametrize(
    ("value", "path"),
    [
        pytest.param(["https://ok.example", "*"], "auth.experimentalExtraAllowedOrigins[1]"),
        pytest.param(["example.com"], "auth.experimentalExtraAllowedOrigins[0]"),
    ],
)
def test_checked_origin_patterns_name_the_key(value: list[str], path: str) -> None:
    key = "auth.experimentalExtraAllowedOrigins"
    config = Config.from_dict({"auth": {"experimentalExtraAllowedOrigins": value}})

    with pytest.raises(ConfigError) as raised:
        checked_origin_patterns(config, key, config.get_string_list(key))

    assert raised.value.path == path
    assert "must start with http:// or https://" in raised.value.reason


def test_checked_origin_patterns_keep_good_patterns() -> None:
    key = "auth.experimentalExtraAllowedOrigins"
    patterns = ["https://*.example.com", "http://localhost:30??"]
    config = Config.from_dict({"auth": {"experimentalExtraAllowedOrigins": patterns}})

    assert checked_origin_patterns(config, key, patterns) == patterns


def test_the_app_refuses_a_star_in_extra_allowed_origins() -> None:
    config = base_config(experimentalExtraAllowedOrigins=["*"])

    with pytest.raises(ConfigError, match="must start with http://") as raised:
        make_testapp(config)
    assert raised.value.path == "auth.experimentalExtraAllowedOrigins[0]"
