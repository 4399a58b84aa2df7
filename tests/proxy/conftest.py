"""A header-based proxy provider for the proxy tests, and an app that mounts it.

``HeaderAuthenticator`` trusts one request header to name the caller's email, as
an authenticating proxy in front of the app would set it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import webtest

from tests.conftest import base_config
from tests.conftest import inner_app
from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.errors import AuthenticationError
from wsgiauth.middleware import AuthMiddleware
from wsgiauth.proxy import ProfileInfo
from wsgiauth.proxy import ProviderModule
from wsgiauth.proxy import ProxyAuthenticatorResult

CATALOG = Path(__file__).parent.parent / "files" / "catalog"
#: Finds the catalog user whose spec.profile.email is the header's value.
EMAIL_RESOLVER = {"signIn": {"resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]}}


class HeaderAuthenticator:
    """Who the caller is, from the header named by ``header`` (default ``X-Auth-Email``)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.header = config.get_optional_string("header") or "X-Auth-Email"

    @classmethod
    def from_config(cls, config: Config, *, http) -> HeaderAuthenticator:
        return cls(config)

    def authenticate(self, request) -> ProxyAuthenticatorResult:
        email = request.headers.get(self.header)
        if not email:
            raise AuthenticationError(f"Missing {self.header} header")
        return ProxyAuthenticatorResult(
            result={"email": email}, provider_info={"header": self.header}
        )

    def default_profile_transform(self, result: ProxyAuthenticatorResult) -> ProfileInfo:
        return ProfileInfo(email=result.result["email"], display_name="From the proxy")


def proxy_app(factory, provider_config: dict[str, Any], provider_id: str = "header"):
    """An app over the test catalog whose one provider is ``factory`` as ``provider_id``."""
    config = base_config(providers={provider_id: provider_config}, keyStore={"provider": "memory"})
    config["catalog"] = {
        "locations": [
            {"type": "file", "target": str(CATALOG / "users.yaml")},
            {"type": "file", "target": str(CATALOG / "groups.yaml")},
        ]
    }
    module = ProviderModule(provider_id=provider_id, factory=factory)
    auth_app = create_auth_app(Config.from_dict(config), providers={provider_id: module})
    testapp = webtest.TestApp(validator(AuthMiddleware(validator(inner_app), auth_app)))
    testapp.auth_app = auth_app  # type: ignore[attr-defined]
    return testapp
