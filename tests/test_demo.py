"""The demo portal under WebTest, behind the same stack ``wsgiauth serve`` builds.

The page, its static files, ``/api/providers`` and the protected ``/api/me`` (with a
guest token obtained from ``/api/auth/guest/refresh`` through the same stack). The
real-browser tests of the page live in ``tests/e2e``.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from wsgiref.validate import validator

import pytest
import webtest

from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.demo import DemoPortal
from wsgiauth.demo import DemoProvider
from wsgiauth.demo import application
from wsgiauth.demo import make_application
from wsgiauth.identity.middleware import IdentityMiddleware
from wsgiauth.loader import load_config
from wsgiauth.middleware import AuthMiddleware

EXAMPLES = Path(__file__).parent.parent / "examples"


def make_stack(config: Config) -> webtest.TestApp:
    """Auth app + identity middleware + portal, validated at every layer, as the CLI serves it."""
    auth_app = create_auth_app(config)
    portal = application.configure(config)
    identity = IdentityMiddleware(
        validator(portal),
        auth_app.verifier,
        protected=portal.protected_paths,
        set_remote_user=True,
    )
    return webtest.TestApp(validator(AuthMiddleware(validator(identity), auth_app)))


@pytest.fixture
def demo() -> webtest.TestApp:
    return make_stack(load_config(str(EXAMPLES / "app-config.yaml")))


def guest_token(app: webtest.TestApp) -> str:
    return app.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.script_text += data


def parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


# --- the page ---------------------------------------------------------------------------


def test_page_is_hardened(demo):
    response = demo.get("/")
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"

    page = parse(response.text)
    scripts = [attrs["src"] for tag, attrs in page.tags if tag == "script"]
    assert scripts == ["/api/auth/.client/wsgiauth.js", "static/portal.js"]
    assert page.script_text.strip() == "", "no inline script"
    for tag, attrs in page.tags:
        assert "style" not in attrs, f"<{tag}> has an inline style"
        assert not [name for name in attrs if name.startswith("on")], f"<{tag}> has a handler"


def test_page_loads_what_it_names_through_the_stack(demo):
    page = parse(demo.get("/").text)
    urls = [attrs.get("src") or attrs.get("href") for tag, attrs in page.tags]
    urls = ["/" + url if not url.startswith(("/", "data:")) else url for url in urls if url]
    for url in urls:
        if not url.startswith("data:"):
            assert demo.get(url).status_int == 200, url


@pytest.mark.parametrize(
    ("path", "content_type", "needle"),
    [
        pytest.param("/static/portal.js", "text/javascript", b"new WsgiAuth(", id="js"),
        pytest.param("/static/portal.css", "text/css", b".card", id="css"),
    ],
)
def test_static_files(demo, path, content_type, needle):
    response = demo.get(path)
    assert response.content_type == content_type
    assert needle in response.body
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    again = demo.get(path, headers={"If-None-Match": response.headers["ETag"]}, status=304)
    assert again.body == b""


def test_portal_script_never_writes_html(demo):
    script = demo.get("/static/portal.js").text
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script
    assert "document.write" not in script


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/nope", id="unknown"),
        pytest.param("/static/", id="static-dir"),
        pytest.param("/static/index.html", id="template-not-listed"),
        pytest.param("/static/../__init__.py", id="traversal"),
        pytest.param("/static/%2e%2e/__init__.py", id="encoded-traversal"),
        pytest.param("/api/meta", id="prefix-of-protected"),
        pytest.param("/index.html", id="index-by-name"),
    ],
)
def test_not_found(demo, path):
    response = demo.get(path, status=404)
    assert response.json["error"]["name"] == "NotFoundError"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("POST", "/", id="post-page"),
        pytest.param("DELETE", "/api/providers", id="delete-providers"),
        pytest.param("PUT", "/static/portal.js", id="put-static"),
    ],
)
def test_only_get_and_head(demo, method, path):
    response = demo.request(path, method=method, status=405, expect_errors=True)
    assert response.json["error"]["name"] == "MethodNotAllowedError"
    assert response.headers["Allow"] == "GET, HEAD"


def test_head(demo):
    response = demo.head("/")
    assert response.status_int == 200
    assert response.body == b""
    assert int(response.headers["Content-Length"]) > 0


# --- /api/providers ---------------------------------------------------------------------


def test_providers_of_the_demo_config(demo):
    assert demo.get("/api/providers").json == {
        "authBaseUrl": "/api/auth",
        "environment": "development",
        "providers": [{"id": "guest", "kind": "proxy"}],
    }


def test_providers_with_oidc(monkeypatch):
    for name, value in {
        "AUTH_SESSION_SECRET": "s" * 32,
        "OIDC_METADATA_URL": "http://127.0.0.1:9/.well-known/openid-configuration",
        "OIDC_CLIENT_ID": "demo",
        "OIDC_CLIENT_SECRET": "not-a-secret",
    }.items():
        monkeypatch.setenv(name, value)
    config = load_config(str(EXAMPLES / "app-config.yaml"), str(EXAMPLES / "app-config.oidc.yaml"))
    providers = make_stack(config).get("/api/providers").json["providers"]
    assert providers == [{"id": "guest", "kind": "proxy"}, {"id": "oidc", "kind": "oauth"}]


def test_auth_backend_on_another_origin():
    config = Config.from_dict(
        {
            "app": {"baseUrl": "http://localhost:3000"},
            "backend": {"baseUrl": "http://localhost:7007/backend/"},
            "auth": {"basePath": "/auth", "environment": "staging", "providers": {}},
        }
    )
    portal = make_application(config)
    assert portal.auth_base_url == "http://localhost:7007/backend/auth"
    assert portal.environment == "staging"
    assert portal.providers == ()
    app = webtest.TestApp(validator(portal))
    response = app.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self' http://localhost:7007;" in csp
    assert "connect-src 'self' http://localhost:7007;" in csp
    scripts = [a["src"] for t, a in parse(response.text).tags if t == "script"]
    assert scripts[0] == "http://localhost:7007/backend/auth/.client/wsgiauth.js"


def test_same_origin_backend_path_is_kept():
    config = Config.from_dict(
        {
            "app": {"baseUrl": "http://localhost:7007"},
            "backend": {"baseUrl": "http://localhost:7007/backend"},
        }
    )
    assert make_application(config).auth_base_url == "/backend/api/auth"


def test_auth_base_is_escaped_in_the_page():
    portal = DemoPortal(auth_base_url='/x"><script>alert(1)</script>')
    body = webtest.TestApp(validator(portal)).get("/").text
    assert "<script>alert(1)" not in body
    assert "/x&quot;&gt;&lt;script&gt;" in body


def test_unconfigured_application_has_no_buttons():
    app = webtest.TestApp(validator(application))
    assert app.get("/api/providers").json["providers"] == []


def test_provider_json():
    provider = DemoProvider(id="github", kind="oauth")
    assert provider.to_json() == {"id": "github", "kind": "oauth"}


# --- /api/me ----------------------------------------------------------------------------


def test_me_needs_a_token(demo):
    response = demo.get("/api/me", status=401)
    assert response.json["error"]["name"] == "AuthenticationError"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_me_refuses_a_bad_token(demo):
    token = guest_token(demo)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = demo.get("/api/me", headers={"Authorization": f"Bearer {forged}"}, status=401)
    assert response.json["error"]["name"] == "AuthenticationError"


def test_me_with_a_guest_token(demo):
    token = guest_token(demo)
    response = demo.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["userEntityRef"] == "user:development/guest"
    assert body["ownershipEntityRefs"] == ["user:development/guest", "group:default/visitors"]
    assert body["remoteUser"] == "user:development/guest"
    assert body["claims"]["sub"] == "user:development/guest"
    assert body["claims"]["aud"] == "backstage"


def test_me_is_closed_without_identity_middleware():
    """The portal checks the identity itself, in case it is served unwrapped."""
    app = webtest.TestApp(
        validator(make_application(load_config(str(EXAMPLES / "app-config.yaml"))))
    )
    response = app.get("/api/me", headers={"Authorization": "Bearer whatever"}, status=401)
    assert response.json["error"]["name"] == "AuthenticationError"


def test_other_pages_stay_public_with_a_bad_token(demo):
    response = demo.get("/api/providers", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_int == 200
