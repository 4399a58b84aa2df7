"""The fake IdP for tests: its client, its oidc config, and playing the user."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
import requests

from wsgiauth.fake_idp import FakeUser
from wsgiauth.testing import serve_test_idp

CALLBACK = "http://localhost/cb"
CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def authorize_url(idp, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": idp.client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid",
        "state": "st",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{idp.issuer}/authorize?{urlencode(params)}"


def test_oidc_config_points_at_it():
    with serve_test_idp(CALLBACK, CATALOG) as idp:
        config = idp.oidc_config(additionalScopes=["offline_access"])
        assert config["metadataUrl"] == idp.metadata_url
        assert config["clientId"] == idp.client_id == "wsgiauth-test"
        assert config["clientSecret"] == idp.client_secret
        assert config["additionalScopes"] == ["offline_access"]
        document = requests.get(idp.metadata_url, timeout=10).json()
        assert document["issuer"] == idp.issuer
    with serve_test_idp(CALLBACK, CATALOG) as again:
        assert again.client_secret != idp.client_secret, "a fresh secret each time"


def test_sign_in_picks_a_user_on_the_page():
    with serve_test_idp(CALLBACK, CATALOG) as idp:
        callback = idp.sign_in(authorize_url(idp), user="user:default/jane")
        query = parse_qs(urlsplit(callback).query)
        assert callback.startswith(CALLBACK + "?")
        assert query["state"] == ["st"] and "code" in query
        with pytest.raises(AssertionError, match="pass user="):
            idp.sign_in(authorize_url(idp))
        with pytest.raises(AssertionError, match="refused"):
            idp.sign_in(authorize_url(idp), user="user:default/nobody")


def test_auto_consent_and_users_by_ref():
    jane = FakeUser(ref="user:default/jane", name="jane", email="jane@example.com")
    with serve_test_idp(CALLBACK, [jane, "bob"], auto_consent="user:default/jane") as idp:
        callback = idp.sign_in(authorize_url(idp))
        assert "code" in parse_qs(urlsplit(callback).query)


def test_an_idp_error_is_reported():
    with serve_test_idp(CALLBACK, CATALOG) as idp:
        bad = authorize_url(idp, client_id="nobody")
        with pytest.raises(AssertionError, match="400"):
            idp.sign_in(bad, user="user:default/jane")
