"""The OAuth state: hex of URLSearchParams form data, decoded with Backstage's 403s (spec §2)."""

from __future__ import annotations

import string
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from wsgiauth.errors import NotAllowedError
from wsgiauth.oauth.state import MAX_STATE_LENGTH
from wsgiauth.oauth.state import _quote
from wsgiauth.oauth.state import _quote_repeating
from wsgiauth.oauth.state import decode_oauth_state
from wsgiauth.oauth.state import encode_oauth_state

SPEC_EXAMPLE = {
    "nonce": "q1+/w==",
    "env": "development",
    "origin": "http://localhost:3000",
    "flow": "popup",
}
SPEC_EXAMPLE_FORM = (
    "nonce=q1%2B%2Fw%3D%3D&env=development&origin=http%3A%2F%2Flocalhost%3A3000&flow=popup"
)


def hex_of(text: str) -> str:
    return text.encode("utf-8").hex()


def test_spec_example_encodes_to_hex_of_form_data() -> None:
    encoded = encode_oauth_state(SPEC_EXAMPLE)

    assert encoded == hex_of(SPEC_EXAMPLE_FORM)
    assert encoded == encoded.lower()


def test_spec_example_decodes() -> None:
    assert decode_oauth_state(hex_of(SPEC_EXAMPLE_FORM)) == SPEC_EXAMPLE


def test_none_fields_are_dropped_and_order_is_kept() -> None:
    state = {
        "nonce": "n",
        "env": "production",
        "origin": None,
        "redirectUrl": None,
        "flow": "redirect",
        "scope": "openid email",
    }

    encoded = encode_oauth_state(state)

    assert (
        bytes.fromhex(encoded).decode() == "nonce=n&env=production&flow=redirect&scope=openid+email"
    )


@pytest.mark.parametrize(
    ("value", "form"),
    [
        pytest.param("a*b", "a*b", id="star-kept"),
        pytest.param("a~b", "a%7Eb", id="tilde-encoded"),
        pytest.param("-._", "-._", id="unreserved-kept"),
        pytest.param("a b", "a+b", id="space-plus"),
        pytest.param("a+b", "a%2Bb", id="plus-encoded"),
        pytest.param("!'()", "%21%27%28%29", id="js-uri-marks-encoded"),
        pytest.param("é€", "%C3%A9%E2%82%AC", id="utf8-uppercase-hex"),
        pytest.param("a&b=c", "a%26b%3Dc", id="separators-encoded"),
    ],
)
def test_values_encode_like_url_search_params(value: str, form: str) -> None:
    encoded = encode_oauth_state({"nonce": "n", "env": "e", "x": value})

    assert bytes.fromhex(encoded).decode() == f"nonce=n&env=e&x={form}"


def test_keys_are_encoded_too() -> None:
    encoded = encode_oauth_state({"nonce": "n", "env": "e", "a b~": "1"})

    assert bytes.fromhex(encoded).decode() == "nonce=n&env=e&a+b%7E=1"


def test_decode_keeps_unknown_keys_and_last_value_wins() -> None:
    state = decode_oauth_state(hex_of("nonce=a&env=dev&audience=api&nonce=b"))

    assert state == {"nonce": "b", "env": "dev", "audience": "api"}


MISSING_ENV = "OAuth state is invalid, missing env"
MISSING_NONCE = "OAuth state is invalid, missing nonce"


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        pytest.param("", MISSING_ENV, id="empty"),
        pytest.param("zz" + hex_of("nonce=n&env=e"), MISSING_ENV, id="non-hex"),
        pytest.param(hex_of("nonce=n&env=e") + "a", MISSING_ENV, id="odd-length"),
        pytest.param("ff" + hex_of("&nonce=n&env=e"), MISSING_ENV, id="invalid-utf8"),
        pytest.param("é" + hex_of("nonce=n&env=e"), MISSING_ENV, id="non-ascii"),
        pytest.param(hex_of("nonce=n"), MISSING_ENV, id="missing-env"),
        pytest.param(hex_of("nonce=n&env="), MISSING_ENV, id="empty-env"),
        pytest.param(hex_of("env=e"), MISSING_NONCE, id="missing-nonce"),
        pytest.param(hex_of("env=e&nonce="), MISSING_NONCE, id="empty-nonce"),
        pytest.param(
            hex_of("nonce=n&env=e&x=" + "a" * MAX_STATE_LENGTH), MISSING_ENV, id="oversize"
        ),
    ],
)
def test_decode_errors_are_not_allowed(encoded: str, message: str) -> None:
    with pytest.raises(NotAllowedError) as caught:
        decode_oauth_state(encoded)

    assert caught.value.message == message
    assert caught.value.status_code == 403


