"""``auth.providers.saml``: a bad key, a missing secret or a missing pysaml2 fails at startup."""

from __future__ import annotations

import pytest

from tests.certificates import key_and_cert
from tests.conftest import base_config
from tests.providers.saml.conftest import SECRET
from tests.providers.saml.conftest import build
from tests.providers.saml.conftest import saml_config
from wsgiauth.errors import ConfigError
from wsgiauth.providers.saml import config as saml_settings

pytest.importorskip("saml2.sigver")


def test_needs_a_session_secret(tmp_path, idp_keys) -> None:
    with pytest.raises(ConfigError) as error:
        build(tmp_path, saml_config(idp_keys), session={})
    assert error.value.path == "auth.session.secret"


def test_needs_pysaml2(tmp_path, idp_keys, monkeypatch) -> None:
    monkeypatch.setattr(saml_settings, "_saml2", lambda: None)
    with pytest.raises(ConfigError, match=r"wsgiauth\[saml\]"):
        build(tmp_path, saml_config(idp_keys))


@pytest.mark.parametrize(
    ("change", "path"),
    [
        pytest.param({"cert": None}, "auth.providers.saml.cert", id="no-cert"),
        pytest.param({"idpIssuer": ""}, "auth.providers.saml.idpIssuer", id="empty-idp-issuer"),
        pytest.param({"entryPoint": "/sso"}, "auth.providers.saml.entryPoint", id="relative"),
        pytest.param(
            {"wantAssertionsSigned": False},
            "auth.providers.saml.wantAssertionsSigned",
            id="nothing-signed",
        ),
        pytest.param(
            {"signatureAlgorithm": "sha1"}, "auth.providers.saml.signatureAlgorithm", id="sha1"
        ),
        pytest.param({"certificate": "x"}, "auth.providers.saml.certificate", id="unknown-key"),
    ],
)
def test_bad_config_fails_at_startup(tmp_path, idp_keys, change, path) -> None:
    config = {
        key: value
        for key, value in {**saml_config(idp_keys), **change}.items()
        if value is not None
    }
    with pytest.raises(ConfigError) as error:
        build(tmp_path, config)
    assert error.value.path == path


def test_backstages_other_keys_are_accepted(tmp_path, idp_keys) -> None:
    """``logoutUrl`` and ``decryptionPvk`` (Backstage's saml) do not fail startup."""
    key, _ = key_and_cert("test-sp-decryption")
    config = saml_config(
        idp_keys,
        logoutUrl="https://idp.example.com/slo",
        decryptionPvk=key,
        authnContext=["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"],
    )
    assert build(tmp_path, config).get("/api/auth/saml/metadata").status_int == 200


@pytest.mark.parametrize(
    ("change", "path"),
    [
        pytest.param(
            {"authnContext": "urn:x"}, "auth.providers.saml.authnContext", id="context-not-list"
        ),
        pytest.param({"logoutUrl": 5}, "auth.providers.saml.logoutUrl", id="logout-url-number"),
        pytest.param(
            {"decryptionPvk": True}, "auth.providers.saml.decryptionPvk", id="pvk-boolean"
        ),
    ],
)
def test_backstages_other_keys_are_checked(tmp_path, idp_keys, change, path) -> None:
    with pytest.raises(ConfigError) as error:
        build(tmp_path, saml_config(idp_keys, **change))
    assert error.value.path == path


def test_check_config(tmp_path, idp_keys) -> None:
    """``wsgiauth check-config`` builds the provider as the app does, secret included."""
    from tests.providers.popup import check_config_of

    config = base_config(providers={"saml": saml_config(idp_keys)}, keyStore={"provider": "memory"})
    config["auth"]["session"] = {"secret": SECRET}
    assert check_config_of(tmp_path, config) == []
    del config["auth"]["session"]
    [error] = check_config_of(tmp_path, config)
    assert error.path == "auth.session.secret"
