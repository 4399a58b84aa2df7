"""The GitHub provider (Backstage's ``github`` module), for OAuth apps and GitHub Apps.

Read against ``@backstage/plugin-auth-backend-module-github-provider`` 0.5.9:
``src/authenticator.ts`` (:class:`GithubAuthenticator`), ``src/resolvers.ts`` (the two
resolvers) and ``src/module.ts``, with the ``passport-github2`` strategy it wraps
(``lib/strategy.js``, ``lib/profile.js``: the URLs and the profile shape).

- The browser goes to ``<host>/login/oauth/authorize`` with the ``read:user`` scope
  always requested and granted scopes kept in a cookie (``scopes.persist``); no PKCE,
  ``prompt`` or ``access_type``, as passport sends none to GitHub.
- The code is traded at ``<host>/login/oauth/access_token`` (credentials in the form),
  and the user read from ``api.github.com/user`` (``<host>/api/v3/user`` on GitHub
  Enterprise, ``enterpriseInstanceUrl``).
- An OAuth app's token (and a GitHub App's, with expiring tokens off) never expires and
  comes with no refresh token. As Backstage does, the session keeps the access token
  itself in the refresh-token cookie, prefixed ``access-token-v2.``; ``/refresh`` reads
  the user again with it, so it works until the token is revoked. A GitHub App's
  expiring token is refreshed at the token endpoint.

One difference: the primary email also comes from ``/user/emails``, which a user's
private email needs. Backstage's strategy is built without ``scope``, so
passport-github2's email lookup never runs there and a private email never reaches
the profile (backstage/backstage#24685, #29575). Here it runs on every profile read;
a token that may not read emails (no ``user:email`` scope, or a GitHub App without
the email permission) gets 403/404, and the profile keeps ``/user``'s public email.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING
from typing import Any

from ..errors import AuthenticationError
from ..errors import NotFoundError
from ..errors import ServiceUnavailableError
from ..oauth import ClientCredentials
from ..oauth import OAuthAuthenticatorResult
from ..oauth import OAuthEndpointAuthenticator
from ..oauth import OAuthSession
from ..oauth import ProfileInfo
from ..oauth import ProviderModule
from ..oauth import create_oauth_provider_factory
from ..oauth import read_absolute_url
from ..oauth import transform_profile
from ..sign_in import TokenParams
from ..sign_in import boolean
from ..sign_in import create_sign_in_resolver_factory
from ..sign_in import options_schema

if TYPE_CHECKING:
    from typing import Self

    from ..oauth import Config
    from ..oauth import HttpClient
    from ..oauth import OAuthAuthenticateInput
    from ..oauth import OAuthRefreshInput
    from ..sign_in import AuthResolverContext
    from ..sign_in import BackstageSignInResult
    from ..sign_in import SignInInfo
    from ..sign_in import SignInResolver

__all__ = [
    "ACCESS_TOKEN_PREFIX",
    "GITHUB_USER_ID_ANNOTATION",
    "GithubAuthenticator",
    "module",
    "user_id_matching_user_entity_annotation",
    "username_matching_user_entity_name",
]

#: Marks a refresh-token cookie that holds a non-expiring access token (Backstage's value).
ACCESS_TOKEN_PREFIX = "access-token-v2."  # noqa: S105 - a marker, not a secret
#: The annotation ``userIdMatchingUserEntityAnnotation`` matches against the user's node ID.
GITHUB_USER_ID_ANNOTATION = "github.com/user-id"
#: Settings a GitHub environment reads besides the common ones.
CONFIG_KEYS = ("clientId", "clientSecret", "enterpriseInstanceUrl")


class GithubAuthenticator(OAuthEndpointAuthenticator):
    """Backstage's ``githubAuthenticator``: github.com or GitHub Enterprise."""

    persist_scopes = True
    required_scopes: tuple[str, ...] = ("read:user",)
    #: Backstage asks for ``accessType: offline`` and ``prompt: consent``, but the GitHub
    #: strategy drops both (it maps no authorization parameters) and sends no PKCE.
    pkce = False
    keep_requested_scope = True

    def __init__(
        self,
        *,
        credentials: ClientCredentials,
        callback_url: str,
        http: HttpClient,
        enterprise_instance_url: str | None = None,
    ) -> None:
        super().__init__(credentials=credentials, callback_url=callback_url, http=http)
        web = enterprise_instance_url or "https://github.com"
        api = f"{enterprise_instance_url}/api/v3" if enterprise_instance_url else None
        self.authorize_url = f"{web}/login/oauth/authorize"
        self.token_url = f"{web}/login/oauth/access_token"
        self.user_url = f"{api or 'https://api.github.com'}/user"
        self.emails_url = f"{self.user_url}/emails"

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from ``auth.providers.github.<env>``: ``clientId``, ``clientSecret``, ..."""
        instance = read_absolute_url(config, "enterpriseInstanceUrl", required=False)
        return cls(
            # node-oauth (under passport) sends the client id and secret in the form.
            credentials=ClientCredentials(
                client_id=config.get_string("clientId"),
                client_secret=config.get_string("clientSecret"),
                auth_method="client_secret_post",
            ),
            callback_url=callback_url,
            http=http,
            enterprise_instance_url=instance.rstrip("/") if instance else None,
        )

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Trade the code, read the user; a token that never expires becomes the session."""
        session = self.trade_code(input)
        if not session.refresh_token and not session.expires_in_seconds:
            session = replace(session, refresh_token=ACCESS_TOKEN_PREFIX + session.access_token)
        return OAuthAuthenticatorResult(full_profile=self.fetch_profile(session), session=session)

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult:  # noqa: A002
        """Re-read the user with a kept access token, or refresh a GitHub App's token."""
        if not input.refresh_token.startswith(ACCESS_TOKEN_PREFIX):
            return super().refresh(input)
        if not input.scope_already_granted:
            raise AuthenticationError(
                "Refresh failed, session has not been granted the requested scope"
            )
        session = OAuthSession(
            access_token=input.refresh_token.removeprefix(ACCESS_TOKEN_PREFIX),
            token_type="bearer",  # noqa: S106 - a token type, not a secret
            scope=input.scope,
            refresh_token=input.refresh_token,  # no expiry: the same cookie again
        )
        return OAuthAuthenticatorResult(full_profile=self.fetch_profile(session), session=session)

    def fetch_profile(self, session: OAuthSession) -> dict[str, Any]:
        """The user as passport-github2 shapes it (``username``, ``nodeId``, ``emails`` ...)."""
        access_token = session.access_token
        user = self._api(self.user_url, access_token, "user profile")
        if not isinstance(user, dict):
            raise ServiceUnavailableError("GitHub returned a user profile that is not an object")
        profile: dict[str, Any] = {
            "provider": "github",
            "id": str(user.get("id")),
            "nodeId": user.get("node_id"),
            "displayName": user.get("name"),
            "username": user.get("login"),
            "profileUrl": user.get("html_url"),
        }
        if user.get("email"):
            profile["emails"] = [{"value": user["email"]}]
        if user.get("avatar_url"):
            profile["photos"] = [{"value": user["avatar_url"]}]
        primary = self._primary_email(access_token)
        if primary is not None:
            profile["emails"] = [primary]
        profile["_json"] = user
        return profile

    def _primary_email(self, access_token: str) -> dict[str, Any] | None:
        """``{"value", "verified"}`` of the primary email, or None if the token may not see it."""
        emails = self._api(self.emails_url, access_token, "user emails", optional=True)
        if emails is None:
            return None
        if not isinstance(emails, list):
            raise ServiceUnavailableError("GitHub returned user emails that are not a list")
        for item in emails:
            if isinstance(item, dict) and item.get("primary") and item.get("email"):
                return {"value": item["email"], "verified": item.get("verified")}
        return None

    def _api(self, url: str, access_token: str, what: str, *, optional: bool = False) -> Any:
        """GET a GitHub API document; 401 is a revoked token, 403/404 None when ``optional``."""
        response = self.http.request(
            "GET",
            url,
            headers={
                "Authorization": f"Bearer {access_token}",
                "Accept": "application/vnd.github+json",
            },
        )
        if response.status == 401:
            raise AuthenticationError("Invalid access token")
        if optional and response.status in (403, 404):
            return None
        if not response.ok:
            raise AuthenticationError(f"Failed to fetch {what}, GitHub answered {response.status}")
        return response.json()

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo:
        """Backstage's passport transform: first email (unless unverified), photo, name.

        GitHub issues no ID token, so none is read (Backstage would read
        ``session.idToken``, always empty here).
        """
        return transform_profile(result.full_profile, None)


