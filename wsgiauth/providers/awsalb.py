"""AWS Application Load Balancer sign-in (Backstage's ``awsalb`` module).

Read against ``@backstage/plugin-auth-backend-module-aws-alb-provider`` 0.4.20,
``dist/authenticator.cjs.js`` (``awsAlbAuthenticator``), ``dist/helpers.cjs.js``
(``makeProfileInfo``, ``getPublicKeyEndpoint``, ``provisionKeyCache``) and
``dist/resolvers.cjs.js`` (``awsAlbSignInResolvers``), and Backstage's documented
config (https://backstage.io/docs/auth/aws-alb/provider):

- config ``issuer`` and ``region`` (required), ``signer`` (the ALB's ARN; optional,
  as in Backstage, but without it any ALB of the region could sign in anyone: set it;
  a warning is logged at startup when it is missing),
  ``signIn``, and ``sessionDuration``, which the docs list and Backstage's proxy
  handlers never read (nor does wsgiauth);
- headers ``x-amzn-oidc-data`` (the ALB's JWT) and ``x-amzn-oidc-accesstoken``, both
  required;
- the JWT: signed with the key the ALB publishes under its ``kid`` at
  ``https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`` (a PEM; in the
  ``us-gov`` regions ``https://s3-<region>.amazonaws.com/aws-elb-public-keys-prod-<region>/<kid>``),
  ``iss`` equal to ``issuer``, the header's ``signer`` equal to ``signer``, an ``email``;
  keys kept for an hour (Backstage's ``NodeCache`` ``stdTTL``);
- ALB pads its base64url segments with ``=``; they are read as sent (jose in Node
  accepts the padding too) and the signature covers them as sent;
- the result is ``{fullProfile, accessToken, expiresInSeconds}``, ``providerInfo``
  ``{accessToken, expiresInSeconds}`` where ``expiresInSeconds`` is, as in Backstage,
  the token's ``exp`` (an epoch time, whatever its name says);
- the profile (``makeProfileInfo``): the email, the ``picture`` claim, the ``name``
  claim or else the email's local part; a missing picture is looked for in the
  access token's claims, decoded without verification, as Backstage does;
- the ``emailMatchingUserEntityProfileEmail`` resolver is the ALB module's own: the
  ``spec.profile.email`` of a User, with no retry without a ``+tag``; the common ones
  are offered too.

Deliberate differences: only ES256 is accepted (jose took whatever the key type
allowed, which for an ALB's P-256 key is ES256 alone), ``exp`` is required (ALB always
sends it), and a ``kid`` must look like a key id (letters, digits, ``.``, ``_``,
``-``); keys are fetched through the one HTTP client and cached per ``kid`` in
:class:`JwksKeys` (at most :data:`MAX_KIDS` kids, an unseen ``kid`` fetched at most
once per :data:`NEW_KID_INTERVAL`, an unknown one remembered as unknown); a key
endpoint that cannot be reached or answers 5xx is a 503, not a 401 (Backstage made
every failure a 401), so that an outage does not sign everyone out; an access
token that is not a JWT leaves the picture empty instead of failing the sign-in.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ..proxy import AuthenticationError
from ..proxy import JwksKeys
from ..proxy import ProfileInfo
from ..proxy import ProviderModule
from ..proxy import ProxyAuthenticatorResult
from ..proxy import ServiceUnavailableError
from ..proxy import create_proxy_auth_provider_factory
from ..sign_in import boolean
from ..sign_in import create_sign_in_resolver_factory
from ..sign_in import options_schema

if TYPE_CHECKING:
    from typing import Self

    from webob import Request

    from ..proxy import Config
    from ..proxy import HttpClient
    from ..sign_in import AuthResolverContext
    from ..sign_in import BackstageSignInResult
    from ..sign_in import SignInInfo
    from ..sign_in import SignInResolver

__all__ = ["AlbKeys", "AwsAlbAuthenticator", "module", "public_key_endpoint"]

log = logging.getLogger(__name__)

ALB_JWT_HEADER = "x-amzn-oidc-data"
ALB_ACCESS_TOKEN_HEADER = "x-amzn-oidc-accesstoken"  # noqa: S105 (a header name)
ALGORITHM = "ES256"
#: The keys of ``auth.providers.awsalb`` besides ``signIn``.
CONFIG_KEYS = ("issuer", "region", "sessionDuration", "signer")
#: Seconds a key is kept (Backstage's ``NodeCache({stdTTL: 3600})``).
KEY_MAX_AGE = 3600.0
#: The most kids whose keys are kept; the least recently used is dropped beyond.
MAX_KIDS = 32
#: The least time between fetches for two kids never seen before (a flood of made-up
#: kids must not become a flood of requests to AWS).
NEW_KID_INTERVAL = 1.0
FAILED = "Exception occurred during JWT processing"
_KID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


def public_key_endpoint(region: str) -> str:
    """Where the ALBs of ``region`` publish their keys (``getPublicKeyEndpoint``)."""
    region = quote(region, safe="")
    if region.startswith("us-gov"):
        return f"https://s3-{region}.amazonaws.com/aws-elb-public-keys-prod-{region}"
    return f"https://public-keys.auth.elb.{region}.amazonaws.com"


class AlbKeys:
    """The ALB's public keys, each fetched by ``kid`` as a PEM and kept in a :class:`JwksKeys`.

    :meth:`key` answers the key of a ``kid``, None when the endpoint has none (a 4xx),
    and raises :class:`ServiceUnavailableError` when it cannot be asked.
    """

    def __init__(
        self,
        endpoint: str,
        http: HttpClient,
        *,
        max_kids: int = MAX_KIDS,
        new_kid_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.http = http
        self.max_kids = max_kids
        #: None reads :data:`NEW_KID_INTERVAL` at each use.
        self.new_kid_interval = new_kid_interval
        self._clock = clock
        self._by_kid: OrderedDict[str, JwksKeys] = OrderedDict()
        self._last_new: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The key of ``kid``; None when the ALB's endpoint does not know it."""
        keys = self._keys_of(kid)
        if keys is None:
            return None
        return keys.key(kid)

    def _keys_of(self, kid: str) -> JwksKeys | None:
        with self._lock:
            keys = self._by_kid.get(kid)
            if keys is not None:
                self._by_kid.move_to_end(kid)
                return keys
            now = self._clock()
            interval = NEW_KID_INTERVAL if self.new_kid_interval is None else self.new_kid_interval
            if self._last_new is not None and now - self._last_new < interval:
                return None  # another unseen kid was just fetched: this one waits its turn
            self._last_new = now
            keys = JwksKeys(
                key_source=lambda: self._fetch(kid),
                algorithms=(ALGORITHM,),
                max_age=KEY_MAX_AGE,
            )
            self._by_kid[kid] = keys
            while len(self._by_kid) > self.max_kids:
                self._by_kid.popitem(last=False)
            return keys

    def _fetch(self, kid: str) -> list[dict[str, Any]]:
        """The key of ``kid`` as a one-key JWKS; none when the endpoint has no such key."""
        url = f"{self.endpoint}/{quote(kid, safe='')}"
        response = self.http.request("GET", url)  # 5xx and faults raise a 503
        if 400 <= response.status < 500:
            # 404 (or S3's 403 for a missing object): no such key. Kept as such for the
            # max-age; an unknown kid is asked again at most once per refetch interval.
            return []
        if not response.ok:
            raise ServiceUnavailableError(f"it answered {response.status}")
        try:
            public_key = load_pem_public_key(response.body)
        except ValueError as error:
            raise ServiceUnavailableError("its answer is not a PEM public key") from error
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise ServiceUnavailableError("its answer is not a P-256 public key")
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(public_key, as_dict=True)
        return [{**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}]


