"""``idpIssuer`` is optional with ``cert``, as in Backstage's saml (passport-saml).

Backstage's canonical config is ``entryPoint``, ``issuer`` and ``cert``: passport-saml
compares the IdP's Issuer only when ``idpIssuer`` is set, and trusts the signature made
with ``cert``. Without ``idpIssuer`` the Issuer is read (pysaml2 finds the signing
certificate by it, the replay key names it) and mapped to ``cert`` alone; with it, the
Issuer must be it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.certificates import key_and_cert
from tests.providers.saml.conftest import IDP
from tests.providers.saml.conftest import SP
from tests.providers.saml.conftest import SSO
from tests.providers.saml.conftest import Flow
from tests.providers.saml.conftest import Idp
from tests.providers.saml.conftest import build
from tests.providers.saml.conftest import refused
from tests.providers.saml.conftest import saml_config
from wsgiauth import Config
from wsgiauth.providers.saml.config import SamlSettings

pytest.importorskip("saml2.sigver")

OTHER_ISSUER = "https://someone-else.example/idp"


@pytest.fixture(scope="module")
def attacker(tmp_path_factory) -> tuple[Idp, str]:
    """An IdP with its own key, which the SP does not trust; and its certificate."""
    key_pem, cert_pem = key_and_cert("attacker-idp")
    key_file = tmp_path_factory.mktemp("attacker") / "attacker-key.pem"
    key_file.write_text(key_pem)
    return Idp(str(key_file)), cert_pem


def backstage_config(idp_keys: tuple[str, str], **overrides: Any) -> dict[str, Any]:
    """Backstage's documented saml config: entryPoint, issuer, cert (and a resolver)."""
    return {
        "entryPoint": SSO,
        "issuer": SP,
        "cert": idp_keys[1],
        "signIn": {"resolvers": [{"resolver": "nameIdMatchingUserEntityName"}]},
        **overrides,
    }


def with_key_info(cert_pem: str) -> Callable[[str], str]:
    """Put ``cert_pem`` in every signature's KeyInfo (not signed: no digest changes)."""
    body = "".join(cert_pem.strip().splitlines()[1:-1])
    key_info = (
        "<ds:KeyInfo><ds:X509Data>"
        f"<ds:X509Certificate>{body}</ds:X509Certificate>"
        "</ds:X509Data></ds:KeyInfo>"
    )

    def tamper(xml: str) -> str:
        return re.sub(r"(</ds:SignatureValue>)", r"\1" + key_info, xml)

    return tamper


#: Which signatures a config wants, and how a response meeting it is signed.
SIGNED_AS_CONFIGURED = [
    pytest.param({}, {"sign_response": True}, id="both-signed"),
    pytest.param({"wantAuthnResponseSigned": False}, {}, id="assertion-signed"),
    pytest.param(
        {"wantAssertionsSigned": False},
        {"sign_response": True, "sign_assertion": False},
        id="response-signed",
    ),
]


def test_backstages_plain_config_starts_and_signs_in(tmp_path, idp_keys, idp) -> None:
    settings = SamlSettings.from_config(Config.from_dict(backstage_config(idp_keys)))
    assert settings.idp_issuer is None
    app = build(tmp_path, backstage_config(idp_keys))
    flow = Flow(app)
    assert flow.location.startswith(SSO + "?")
    message = flow.post(idp.response(flow.request_id, sign_response=True))
    response = message["response"]
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert response["profile"] == {"email": "jane@example.com", "displayName": "Jane Doe"}


@pytest.mark.parametrize(("config", "signing"), SIGNED_AS_CONFIGURED)
@pytest.mark.parametrize("issuer", [IDP, OTHER_ISSUER])
def test_without_idp_issuer_any_issuer_signed_with_cert_is_accepted(
    tmp_path, idp_keys, idp, config, signing, issuer
) -> None:
    """passport-saml's behaviour: without ``idpIssuer`` the Issuer is not compared.

    Whatever IdP the response names, the signature made with ``cert`` is what is
    trusted; the profile's ``issuer`` is the (signed) name.
    """
    app = build(tmp_path, backstage_config(idp_keys, **config))
    flow = Flow(app)
    message = flow.post(idp.response(flow.request_id, issuer=issuer, **signing))
    assert message["response"]["backstageIdentity"]["identity"]["userEntityRef"] == (
        "user:default/jane"
    )


@pytest.mark.parametrize(("config", "signing"), SIGNED_AS_CONFIGURED)
@pytest.mark.parametrize("issuer", [IDP, OTHER_ISSUER])
@pytest.mark.parametrize("key_info", [False, True], ids=["bare", "key-info"])
def test_without_idp_issuer_another_key_is_refused(
    tmp_path, idp_keys, attacker, config, signing, issuer, key_info
) -> None:
    """Signed by a key other than ``cert``'s, whatever Issuer it names, and even when
    the signature carries the signer's certificate (KeyInfo is never trusted)."""
    other, other_cert = attacker
    app = build(tmp_path, backstage_config(idp_keys, **config))
    flow = Flow(app)
    tamper = with_key_info(other_cert) if key_info else None
    response = other.response(flow.request_id, issuer=issuer, tamper=tamper, **signing)
    refused(flow.post(response), "Failed to verify signature")


def test_a_signature_naming_no_issuer_is_not_checked_with_its_key_info(
    tmp_path, idp_keys, attacker
) -> None:
    """A signed response that names no Issuer has no metadata entry: pysaml2 would then
    verify with the certificate in its KeyInfo unless ``only_use_keys_in_metadata``."""
    other, other_cert = attacker
    app = build(tmp_path, backstage_config(idp_keys, wantAssertionsSigned=False))
    flow = Flow(app)
    response = other.response(
        flow.request_id,
        sign_response=True,
        sign_assertion=False,
        response_issuer=False,
        tamper=with_key_info(other_cert),
    )
    refused(flow.post(response), "MissingKey")


def test_without_idp_issuer_the_response_is_still_signed_as_configured(
    tmp_path, idp_keys, idp
) -> None:
    """The plain config wants both signatures (the defaults): a signed assertion in an
    unsigned response is not enough."""
    app = build(tmp_path, backstage_config(idp_keys))
    flow = Flow(app)
    refused(flow.post(idp.response(flow.request_id)), "Signature missing for response")


def test_without_idp_issuer_a_replay_is_refused(tmp_path, idp_keys, idp) -> None:
    app = build(tmp_path, backstage_config(idp_keys))
    flow = Flow(app)
    cookies = dict(app.cookies)
    response = idp.response(flow.request_id, issuer=OTHER_ISSUER, sign_response=True)
    assert "response" in flow.post(response)
    for name, value in cookies.items():
        app.set_cookie(name, value)
    refused(flow.post(response), "already used")


@pytest.mark.parametrize(("config", "signing"), SIGNED_AS_CONFIGURED)
def test_with_idp_issuer_another_issuer_is_refused(
    tmp_path, idp_keys, idp, config, signing
) -> None:
    """``idpIssuer`` set: a response signed with ``cert`` but naming another IdP fails."""
    app = build(tmp_path, saml_config(idp_keys, **{"wantAuthnResponseSigned": True, **config}))
    flow = Flow(app)
    refused(flow.post(idp.response(flow.request_id, issuer=OTHER_ISSUER, **signing)), "MissingKey")
