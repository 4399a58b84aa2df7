"""Reading ``auth.providers.saml``: every bad key fails here, at startup, naming the key.

Backstage's keys (``entryPoint``, ``issuer``, ``cert``, ``audience``, ``privateKey``,
``signatureAlgorithm``, ``digestAlgorithm``, ``acceptedClockSkewMs``,
``identifierFormat``, ``wantAuthnResponseSigned``, ``wantAssertionsSigned``,
``authnContext``, ``logoutUrl``, ``decryptionPvk``) and ours (``metadataUrl``,
``idpIssuer``, ``publicCert``, attribute names). ``logoutUrl`` is checked and unused, as
in Backstage (its logout never calls the IdP); ``decryptionPvk`` is checked and unused:
encrypted assertions are refused (see :mod:`.verification`). Also the
PEM helpers: pysaml2 and ``xmlsec1`` read keys from files, and IdPs hand out
certificates as bare base64.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from ...oauth import read_absolute_url

if TYPE_CHECKING:
    from typing import Self

    from ...oauth import Config

__all__ = [
    "CONFIG_KEYS",
    "DSIG_NS",
    "KeyFiles",
    "SamlSettings",
    "cert_body",
    "load_saml2",
    "pem",
]

CONFIG_KEYS = frozenset(
    {
        "entryPoint",
        "issuer",
        "cert",
        "metadataUrl",
        "idpIssuer",
        "audience",
        "privateKey",
        "publicCert",
        "wantAuthnResponseSigned",
        "wantAssertionsSigned",
        "acceptedClockSkewMs",
        "signatureAlgorithm",
        "digestAlgorithm",
        "identifierFormat",
        "emailAttribute",
        "displayNameAttribute",
        "groupsAttribute",
        "authnContext",
        "logoutUrl",
        "decryptionPvk",
    }
)

#: XML signature's namespace (IdP metadata holds its certificates in it).
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
_SIGNATURES = {
    "sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "sha512": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
}
_DIGESTS = {
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
}
#: Attribute names tried, in order, when config names none (common IdPs, ADFS, eduPerson).
_DEFAULT_ATTRIBUTES = {
    "email": (
        "email",
        "mail",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "urn:oid:0.9.2342.19200300.100.1.3",
    ),
    "displayName": (
        "displayName",
        "http://schemas.microsoft.com/identity/claims/displayname",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "urn:oid:2.16.840.1.113730.3.1.241",
    ),
    "groups": (
        "groups",
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
        "memberOf",
        "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
    ),
}


def _saml2() -> Any:
    """pysaml2, imported only for a configured ``saml`` provider."""
    try:
        import saml2.client  # type: ignore[import-untyped]  # noqa: PLC0415
        import saml2.config  # type: ignore[import-untyped]  # noqa: PLC0415
        import saml2.metadata  # type: ignore[import-untyped]  # noqa: PLC0415
        import saml2.sigver  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError:
        return None
    return saml2


def load_saml2(config: Config) -> tuple[Any, str]:
    """pysaml2 and the path of ``xmlsec1``; a config error naming the install when missing."""
    saml2 = _saml2()
    if saml2 is None:
        raise config.error("", "the saml provider needs pysaml2: pip install 'wsgiauth[saml]'")
    try:
        xmlsec = saml2.sigver.get_xmlsec_binary()
    except saml2.sigver.SigverError:
        raise config.error(
            "", "the saml provider needs xmlsec1 (Debian: apt-get install xmlsec1)"
        ) from None
    return saml2, xmlsec


@dataclass(frozen=True, slots=True)
class SamlSettings:
    """``auth.providers.saml``, checked; algorithms as their XML URIs."""

    entry_point: str
    #: Our SP entity ID.
    issuer: str
    audience: str
    #: The IdP's certificate (``cert``), or None with ``metadataUrl``.
    cert: str | None
    metadata_url: str | None
    #: ``idpIssuer``, the IdP's entity ID: set, the signed Issuer must be it. Unset with
    #: ``cert``, any Issuer is read but the signature must verify with ``cert``; with
    #: ``metadataUrl``, its metadata names it.
    idp_issuer: str | None
    want_response_signed: bool | None
    want_assertions_signed: bool | None
    #: ``acceptedClockSkewMs``, in whole seconds.
    skew: int
    signature_algorithm: str
    digest_algorithm: str
    identifier_format: str | None
    #: Profile field -> the attribute names it is read from, first found wins.
    attributes: Mapping[str, tuple[str, ...]]
    private_key: str | None
    public_cert: str | None
    #: ``authnContext``: the ``AuthnContextClassRef``s an ``AuthnRequest`` asks for
    #: (``Comparison="exact"``, as passport-saml); empty, none is asked for.
    authn_context: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> Self:
        """Read and check every key; :class:`ConfigError` names the first bad one."""
        entry_point = str(read_absolute_url(config, "entryPoint"))
        issuer = config.get_string("issuer")
        audience = config.get_optional_string("audience") or issuer
        cert = config.get_optional_string("cert")
        metadata_url = read_absolute_url(config, "metadataUrl", required=False)
        if (cert is None) == (metadata_url is None):
            raise config.error("cert", "set either cert or metadataUrl")
        # Optional, as passport-saml's: unset, the signature made with cert is the trust.
        idp_issuer = config.get_optional_string("idpIssuer")
        want_response_signed = config.get_optional_bool("wantAuthnResponseSigned")
        want_assertions_signed = config.get_optional_bool("wantAssertionsSigned")
        if want_response_signed is False and want_assertions_signed is False:
            raise config.error(
                "wantAssertionsSigned", "the response or its assertion must be signed"
            )
        skew_ms = config.get_optional_number("acceptedClockSkewMs")
        if skew_ms is not None and not 0 <= skew_ms <= 300_000:
            raise config.error("acceptedClockSkewMs", "expected 0 to 300000 milliseconds")
        signature_algorithm = _algorithm(config, "signatureAlgorithm", _SIGNATURES)
        digest_algorithm = _algorithm(config, "digestAlgorithm", _DIGESTS)
        identifier_format = config.get_optional_string("identifierFormat")
        attributes = {
            field: (name,) if name else _DEFAULT_ATTRIBUTES[field]
            for field in _DEFAULT_ATTRIBUTES
            for name in [config.get_optional_string(f"{field}Attribute")]
        }
        private_key = config.get_optional_string("privateKey")
        public_cert = config.get_optional_string("publicCert")
        if private_key and not public_cert:
            raise config.error("publicCert", "required with privateKey, for the SP metadata")
        authn_context = tuple(config.get_optional_string_list("authnContext") or ())
        config.get_optional_string("logoutUrl")  # Backstage's logout never calls the IdP
        config.get_optional_string("decryptionPvk")  # encrypted assertions are refused
        return cls(
            entry_point=entry_point,
            issuer=issuer,
            audience=audience,
            cert=cert,
            metadata_url=metadata_url,
            idp_issuer=idp_issuer,
            want_response_signed=want_response_signed,
            want_assertions_signed=want_assertions_signed,
            skew=int((skew_ms or 0) / 1000),
            signature_algorithm=signature_algorithm,
            digest_algorithm=digest_algorithm,
            identifier_format=identifier_format,
            attributes=attributes,
            private_key=private_key,
            public_cert=public_cert,
            authn_context=authn_context,
        )


def _algorithm(config: Config, key: str, known: Mapping[str, str]) -> str:
    value = config.get_optional_string(key) or "sha256"
    if value not in known:
        raise config.error(key, f"expected one of {', '.join(known)}")
    return known[value]


class KeyFiles:
    """PEM values written to a private directory: pysaml2 and xmlsec1 read keys from files."""

    def __init__(self) -> None:
        self.directory: str | None = None

    def write(self, name: str, value: str) -> str:
        """Write ``value`` as PEM (a key when ``name`` says so) to a 0600 file; its path."""
        if self.directory is None:
            self.directory = tempfile.mkdtemp(prefix="wsgiauth-saml-")  # mode 0700
            atexit.register(shutil.rmtree, self.directory, True)
        path = os.path.join(self.directory, name)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(pem(value, "PRIVATE KEY" if "key" in name else "CERTIFICATE"))
        return path


def pem(value: str, label: str) -> str:
    """A PEM block from config: whole PEM, or its base64 body alone (Backstage's ``cert``)."""
    value = value.strip()
    if value.startswith("-----BEGIN"):
        return value + "\n"
    body = "".join(value.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def cert_body(value: str) -> str:
    """The base64 body of a certificate, as metadata's ``X509Certificate`` holds it."""
    return "".join(
        line for line in pem(value, "CERTIFICATE").splitlines() if not line.startswith("-----")
    )
