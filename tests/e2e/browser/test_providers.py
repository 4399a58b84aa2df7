"""wsgiauth.js knows each Backstage provider's title and default scopes, as Backstage's own
frontend APIs (``@backstage/core-app-api``) define them; options still win."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

GOOGLE = "https://www.googleapis.com/auth/"


@pytest.mark.parametrize(
    ("provider", "title", "scopes", "proxy"),
    [
        pytest.param("github", "GitHub", ["read:user"], False, id="github"),
        pytest.param("gitlab", "GitLab", ["read_user"], False, id="gitlab"),
        pytest.param(
            "google",
            "Google",
            ["openid", f"{GOOGLE}userinfo.email", f"{GOOGLE}userinfo.profile"],
            False,
            id="google",
        ),
        pytest.param(
            "microsoft",
            "Microsoft",
            ["openid", "offline_access", "profile", "email", "User.Read"],
            False,
            id="microsoft",
        ),
        pytest.param("okta", "Okta", ["openid", "email", "profile", "offline_access"], False),
        pytest.param("bitbucketServer", "Bitbucket Server", ["PROJECT_ADMIN"], False),
        pytest.param("openshift", "OpenShift", ["user:info"], False, id="openshift"),
        pytest.param("guest", "Guest", [], True, id="guest"),
        pytest.param("gcpIap", "Google IAP", [], True, id="gcpIap"),
        pytest.param("oauth2Proxy", "OAuth2 Proxy", [], True, id="oauth2Proxy"),
        pytest.param("awsalb", "AWS ALB", [], True, id="awsalb"),
        pytest.param("cfaccess", "Cloudflare Access", [], True, id="cfaccess"),
        pytest.param("azureEasyAuth", "Azure Easy Auth", [], True, id="azureEasyAuth"),
        pytest.param("corp-sso", "corp-sso", [], False, id="unknown-id"),
        pytest.param("toString", "toString", [], False, id="not-from-the-prototype"),
    ],
)
def test_known_providers_have_backstage_titles_and_scopes(frontend, provider, title, scopes, proxy):
    frontend.open(restore="")
    got = frontend.page.evaluate(
        """(id) => {
          const p = new WsgiAuth({ baseUrl: '/api/auth' }).provider(id);
          return [p.title, p.defaultScopes, p.proxy];
        }""",
        provider,
    )
    assert got == [title, scopes, proxy]


def test_options_beat_the_known_defaults(frontend):
    frontend.open(restore="")
    got = frontend.page.evaluate(
        """() => {
          const p = new WsgiAuth({ baseUrl: '/api/auth' })
            .provider('github', { title: 'GHE', defaultScopes: ['repo'] });
          return [p.title, p.defaultScopes];
        }"""
    )
    assert got == ["GHE", ["repo"]]