class AwsAlbAuthenticator:
    """Backstage's ``awsAlbAuthenticator``: the ALB's signed user claims."""

    def __init__(self, *, issuer: str, signer: str | None, keys: AlbKeys) -> None:
        self.issuer = issuer
        self.signer = signer
        self.keys = keys

    @classmethod
    def from_config(cls, config: Config, *, http: HttpClient) -> Self:
        """Build from ``auth.providers.awsalb``: ``issuer``, ``signer``, ``region``."""
        issuer = config.get_string("issuer")
        signer = config.get_optional_string("signer")
        if not signer:
            # The key endpoint is the region's, shared by every ALB of every AWS account.
            log.warning(
                "auth.providers.awsalb.signer is not set: a token signed by any ALB in %s "
                "(anyone's) is accepted; set it to your load balancer's ARN",
                config.get_optional_string("region"),
            )
        region = config.get_string("region")
        if not _REGION.fullmatch(region):
            raise config.error("region", f"not an AWS region name (like us-west-2): {region!r}")
        return cls(issuer=issuer, signer=signer, keys=AlbKeys(public_key_endpoint(region), http))

    def authenticate(self, request: Request) -> ProxyAuthenticatorResult:
        """The ALB's verified claims; 401 without the headers or when a check fails."""
        token = request.headers.get(ALB_JWT_HEADER)
        access_token = request.headers.get(ALB_ACCESS_TOKEN_HEADER)
        if not token:
            raise AuthenticationError(f"Missing ALB OIDC header: {ALB_JWT_HEADER}")
        if not access_token:
            raise AuthenticationError(f"Missing ALB OIDC header: {ALB_ACCESS_TOKEN_HEADER}")
        claims = self.verify(token)
        email: str = claims["email"]
        full_profile = {
            "provider": "unknown",
            "id": claims.get("sub"),
            "displayName": claims.get("name"),
            "username": email.split("@")[0],
            "name": {
                "familyName": claims.get("family_name"),
                "givenName": claims.get("given_name"),
            },
            "emails": [{"value": email}],
            "photos": [{"value": claims.get("picture")}],
        }
        return ProxyAuthenticatorResult(
            result={
                "fullProfile": full_profile,
                "accessToken": access_token,
                "expiresInSeconds": claims["exp"],
            },
            provider_info={"accessToken": access_token, "expiresInSeconds": claims["exp"]},
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of an ALB JWT that passes every check.

        :raises AuthenticationError: the token fails a check (401).
        :raises ServiceUnavailableError: the key endpoint cannot be asked (503).
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"{FAILED}: {error}") from error
        if header.get("alg") != ALGORITHM:
            raise AuthenticationError(f"{FAILED}: the algorithm must be {ALGORITHM}")
        kid = header.get("kid")
        if not kid:
            raise AuthenticationError("No key id was specified in header")
        if not isinstance(kid, str) or not _KID.fullmatch(kid):
            raise AuthenticationError(f"{FAILED}: the key id is malformed")
        try:
            key = self.keys.key(kid)
        except ServiceUnavailableError as error:
            cause = error.__cause__
            detail = cause.message if isinstance(cause, ServiceUnavailableError) else error.message
            raise ServiceUnavailableError(
                f"Unable to fetch the AWS ALB public key {kid!r} from {self.keys.endpoint}: "
                f"{detail}"
            ) from error
        if key is None:
            raise AuthenticationError(f"{FAILED}: no AWS ALB public key has the id {kid!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=[ALGORITHM], options={"require": ["exp"]}
            )
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"{FAILED}: {error}") from error
        if claims.get("iss") != self.issuer:
            raise AuthenticationError("Issuer mismatch on JWT token")
        if self.signer and header.get("signer") != self.signer:
            raise AuthenticationError("Signer mismatch on JWT token")
        if not claims.get("email") or not isinstance(claims["email"], str):
            raise AuthenticationError("Missing email in the JWT token")
        return claims

    def default_profile_transform(self, result: ProxyAuthenticatorResult) -> ProfileInfo:
        """Backstage's ``makeProfileInfo(fullProfile, accessToken)``."""
        profile = result.result["fullProfile"]
        email = (profile.get("emails") or [{}])[0].get("value")
        picture = (profile.get("photos") or [{}])[0].get("value")
        display_name = profile.get("displayName") or profile.get("username") or profile.get("id")
        if not (email and picture and display_name):
            # The access token's claims, unverified, only fill what the profile lacks.
            extra = _unverified_claims(result.result["accessToken"])
            email = email or _str(extra.get("email"))
            picture = picture or _str(extra.get("picture"))
            display_name = display_name or _str(extra.get("name"))
        return ProfileInfo(email=email, picture=picture, display_name=display_name)