# -- sign-in resolvers (src/resolvers.ts) ----------------------------------------------------

DANGEROUS = "dangerouslyAllowSignInWithoutUserInCatalog"
_DANGEROUS_ONLY = options_schema({DANGEROUS: boolean})


def _profile_field(info: SignInInfo, field: str, missing: str) -> str:
    value = getattr(info.result, "full_profile", {}).get(field)
    if not isinstance(value, str) or not value:
        raise AuthenticationError(missing)
    return value


def _create_username_matching_user_entity_name(options: dict[str, Any]) -> SignInResolver:
    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        username = _profile_field(
            info, "username", "GitHub user profile does not contain a username"
        )
        return context.sign_in_with_catalog_user(
            {"entityRef": {"name": username}},
            dangerous_entity_ref_fallback={"name": username} if options.get(DANGEROUS) else None,
        )

    return resolve


#: The User named like the GitHub login (``usernameMatchingUserEntityName``).
username_matching_user_entity_name = create_sign_in_resolver_factory(
    _create_username_matching_user_entity_name, options_schema=_DANGEROUS_ONLY
)


def _user_ref(kind: str, namespace: str, name: str) -> str:
    """``stringifyEntityRef``: ``kind:namespace/name``, lowercased."""
    return f"{kind}:{namespace}/{name}".lower()


