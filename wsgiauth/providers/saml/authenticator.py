"""The SAML identity provider as an OAuth-shaped authenticator, for the popup wire.

``start`` sends an ``AuthnRequest`` (HTTP-Redirect binding, signed when ``privateKey``
is set) whose ID is derived from the flow nonce, with the ``state`` as ``RelayState``.
The IdP POSTs the ``Response`` to ``handler/frame``; the route handlers check the flow
cookie against the ``RelayState``, then :meth:`SamlAuthenticator.authenticate` runs
:mod:`.verification`'s refusals around pysaml2 (signatures, conditions, the skew) and
remembers the assertion ID until it expires (:class:`~wsgiauth.oauth.ReplayStore`, the
configured database). There is no refresh token: the profile is the session, kept in
a sealed cookie by the route handlers. The SP metadata is an extra route.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from xml.sax.saxutils import quoteattr

from webob import Response

from ...oauth import AuthenticationError
from ...oauth import MemoryReplayStore
from ...oauth import OAuthAuthenticatorResult
from ...oauth import OAuthSession
from ...oauth import OAuthStartResponse
from ...oauth import ProbeTarget
from ...oauth import ProfileInfo
from ...oauth import ServiceUnavailableError
from .config import DSIG_NS
from .config import KeyFiles
from .config import SamlSettings
from .config import cert_body
from .config import load_saml2
from .verification import check_binding
from .verification import check_structure
from .verification import named_issuers
from .verification import posted_response
from .verification import refusal_reason
from .verification import request_id

if TYPE_CHECKING:
    from typing import Self

    from webob import Request

    from ...oauth import Config
    from ...oauth import HttpClient
    from ...oauth import OAuthAuthenticateInput
    from ...oauth import OAuthRefreshInput
    from ...oauth import OAuthStartInput
    from ...oauth import ReplayStore

__all__ = ["METADATA_MAX_AGE", "SamlAuthenticator"]

_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
#: How long a replayed assertion ID is remembered when the assertion names no end.
_DEFAULT_ASSERTION_LIFETIME = 24 * 3600
#: How long IdP metadata fetched from ``metadataUrl`` is used before it is fetched again.
METADATA_MAX_AGE = 24 * 3600


class SamlAuthenticator:
    """One SAML identity provider, as an OAuth-shaped authenticator for the popup wire."""

    persist_scopes = False
    required_scopes: tuple[str, ...] = ()
    #: SAML has no refresh token: the route handlers keep a sealed session instead.
    session_cookie = True
    #: The IdP POSTs the response from its own site (HTTP-POST binding).
    posts_callback = True
    #: Where assertion IDs are remembered; the provider module binds the app's.
    replay_store: ReplayStore = MemoryReplayStore()

    def __init__(self, *, config: Config, callback_url: str, http: HttpClient) -> None:
        self._saml2, self._xmlsec = load_saml2(config)
        settings = SamlSettings.from_config(config)
        self._settings = settings
        self._http = http
        self.callback_url = callback_url
        self.entry_point = settings.entry_point
        self.issuer = settings.issuer
        self.audience = settings.audience
        self.metadata_url = settings.metadata_url
        self.idp_issuer = settings.idp_issuer
        #: ``cert`` without ``idpIssuer`` (passport-saml's way): the Issuer is not compared,
        #: the signature must verify with ``cert`` whatever IdP the response names.
        self._any_issuer = settings.cert is not None and settings.idp_issuer is None
        self.skew = settings.skew
        self.signature_algorithm = settings.signature_algorithm
        self.digest_algorithm = settings.digest_algorithm
        self.identifier_format = settings.identifier_format
        self.attributes = settings.attributes
        self._files = KeyFiles()
        key, cert = settings.private_key, settings.public_cert
        self._key_file = self._files.write("sp-key.pem", key) if key else None
        self._cert_file = self._files.write("sp-cert.pem", cert) if cert else None
        self._lock = threading.Lock()
        self._metadata: bytes | None = None
        self._idp_certs: tuple[str, ...] = (cert_body(settings.cert),) if settings.cert else ()
        self._loaded_at = 0.0
        self._sp_config: Any = self._build_config() if settings.cert else None
        if self._sp_config is not None:
            self._loaded_at = float("inf")

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.saml``; every bad key fails here, at startup."""
        return cls(config=config, callback_url=callback_url, http=http)

    # -- pysaml2 configuration ----------------------------------------------------------

    def _idp_metadata(self, entity_id: str) -> str:
        """The IdP as pysaml2 wants it: metadata made from ``entryPoint`` and its certs."""
        keys = "".join(
            '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
            f"<ds:X509Certificate>{cert}</ds:X509Certificate>"
            "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
            for cert in self._idp_certs
        )
        return (
            f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"'
            f' xmlns:ds="{DSIG_NS}" entityID={quoteattr(entity_id)}>'
            "<md:IDPSSODescriptor"
            ' protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f"{keys}<md:SingleSignOnService Binding={quoteattr(_REDIRECT)}"
            f" Location={quoteattr(self.entry_point)}/>"
            "</md:IDPSSODescriptor></md:EntityDescriptor>"
        )

    def _build_config(self, *, entity_id: str | None = None, idp_ids: Sequence[str] = ()) -> Any:
        """pysaml2's SP config, as ``entity_id`` (default ``issuer``).

        Its IdP metadata names ``idp_ids`` (default ``idpIssuer``), each with the IdP's
        certificates and nothing else: pysaml2 checks a signature with the certificates
        of the entity the signed element names as its Issuer. Without ``idpIssuer`` (and
        before ``metadataUrl`` names it), ``entryPoint`` stands in: an ``AuthnRequest``
        needs only the IdP's SSO location.
        """
        settings = self._settings
        sp: dict[str, Any] = {
            "endpoints": {"assertion_consumer_service": [(self.callback_url, _POST)]},
            "want_response_signed": settings.want_response_signed is not False,
            "want_assertions_signed": settings.want_assertions_signed is not False,
            "authn_requests_signed": self._key_file is not None,
            "allow_unsolicited": False,
            "signing_algorithm": self.signature_algorithm,
            "digest_algorithm": self.digest_algorithm,
        }
        if self.identifier_format:
            sp["name_id_format"] = [self.identifier_format]
        if settings.authn_context:
            # passport-saml's RequestedAuthnContext, with its default racComparison.
            sp["requested_authn_context"] = {
                "authn_context_class_ref": list(settings.authn_context),
                "comparison": "exact",
            }
        pysaml2_settings: dict[str, Any] = {
            "entityid": entity_id or self.issuer,
            "xmlsec_binary": self._xmlsec,
            "service": {"sp": sp},
            "metadata": {
                "inline": [
                    self._idp_metadata(idp_id)
                    for idp_id in idp_ids or [self.idp_issuer or self.entry_point]
                ]
            },
            # Never a key or certificate carried in the response (KeyInfo): pysaml2's
            # default, pinned. An element that names no Issuer has no key to verify with.
            "only_use_keys_in_metadata": True,
            "accepted_time_diff": self.skew,
            "allow_unknown_attributes": True,
        }
        if self._key_file and self._cert_file:
            pysaml2_settings["key_file"] = self._key_file
            pysaml2_settings["cert_file"] = self._cert_file
        config = self._saml2.config.SPConfig()
        config.load(pysaml2_settings)
        return config

    def _config(self) -> Any:
        """The SP config; with ``metadataUrl``, from metadata fetched at most once a day."""
        with self._lock:
            if self._sp_config is None or time.time() - self._loaded_at > METADATA_MAX_AGE:
                self._load_metadata()
            return self._sp_config

    def _load_metadata(self) -> None:
        from defusedxml import ElementTree  # type: ignore[import-untyped]  # noqa: PLC0415

        response = self._http.request("GET", str(self.metadata_url))
        if not response.ok:
            raise ServiceUnavailableError("The SAML identity provider's metadata is unavailable")
        try:
            root = ElementTree.fromstring(response.body)
        except Exception as error:
            raise ServiceUnavailableError(
                "The SAML identity provider's metadata is not valid XML"
            ) from error
        md = "{urn:oasis:names:tc:SAML:2.0:metadata}"
        certs = tuple(
            "".join((node.text or "").split())
            for descriptor in root.iter(f"{md}IDPSSODescriptor")
            for key in descriptor.iter(f"{md}KeyDescriptor")
            if key.get("use") in (None, "signing")
            for node in key.iter(f"{{{DSIG_NS}}}X509Certificate")
        )
        entity_id = root.get("entityID")
        if not certs or not entity_id:
            raise ServiceUnavailableError(
                "The SAML identity provider's metadata has no entity ID or signing certificate"
            )
        self.idp_issuer = self.idp_issuer or entity_id
        self._idp_certs = certs
        self._sp_config = self._build_config()
        self._loaded_at = time.time()

    # -- the flow -------------------------------------------------------------------------

    def start(self, input: OAuthStartInput) -> OAuthStartResponse:  # noqa: A002 (protocol name)
        """The IdP's ``entryPoint`` with an ``AuthnRequest`` bound to this flow."""
        client = self._saml2.client.Saml2Client(config=self._config())
        _, info = client.prepare_for_authenticate(
            entityid=self.idp_issuer or self.entry_point,
            relay_state=input.state,
            binding=_REDIRECT,
            message_id=request_id(input.nonce),
            sign=self._key_file is not None,
            sigalg=self.signature_algorithm if self._key_file else None,
            digest_alg=self.digest_algorithm,
        )
        return OAuthStartResponse(dict(info["headers"])["Location"])

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Verify the posted ``Response`` and read the profile from its one assertion."""
        xml = posted_response(input.request)
        root = check_structure(xml)
        expected = request_id(input.nonce)
        response = self._parse(xml, expected, named_issuers(root))
        assertion = response.assertion
        check_binding(response, assertion, expected, self.callback_url, self.audience)
        issuer = (assertion.issuer.text or "").strip() if assertion.issuer is not None else ""
        self._check_replay(assertion, self.idp_issuer or issuer)
        profile = self._profile(response, assertion)
        session = OAuthSession(access_token="", refresh_token=json.dumps(profile))  # noqa: S106
        return OAuthAuthenticatorResult(full_profile=profile, session=session)

    def _parse(self, xml: bytes, expected: str, issuers: Sequence[str]) -> Any:
        config = self._config()
        if self._any_issuer:
            # No idpIssuer: the IdP is whoever the response names, unverified, with the
            # configured cert as its only key. That is safe because the signature must
            # then verify with that cert; the name is not compared (as passport-saml).
            config = self._build_config(entity_id=self.audience, idp_ids=issuers)
        elif self.audience != self.issuer:
            # pysaml2 checks the audience against the entity ID: parse as the audience.
            config = self._build_config(entity_id=self.audience)
        client = self._saml2.client.Saml2Client(config=config)
        encoded = base64.b64encode(xml).decode("ascii")
        try:
            response = client.parse_authn_request_response(
                encoded, _POST, outstanding={expected: "/"}
            )
        except Exception as error:  # pysaml2 raises anything from Exception to its own errors
            raise AuthenticationError(f"SAML response refused: {refusal_reason(error)}") from error
        if response is None or response.assertion is None:
            raise AuthenticationError("SAML response refused: it has no valid assertion")
        return response

    def _check_replay(self, assertion: Any, idp: str) -> None:
        """An assertion is good once: a captured response cannot sign in again.

        Keyed on ``idp`` (``idpIssuer``, or else the signed assertion's Issuer) and the ID.
        """
        ends = [
            data.not_on_or_after
            for confirmation in assertion.subject.subject_confirmation
            for data in [confirmation.subject_confirmation_data]
            if data is not None and data.not_on_or_after
        ]
        if assertion.conditions is not None and assertion.conditions.not_on_or_after:
            ends.append(assertion.conditions.not_on_or_after)
        tz = self._saml2.time_util
        expires = max((tz.str_to_time(end) for end in ends), default=None)
        expires_at = (
            time.mktime(expires) - time.timezone
            if expires is not None
            else time.time() + _DEFAULT_ASSERTION_LIFETIME
        )
        key = hashlib.sha256(f"saml\x00{idp}\x00{assertion.id}".encode()).hexdigest()
        if not self.replay_store.first_use(key, expires_at + self.skew):
            raise AuthenticationError("SAML response refused: the assertion was already used")

    def _profile(self, response: Any, assertion: Any) -> dict[str, Any]:
        attributes: dict[str, list[str]] = {}
        for statement in assertion.attribute_statement:
            for attribute in statement.attribute:
                values = [value.text or "" for value in attribute.attribute_value]
                attributes.setdefault(attribute.name, []).extend(values)
        name_id = assertion.subject.name_id
        sessions = [statement.session_index for statement in assertion.authn_statement]
        profile: dict[str, Any] = {
            "issuer": assertion.issuer.text if assertion.issuer is not None else None,
            "nameID": name_id.text.strip() if name_id is not None and name_id.text else None,
            "nameIDFormat": name_id.format if name_id is not None else None,
            "sessionIndex": next((index for index in sessions if index), None),
            "attributes": attributes,
        }
        for field, names in self.attributes.items():
            found: list[str] = next(
                (attributes[name] for name in names if attributes.get(name)), []
            )
            profile[field] = found if field == "groups" else (found[0] if found else None)
        return profile

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """The session kept at sign-in (sealed, and refused after ``sessionDuration``)."""
        try:
            profile = json.loads(input.refresh_token)
        except ValueError:
            raise AuthenticationError("The SAML session is invalid") from None
        if not isinstance(profile, dict):
            raise AuthenticationError("The SAML session is invalid")
        session = OAuthSession(access_token="", refresh_token=input.refresh_token)  # noqa: S106
        return OAuthAuthenticatorResult(full_profile=profile, session=session)

    def probe_targets(self) -> list[ProbeTarget]:
        """The IdP's metadata (an XML document, not OpenID discovery), when it has a URL."""
        if self.metadata_url is None:
            return []
        return [ProbeTarget("SAML metadata", str(self.metadata_url), "document")]

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Backstage's: ``email`` and ``displayName`` of the full profile."""
        profile = result.full_profile
        email, name = profile.get("email"), profile.get("displayName")
        return ProfileInfo(
            email=email if isinstance(email, str) else None,
            display_name=name if isinstance(name, str) else None,
        )

    # -- metadata -------------------------------------------------------------------------

    def routes(self) -> Mapping[str, Callable[[Request], Response]]:
        """``<auth base>/<id>/metadata``: the SP metadata for the IdP's admin."""
        return {"metadata": self.metadata}

    def metadata(self, request: Request) -> Response:
        """This SP's entity ID, ACS URL (HTTP-POST) and, when set, its certificate."""
        if self._metadata is None:  # made once: it depends on config alone
            create = self._saml2.metadata.create_metadata_string
            self._metadata = create(None, config=self._build_config(), valid=None)
        response = Response(body=self._metadata, content_type="application/samlmetadata+xml")
        response.cache_control = "no-cache"
        return response
