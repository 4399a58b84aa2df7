"""The postMessage callback page: CSP hash, headers, and escaping of hostile values (spec §5)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import parse_web_message
from tests.conftest import web_message_origin
from wsgiauth.flow.web_message import web_message_response

ORIGIN = "http://localhost:3000"
SUCCESS = {
    "type": "authorization_response",
    "response": {
        "profile": {"email": "jane@example.com"},
        "providerInfo": {"accessToken": "at", "scope": "openid"},
    },
}
#: What ``encodeURIComponent`` leaves alone, minus ``'`` (the page encodes it too).
SAFE_ENCODED = re.compile(r"[A-Za-z0-9\-_.!~*()%]*")


def script_of(body: str) -> str:
    """The exact text between ``<script>`` and ``</script>``."""
    assert body.count("<script>") == 1
    assert body.count("</script>") == 1
    return body.split("<script>", 1)[1].split("</script>", 1)[0]


def encoded_values(script: str) -> list[str]:
    values = re.findall(r"decodeURIComponent\('([^']*)'\)", script)
    assert len(values) == 2
    return values


def test_page_shape_and_headers() -> None:
    response = web_message_response(ORIGIN, SUCCESS)

    assert response.status_int == 200
    assert response.headers["Content-Type"] == "text/html"
    assert response.headers["X-Frame-Options"] == "sameorigin"
    body = response.text
    assert body.startswith("<html><body><script>")
    assert body.endswith("</script></body></html>")
    assert response.headers["Content-Length"] == str(len(response.body))


def test_csp_hash_pins_the_exact_script() -> None:
    response = web_message_response(ORIGIN, SUCCESS)

    script = script_of(response.text)
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    assert response.headers["Content-Security-Policy"] == f"script-src 'sha256-{digest}'"


def test_csp_hash_follows_the_payload() -> None:
    first = web_message_response(ORIGIN, {"type": "authorization_response", "response": {}})
    second = web_message_response(ORIGIN, SUCCESS)

    assert first.headers["Content-Security-Policy"] != second.headers["Content-Security-Policy"]


def test_payload_and_origin_decode_back() -> None:
    body = web_message_response(ORIGIN, SUCCESS).text

    assert parse_web_message(body) == SUCCESS
    assert web_message_origin(body) == ORIGIN


def test_json_is_compact_like_json_stringify() -> None:
    body = web_message_response(ORIGIN, {"a": [1, {"b": None}], "c": True}).text

    data, _ = encoded_values(script_of(body))
    assert unquote(data) == '{"a":[1,{"b":null}],"c":true}'


def test_result_goes_to_the_exact_origin_and_config_info_to_star() -> None:
    script = script_of(web_message_response(ORIGIN, SUCCESS).text)

    posts = re.findall(r"\.postMessage\(([^;]*)\);", script)
    assert posts == ["originInfo, '*'", "JSON.parse(authResponse), origin"]
    assert "'type': 'config_info', 'targetOrigin': origin" in script
    assert "}, 100);" in script
    assert "window.close()" in script


HOSTILE = [
    pytest.param("</script><script>alert(1)</script>", id="script-breakout"),
    pytest.param("<!--<script>", id="html-comment"),
    pytest.param("'\"", id="quotes"),
    pytest.param("');alert(1);('", id="js-string-breakout"),
    pytest.param("back\\slash\\'", id="backslashes"),
    pytest.param("line\u2028sep\u2029para", id="js-line-separators"),
    pytest.param("new\nline\r\n", id="newlines"),
    pytest.param("Jöhn Ðoe 日本 😀", id="non-ascii"),
    pytest.param("\x00\x1f\x7f", id="controls"),
    pytest.param("%27%3C", id="already-encoded"),
]


@pytest.mark.parametrize(
    "value", [*HOSTILE, pytest.param("\ud800 lone \udfff", id="lone-surrogates")]
)
def test_hostile_payload_stays_inside_its_string(value: str) -> None:
    payload = {
        "type": "authorization_response",
        "error": {"name": "NotAllowedError", "message": value},
    }

    response = web_message_response(ORIGIN, payload)

    body = response.text
    script = script_of(body)
    for encoded in encoded_values(script):
        assert SAFE_ENCODED.fullmatch(encoded)
    assert parse_web_message(body) == payload
    assert "alert(1)</script>" not in body


# Origins come from origin_of, which never yields a lone surrogate (encodeURIComponent
# would throw on one too).
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_origin_stays_inside_its_string(value: str) -> None:
    body = web_message_response(value, SUCCESS).text

    for encoded in encoded_values(script_of(body)):
        assert SAFE_ENCODED.fullmatch(encoded)
    assert web_message_origin(body) == value


def test_lone_surrogate_is_escaped_like_json_stringify() -> None:
    body = web_message_response(ORIGIN, {"m": "\ud800"}).text

    data, _ = encoded_values(script_of(body))
    assert unquote(data) == '{"m":"\\ud800"}'


def test_non_ascii_is_percent_encoded_utf8() -> None:
    body = web_message_response(ORIGIN, {"m": "é"}).text

    data, _ = encoded_values(script_of(body))
    assert data == "%7B%22m%22%3A%22%C3%A9%22%7D"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@given(payload=st.dictionaries(st.text(max_size=10), json_values, max_size=5), origin=st.text())
def test_any_payload_round_trips_without_escaping(payload: dict[str, Any], origin: str) -> None:
    response = web_message_response(origin, payload)

    body = response.text
    script = script_of(body)
    data, encoded_origin = encoded_values(script)
    assert SAFE_ENCODED.fullmatch(data)
    assert SAFE_ENCODED.fullmatch(encoded_origin)
    assert json.loads(unquote(data)) == payload
    assert unquote(encoded_origin) == origin
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    assert response.headers["Content-Security-Policy"] == f"script-src 'sha256-{digest}'"
