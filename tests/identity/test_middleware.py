"""IdentityMiddleware on the wire: environ identity, REMOTE_USER, 401s on protected paths."""

from __future__ import annotations

import json
import uuid
from typing import Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import jwt
import pytest
import webtest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.identity.conftest import CRAFTED_TOKENS
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.identity import middleware as middleware_module
from wsgiauth.identity.middleware import IdentityMiddleware
from wsgiauth.identity.middleware import authenticate
from wsgiauth.identity.middleware import path_prefixes
from wsgiauth.identity.middleware import refusal_response
from wsgiauth.identity.verifier import BackstageIdentity
from wsgiauth.identity.verifier import IdentityVerifier

ISSUER = "http://localhost:7007/api/auth"
START = 1_700_000_000
USER = "user:default/jane"
ENT = [USER, "group:default/team-a"]


class SigningKey:
    """An ES256 key and Backstage-shaped tokens signed with it."""

    def __init__(self) -> None:
        self.kid = str(uuid.uuid4())
        self.private = ec.generate_private_key(ec.SECP256R1())
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.public_jwk = {**jwk, "kid": self.kid, "alg": "ES256"}

    def sign(self, **claims: Any) -> str:
        payload = {
            "iss": ISSUER,
            "sub": USER,
            "ent": ENT,
            "aud": "backstage",
            "iat": START,
            "exp": START + 3600,
            **claims,
        }
        return jwt.encode(
            payload,
            self.private,
            algorithm="ES256",
            headers={"typ": "vnd.backstage.user", "kid": self.kid},
        )


class KeySource:
    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.calls = 0
        self.down = False

    def __call__(self) -> list[dict[str, Any]]:
        self.calls += 1
        if self.down:
            raise ServiceUnavailableError("key store down")
        return [self.key.public_jwk]