def _create_user_id_matching_user_entity_annotation(options: dict[str, Any]) -> SignInResolver:
    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        user_id = _profile_field(info, "nodeId", "GitHub user profile does not contain a user ID")
        query = {"annotations": {GITHUB_USER_ID_ANNOTATION: user_id}}
        try:
            entity = context.find_catalog_user(query)
        except NotFoundError:
            if not options.get(DANGEROUS):
                raise
            ref = _user_ref("User", "default", user_id)  # signInWithoutCatalogUser
            return context.issue_token(TokenParams(claims={"sub": ref, "ent": [ref]}))
        # The catalog compares values without case; node IDs are case-sensitive.
        metadata = entity["metadata"]
        if (metadata.get("annotations") or {}).get(GITHUB_USER_ID_ANNOTATION) != user_id:
            raise AuthenticationError("GitHub user ID does not match the catalog user")
        ref = _user_ref(entity["kind"], metadata.get("namespace") or "default", metadata["name"])
        ownership = context.resolve_ownership_entity_refs(entity)
        return context.issue_token(TokenParams(claims={"sub": ref, "ent": ownership}))

    return resolve


#: The User whose ``github.com/user-id`` annotation is the GitHub node ID, exactly.
user_id_matching_user_entity_annotation = create_sign_in_resolver_factory(
    _create_user_id_matching_user_entity_annotation, options_schema=_DANGEROUS_ONLY
)

#: The built-in ``github`` provider.
module = ProviderModule(
    provider_id="github",
    factory=create_oauth_provider_factory(GithubAuthenticator, config_keys=CONFIG_KEYS),
    resolvers={
        "usernameMatchingUserEntityName": username_matching_user_entity_name,
        "userIdMatchingUserEntityAnnotation": user_id_matching_user_entity_annotation,
    },
)
