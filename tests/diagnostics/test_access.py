"""Who may see the diagnostics page: development, ``auth.diagnostics.enabled`` and its token."""

from __future__ import annotations

import pytest

from tests.diagnostics.conftest import PAGE
from tests.diagnostics.conftest import TOKEN
from tests.diagnostics.conftest import make_client
from tests.diagnostics.conftest import make_config
from wsgiauth.app import create_auth_app
from wsgiauth.diagnostics import MIN_TOKEN_LENGTH
from wsgiauth.diagnostics import access
from wsgiauth.errors import ConfigError


def test_in_development_it_is_served_without_a_token(idp):
    page = make_client(make_config()).get(PAGE)
    assert page.status_int == 200
    assert page.content_type == "text/html"
    assert "wsgiauth diagnostics" in page.text


def test_outside_development_it_is_not_served_unless_enabled(idp):
    missing = make_client(make_config(environment="production")).get(PAGE, expect_errors=True)
    assert missing.status_int == 404
    assert missing.json["error"]["name"] == "NotFoundError"


def test_development_can_turn_it_off(idp):
    client = make_client(make_config(diagnostics={"enabled": False}))
    assert client.get(PAGE, expect_errors=True).status_int == 404


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param(f"Bearer {TOKEN[:-1]}", id="one-char-short"),
        pytest.param(f"Bearer {TOKEN}x", id="one-char-long"),
        pytest.param(f"Basic {TOKEN}", id="other-scheme"),
        pytest.param("Bearer ", id="empty"),
    ],
)
def test_outside_development_it_refuses_without_its_token(idp, authorization):
    client = make_client(
        make_config(environment="production", diagnostics={"enabled": True, "token": TOKEN})
    )
    headers = {"Authorization": authorization} if authorization else {}
    for query in ("", "?format=json"):
        refused = client.get(PAGE + query, headers=headers, expect_errors=True)
        assert refused.status_int == 401
        assert refused.json["error"]["name"] == "AuthenticationError"
        assert refused.json["response"] == {"statusCode": 401}
        assert "callback" not in refused.text.lower()


def test_outside_development_its_token_opens_it(idp):
    client = make_client(
        make_config(environment="production", diagnostics={"enabled": True, "token": TOKEN})
    )
    page = client.get(PAGE, headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_int == 200
    assert "environment production" not in page.text  # the HTML says "Environment"
    assert "Environment <strong>production</strong>" in page.text


def test_a_token_set_in_development_is_required_there_too(idp):
    client = make_client(make_config(diagnostics={"token": TOKEN}))
    assert client.get(PAGE, expect_errors=True).status_int == 401
    assert client.get(PAGE, headers={"Authorization": f"bearer {TOKEN}"}).status_int == 200


def test_the_token_is_compared_in_constant_time(idp, monkeypatch):
    compared = []
    real = access.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(access.hmac, "compare_digest", spy)
    client = make_client(
        make_config(environment="production", diagnostics={"enabled": True, "token": TOKEN})
    )
    client.get(PAGE, headers={"Authorization": "Bearer guess"}, expect_errors=True)
    assert compared == [(b"guess", TOKEN.encode())]


@pytest.mark.parametrize(
    ("diagnostics_config", "message"),
    [
        pytest.param({"enabled": True}, "required when", id="enabled-without-token"),
        pytest.param(
            {"enabled": True, "token": "short"}, f"at least {MIN_TOKEN_LENGTH}", id="short-token"
        ),
    ],
)
def test_a_bad_setup_outside_development_fails_at_startup(diagnostics_config, message):
    with pytest.raises(ConfigError, match=rf"auth\.diagnostics\.token.*{message}"):
        create_auth_app(make_config(environment="production", diagnostics=diagnostics_config))