def inner_app(environ, start_response):
    """Echoes what the middleware gave it."""
    identity = environ["wsgiauth.identity"]
    body = json.dumps(
        {
            "user": identity.user_entity_ref if identity else None,
            "ent": list(identity.ownership_entity_refs) if identity else None,
            "remote_user": environ.get("REMOTE_USER"),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@pytest.fixture
def key() -> SigningKey:
    return SigningKey()


@pytest.fixture
def source(key) -> KeySource:
    return KeySource(key)


@pytest.fixture
def verifier(source) -> IdentityVerifier:
    return IdentityVerifier(key_source=source, issuer=ISSUER, clock=lambda: START + 60)


@pytest.fixture
def make_app(verifier):
    def make(**options: Any) -> webtest.TestApp:
        middleware = IdentityMiddleware(inner_app, verifier, **options)
        return webtest.TestApp(validator(middleware))

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_identity_reaches_the_app(make_app, key):
    response = make_app().get("/anything", headers=bearer(key.sign()))
    assert response.json == {"user": USER, "ent": ENT, "remote_user": None}


def test_no_header_means_no_identity(make_app):
    assert make_app().get("/anything").json == {"user": None, "ent": None, "remote_user": None}


def test_remote_user_is_set_when_asked(make_app, key):
    app = make_app(set_remote_user=True)
    assert app.get("/", headers=bearer(key.sign())).json["remote_user"] == USER
    # No identity: REMOTE_USER stays as the server set it.
    response = app.get("/", extra_environ={"REMOTE_USER": "server-user"})
    assert response.json["remote_user"] == "server-user"


def test_custom_environ_key(verifier, key):
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("204 No Content", [])
        return []

    test_app = webtest.TestApp(validator(IdentityMiddleware(app, verifier, environ_key="me")))
    test_app.get("/", headers=bearer(key.sign()), status=204)
    assert seen["me"].user_entity_ref == USER
    assert "wsgiauth.identity" not in seen


@pytest.mark.parametrize(
    ("headers", "message", "challenge"),
    [
        pytest.param({}, "Missing credentials", "Bearer", id="missing"),
        pytest.param(
            {"Authorization": "Bearer not-a-token"},
            "Invalid identity token: malformed token",
            'Bearer error="invalid_token"',
            id="malformed",
        ),
        pytest.param(
            {"Authorization": "Basic dXNlcjpwYXNz"},
            "Invalid Authorization header, expected 'Bearer <token>'",
            'Bearer error="invalid_token"',
            id="basic",
        ),
    ],
)
def test_protected_path_without_a_valid_token_is_401(make_app, headers, message, challenge):
    response = make_app(protected=["/api/private"]).get(
        "/api/private/items?page=2", headers=headers, status=401
    )

    assert response.content_type == "application/json"
    assert response.json == {
        "error": {"name": "AuthenticationError", "message": message},
        "request": {"method": "GET", "url": "/api/private/items?page=2"},
        "response": {"statusCode": 401},
    }
    assert response.headers["WWW-Authenticate"] == challenge


def test_protected_path_forged_token_is_401(make_app, key):
    forged = SigningKey()
    forged.kid = key.kid
    token = jwt.encode(
        {"iss": ISSUER, "sub": "user:default/admin", "aud": "backstage", "iat": START,
         "exp": START + 3600},
        forged.private,
        algorithm="ES256",
        headers={"typ": "vnd.backstage.user", "kid": key.kid},
    )  # fmt: skip
    response = make_app(protected=["/"]).get("/x", headers=bearer(token), status=401)
    assert response.json["error"]["message"] == (
        "Invalid identity token: signature verification failed"
    )


def test_protected_path_with_a_valid_token_passes(make_app, key):
    response = make_app(protected=["/api/private"]).get("/api/private", headers=bearer(key.sign()))
    assert response.json["user"] == USER


@pytest.mark.parametrize(
    ("path", "protected"),
    [
        pytest.param("/api/private", True, id="exact"),
        pytest.param("/api/private/", True, id="exact-slash"),
        pytest.param("/api/private/a/b", True, id="under"),
        pytest.param("/api//private/a", True, id="double-slash"),
        pytest.param("//api/private", True, id="leading-double-slash"),
        pytest.param("/api/./private", True, id="dot-segment"),
        pytest.param("/api/public/../private/a", True, id="dot-dot-segment"),
        pytest.param("/api/privateer", False, id="longer-name"),
        pytest.param("/api/public", False, id="other"),
        pytest.param("/", False, id="root"),
    ],
)
def test_protected_prefixes(make_app, path, protected):
    app = make_app(protected=["/api/private/"])
    response = app.get(path, expect_errors=True)
    assert response.status_int == (401 if protected else 200)


def test_protected_predicate(make_app):
    app = make_app(protected=lambda environ: environ["REQUEST_METHOD"] != "GET")
    assert app.get("/x").status_int == 200
    assert app.post("/x", status=401).json["response"] == {"statusCode": 401}


def _cors() -> Any:
    from wsgiauth.cors import CorsPolicy

    return CorsPolicy(lambda origin: origin == "http://localhost:3000")


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-token"),
        pytest.param("Bearer garbage", id="garbage-token"),
    ],
)
def test_a_preflight_on_a_protected_path_is_answered_never_passed_on(make_app, authorization):
    """A forged preflight must not reach a view that takes "no identity" for "public"."""
    app = make_app(protected=["/private"], cors=_cors())
    headers = {"Access-Control-Request-Method": "POST", "Origin": "http://localhost:3000"}
    if authorization:
        headers["Authorization"] = authorization
    response = app.options("/private/data", headers=headers, status=204)
    assert response.body == b""  # inner_app would have answered 200 with JSON
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    app.options("/private/data", status=401)  # a plain OPTIONS is not a preflight


@pytest.mark.parametrize(
    ("cors", "origin"),
    [
        pytest.param(True, "https://evil.example", id="origin-not-allowed"),
        pytest.param(False, "http://localhost:3000", id="no-policy"),
    ],
)
def test_a_preflight_without_permission_gets_a_bare_204(make_app, cors, origin):
    app = make_app(protected=["/private"], cors=_cors() if cors else None)
    headers = {"Access-Control-Request-Method": "GET", "Origin": origin}
    response = app.options("/private", headers=headers, status=204)
    assert not [name for name in response.headers if name.startswith("Access-Control-")]


def test_a_preflight_on_a_public_path_reaches_the_app(make_app):
    app = make_app(protected=["/private"], cors=_cors())
    headers = {"Access-Control-Request-Method": "POST", "Origin": "http://localhost:3000"}
    assert app.options("/public", headers=headers).json["user"] is None