def _unverified_claims(token: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}  # an opaque access token: nothing to add
    return claims if isinstance(claims, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _create_email_matching_user_entity_profile_email(options: dict[str, Any]) -> SignInResolver:
    dangerous = options.get("dangerouslyAllowSignInWithoutUserInCatalog", False)

    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        emails = info.result["fullProfile"].get("emails")
        if not emails:
            raise AuthenticationError("Login failed, user profile does not contain an email")
        email = emails[0]["value"]
        return context.sign_in_with_catalog_user(
            {"filter": {"kind": ["User"], "spec.profile.email": email}},
            dangerous_entity_ref_fallback={"name": email} if dangerous else None,
        )

    return resolve


#: The User whose ``spec.profile.email`` is the ALB's email (the ALB module's own).
email_matching_user_entity_profile_email = create_sign_in_resolver_factory(
    _create_email_matching_user_entity_profile_email,
    options_schema=options_schema({"dangerouslyAllowSignInWithoutUserInCatalog": boolean}),
)

#: The built-in ``awsalb`` provider.
module = ProviderModule(
    provider_id="awsalb",
    factory=create_proxy_auth_provider_factory(AwsAlbAuthenticator, config_keys=CONFIG_KEYS),
    resolvers={"emailMatchingUserEntityProfileEmail": email_matching_user_entity_profile_email},
)