def test_largest_allowed_state_decodes() -> None:
    prefix = "nonce=n&env=e&x="
    text = prefix + "a" * (MAX_STATE_LENGTH // 2 - len(prefix))

    assert len(hex_of(text)) == MAX_STATE_LENGTH
    assert decode_oauth_state(hex_of(text))["x"].startswith("aaa")


def test_uppercase_hex_decodes() -> None:
    assert decode_oauth_state(hex_of("nonce=n&env=e").upper()) == {"nonce": "n", "env": "e"}


required = st.text(min_size=1, max_size=40)
extra = st.dictionaries(
    st.text(max_size=20).filter(lambda key: key not in ("nonce", "env")),
    st.text(max_size=40),
    max_size=6,
)


@given(nonce=required, env=required, extra=extra)
def test_round_trip_of_arbitrary_text(nonce: str, env: str, extra: dict[str, str]) -> None:
    state = {"nonce": nonce, "env": env, **extra}

    assert decode_oauth_state(encode_oauth_state(state)) == state


@given(st.text(max_size=300) | st.binary(max_size=150).map(bytes.hex))
def test_decode_of_anything_raises_only_not_allowed(encoded: str) -> None:
    try:
        state = decode_oauth_state(encoded)
    except NotAllowedError as error:
        assert error.message in (MISSING_ENV, MISSING_NONCE)
    else:
        assert state["env"]
        assert state["nonce"]


def test_decode_is_as_lenient_as_url_search_params() -> None:
    """Empty pairs and bare keys parse as URLSearchParams parses them."""
    state = decode_oauth_state(b"nonce=n&&env=development&flag".hex())
    assert state == {"nonce": "n", "env": "development", "flag": ""}


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("multipart/form-data", id="multipart-without-boundary"),
        pytest.param("multipart/form-data; boundary=", id="multipart-empty-boundary"),
    ],
)
def test_a_posted_body_webob_cannot_parse_carries_no_state(content_type: str) -> None:
    from webob import Request

    from wsgiauth.oauth.state import callback_state

    request = Request.blank(
        "/handler/frame", method="POST", body=b"state=x", content_type=content_type
    )
    assert callback_state(request) == ""


@pytest.mark.parametrize(
    ("method", "query", "form", "expected"),
    [
        pytest.param("GET", "state=q", None, "q", id="query"),
        pytest.param("POST", "", {"state": "f"}, "f", id="form-post"),
        pytest.param("POST", "", {"RelayState": "r"}, "r", id="saml-relay-state"),
        pytest.param("POST", "state=q", {"RelayState": "r"}, "q", id="query-first"),
        pytest.param("GET", "", None, "", id="none"),
    ],
)
def test_callback_state_from_the_query_or_the_posted_form(method, query, form, expected) -> None:
    from webob import Request

    from wsgiauth.oauth.state import callback_state

    request = Request.blank(f"/handler/frame?{query}", method=method, POST=form)
    assert callback_state(request) == expected


@settings(max_examples=300)
@given(
    st.one_of(st.text(max_size=60), st.text(alphabet=string.ascii_letters + "0123456789+/=-_.*~% "))
)
def test_state_quoting_fast_path_is_url_search_params_quoting(value):
    assert _quote(value) == quote_plus(value, safe="*").replace("~", "%7E")


def test_a_flow_nonce_does_not_enter_the_quoting_cache():
    """Nonces never repeat: cached, they would push out env, origin and scope."""
    _quote_repeating.cache_clear()
    for index in range(300):
        encode_oauth_state({"nonce": f"n{index}+/w==", "origin": "http://localhost:3000"})
    assert _quote_repeating.cache_info().currsize == 1  # the origin


def test_state_quoting_cache_is_bounded():
    for index in range(600):
        encode_oauth_state({"nonce": "n", "env": f"env {index}"})
    assert _quote_repeating.cache_info().currsize <= 256