@pytest.mark.parametrize(
    ("prefix", "path"),
    [
        pytest.param("/privé", "/privé", id="exact"),
        pytest.param("/privé", "/privé/doc", id="under"),
        pytest.param("/データ", "/データ/x", id="cjk"),
        pytest.param("/privé/", "/priv%C3%A9/x", id="percent-encoded-request"),
    ],
)
def test_non_ascii_protected_prefixes_are_enforced(make_app, prefix, path):
    """PATH_INFO is UTF-8 read as latin-1 (PEP 3333): the prefix must be compared so."""
    from urllib.parse import quote

    app = make_app(protected=[prefix])
    url = path if "%" in path else quote(path)
    response = app.get(url, status=401)
    assert response.json["error"]["name"] == "AuthenticationError"
    assert response.json["request"]["url"] == url  # echoed without decoding twice
    assert app.get(quote("/privée")).status_int == 200  # a sibling, not under it


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": "Bearer garbage"}, id="garbage"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
        pytest.param({"Authorization": "Bearer a.b.c"}, id="three-parts"),
    ],
)
def test_unprotected_path_with_a_bad_token_has_no_identity(make_app, headers):
    response = make_app(protected=["/api/private"], set_remote_user=True).get(
        "/public", headers=headers
    )
    assert response.json == {"user": None, "ent": None, "remote_user": None}


@pytest.mark.parametrize(("token", "reason"), CRAFTED_TOKENS)
def test_crafted_token_is_401_on_protected_paths_and_ignored_elsewhere(
    make_app, verifier, token, reason
):
    """Issue 8 item 5: a header of thousands of "[" used to answer 500 on every path."""
    app = make_app(protected=["/api/private"], set_remote_user=True)

    refused = app.get("/api/private", headers=bearer(token), status=401)
    assert refused.json["error"] == {
        "name": "AuthenticationError",
        "message": f"Invalid identity token: {reason}",
    }
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    public = app.get("/public", headers=bearer(token), status=200)
    assert public.json == {"user": None, "ent": None, "remote_user": None}
    # The adapters call authenticate() directly: the same answers.
    environ = _environ(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert authenticate(environ, verifier, protected=False) is None
    with pytest.raises(AuthenticationError):
        authenticate(environ, verifier)


def test_key_store_down_is_503_on_protected_paths_only(make_app, key, source):
    source.down = True
    app = make_app(protected=["/api/private"])

    response = app.get("/api/private", headers=bearer(key.sign()), status=503)
    assert response.json["error"]["name"] == "ServiceUnavailableError"
    assert "WWW-Authenticate" not in response.headers
    assert app.get("/public", headers=bearer(key.sign())).json["user"] is None


def test_pass_through_builds_no_request_and_calls_no_verifier(monkeypatch):
    def no_request(*args, **kwargs):
        raise AssertionError("a Request was built")

    def no_keys():
        raise AssertionError("the verifier was asked")

    monkeypatch.setattr(middleware_module, "Request", no_request)
    verifier = IdentityVerifier(key_source=no_keys, issuer=ISSUER)
    seen = []

    def app(environ, start_response):
        seen.append(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    middleware = IdentityMiddleware(app, verifier, protected=["/api/private"])
    environ: dict[str, Any] = {"PATH_INFO": "/public/page"}
    setup_testing_defaults(environ)
    before = dict(environ)

    body = middleware(environ, lambda status, headers, exc_info=None: None)

    assert list(body) == [b"ok"]
    assert seen == [environ]
    assert environ == {**before, "wsgiauth.identity": None}


@pytest.mark.parametrize(
    ("protected", "error"),
    [
        pytest.param("/api", TypeError, id="string-not-sequence"),
        pytest.param(["api"], ValueError, id="relative"),
    ],
)
def test_bad_protected_option(verifier, protected, error):
    with pytest.raises(error):
        IdentityMiddleware(inner_app, verifier, protected=protected)


def _environ(path: str = "/x", **extra: str) -> dict[str, Any]:
    environ: dict[str, Any] = {"PATH_INFO": path, **extra}
    setup_testing_defaults(environ)
    return environ


@pytest.mark.parametrize("protected", [True, False, lambda environ: True])
def test_authenticate_returns_the_identity_of_a_valid_token(verifier, key, protected):
    environ = _environ(HTTP_AUTHORIZATION=f"Bearer {key.sign()}")
    identity = authenticate(environ, verifier, protected=protected)
    assert isinstance(identity, BackstageIdentity)
    assert identity.user_entity_ref == USER
    assert "wsgiauth.identity" not in environ  # it hands the identity back, environ untouched


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer not-a-token"}, id="malformed"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
    ],
)
def test_authenticate_refuses_as_the_middleware_answers(make_app, verifier, headers):
    sent = make_app(protected=["/"]).get("/api/x?page=2", headers=headers, status=401)
    environ = webtest.TestRequest.blank("/api/x?page=2", headers=headers).environ

    with pytest.raises(AuthenticationError) as raised:
        authenticate(environ, verifier)
    refusal = refusal_response(environ, raised.value)

    assert refusal.status == sent.status == "401 Unauthorized"
    assert refusal.headerlist == sent.headerlist
    assert refusal.body == sent.body


def test_authenticate_without_a_required_identity_ignores_bad_tokens(verifier, source, key):
    assert authenticate(_environ(), verifier, protected=False) is None
    bad = _environ(HTTP_AUTHORIZATION="Bearer garbage")
    assert authenticate(bad, verifier, protected=False) is None
    source.down = True
    down = _environ(HTTP_AUTHORIZATION=f"Bearer {key.sign()}")
    assert authenticate(down, verifier, protected=False) is None


def test_authenticate_key_store_down_is_503_without_a_challenge(verifier, source, key):
    source.down = True
    environ = _environ(HTTP_AUTHORIZATION=f"Bearer {key.sign()}")
    with pytest.raises(ServiceUnavailableError) as raised:
        authenticate(environ, verifier)
    refusal = refusal_response(environ, raised.value)
    assert refusal.status_code == 503
    assert json.loads(refusal.body)["error"]["name"] == "ServiceUnavailableError"
    assert "WWW-Authenticate" not in refusal.headers


def test_a_preflight_is_refused_where_sign_in_is_required_and_answered_204(verifier, key):
    preflight = _environ(REQUEST_METHOD="OPTIONS", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert authenticate(preflight, verifier, protected=False) is None
    # Even with a valid token: browsers send none on a preflight, so it is forged.
    forged = {**preflight, "HTTP_AUTHORIZATION": f"Bearer {key.sign()}"}
    for environ in (preflight, forged):
        with pytest.raises(AuthenticationError) as raised:
            authenticate(environ, verifier)
        assert refusal_response(environ, raised.value).status_int == 204
    plain = _environ(REQUEST_METHOD="OPTIONS")
    with pytest.raises(AuthenticationError) as raised:
        authenticate(plain, verifier)
    assert refusal_response(plain, raised.value).status_int == 401  # not a preflight


def test_authenticate_asks_the_predicate_only_when_it_decides(verifier, key):
    asked = []

    def protected(environ):
        asked.append(environ["PATH_INFO"])
        return False

    valid = _environ("/valid", HTTP_AUTHORIZATION=f"Bearer {key.sign()}")
    assert authenticate(valid, verifier, protected=protected).user_entity_ref == USER
    assert asked == []
    assert authenticate(_environ("/none"), verifier, protected=protected) is None
    assert authenticate(_environ("/bad", HTTP_AUTHORIZATION="Bearer x"), verifier,
                        protected=protected) is None  # fmt: skip
    assert asked == ["/none", "/bad"]


@pytest.mark.parametrize(
    ("prefixes", "path", "under"),
    [
        pytest.param(["/api/private"], "/api/private", True, id="exact"),
        pytest.param(["/api/private/"], "/api/private/a", True, id="under"),
        pytest.param(["/api/private"], "/api//private/a", True, id="double-slash"),
        pytest.param(["/api/private"], "/api/public/../private", True, id="dot-dot"),
        pytest.param(["/api/private"], "/api/privateer", False, id="longer-name"),
        pytest.param(["/a", "/b"], "/b/c", True, id="second-prefix"),
        pytest.param(["/"], "/anything", True, id="root-covers-all"),
        pytest.param([], "/anything", False, id="none"),
        pytest.param(["/"], "", True, id="empty-path-is-root"),
    ],
)
def test_path_prefixes(prefixes, path, under):
    assert path_prefixes(prefixes)({"PATH_INFO": path}) is under


@pytest.mark.parametrize(
    ("prefixes", "error"),
    [
        pytest.param("/api", TypeError, id="string-not-sequence"),
        pytest.param(["/ok", "api"], ValueError, id="relative"),
    ],
)
def test_path_prefixes_refuses_bad_prefixes(prefixes, error):
    with pytest.raises(error):
        path_prefixes(prefixes)
