"""wsgiauth.audit: structured audit records, the request context, the hook and the address hash."""

from __future__ import annotations

import hashlib
import json
import logging
from urllib.parse import urlsplit

import pytest
import webtest
import yaml

from tests.conftest import APP_ORIGIN
from tests.conftest import base_config
from tests.providers.loopback_idp import LoopbackIdp
from tests.providers.popup import logout
from tests.providers.popup import refresh
from tests.providers.popup import sign_in
from tests.providers.popup import user_entity
from wsgiauth import AuthMiddleware
from wsgiauth import YamlCatalog
from wsgiauth import create_auth_app
from wsgiauth.audit import AUDIT_LOGGER
from wsgiauth.audit import AuditEvent
from wsgiauth.audit import AuditSettings
from wsgiauth.audit import audit
from wsgiauth.audit import audit_note
from wsgiauth.audit import audit_settings_from_config
from wsgiauth.audit import auditing
from wsgiauth.config import Config
from wsgiauth.errors import ConfigError
from wsgiauth.oauth.state import decode_oauth_state

#: For ``auth.audit.hook`` by dotted path.
SHIPPED: list[dict[str, object]] = []


def ship(fields):
    SHIPPED.append(dict(fields))


NOT_CALLABLE = "just a string"


def audit_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == AUDIT_LOGGER]


def test_an_event_is_one_record_with_its_fields_in_extra(caplog):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    audit(AuditEvent.SIGN_IN_SUCCEEDED, provider="github", env="development", resolver=None)
    [record] = audit_records(caplog)
    assert record.levelno == logging.INFO
    assert record.audit == {  # type: ignore[attr-defined]
        "event": "sign_in.succeeded",
        "provider": "github",
        "env": "development",
    }
    assert record.getMessage() == "audit sign_in.succeeded provider=github env=development"


@pytest.mark.parametrize(
    "event", [AuditEvent.SIGN_IN_FAILED, AuditEvent.REFRESH_FAILED, AuditEvent.REQUEST_REFUSED]
)
def test_failures_and_refusals_are_warnings(caplog, event):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    audit(event, reason="x")
    assert [record.levelno for record in audit_records(caplog)] == [logging.WARNING]


def test_in_a_request_events_carry_a_keyed_client_hash_and_reach_the_hook(caplog):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    shipped: list[dict[str, object]] = []
    settings = AuditSettings(hook=lambda fields: shipped.append(dict(fields)), address_key=b"k")
    with auditing(settings, {"REMOTE_ADDR": "203.0.113.7"}):
        audit(AuditEvent.LOGOUT, provider="github")
    [record] = audit_records(caplog)
    client = record.audit["client"]  # type: ignore[attr-defined]
    assert shipped == [{"event": "logout", "client": client, "provider": "github"}]
    assert len(client) == 32
    assert "203.0.113.7" not in record.getMessage()
    # Keyed: not the plain hash anyone can compute for every IPv4 address, and another
    # key gives another hash; the same key, the same hash (events correlate).
    assert client not in hashlib.sha256(b"203.0.113.7").hexdigest()
    assert AuditSettings(address_key=b"other").client("203.0.113.7") != client
    assert AuditSettings(address_key=b"k").client("203.0.113.7") == client


def test_outside_a_request_there_is_no_client_and_no_hook(caplog):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    shipped: list[object] = []
    with auditing(AuditSettings(hook=shipped.append), {"REMOTE_ADDR": "203.0.113.7"}):
        pass
    audit(AuditEvent.KEY_ROTATED, kid="k1")
    assert shipped == []
    assert audit_records(caplog)[0].audit == {"event": "key.rotated", "kid": "k1"}  # type: ignore[attr-defined]


def test_a_note_goes_into_the_next_event_of_its_request_only(caplog):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    audit_note(resolver="ignored outside a request")
    with auditing(AuditSettings(), {}):
        audit_note(resolver="emailMatchingUserEntityProfileEmail")
        audit(AuditEvent.SIGN_IN_SUCCEEDED, provider="google")
        audit(AuditEvent.LOGOUT, provider="google")
    first, second = (record.audit for record in audit_records(caplog))  # type: ignore[attr-defined]
    assert first["resolver"] == "emailMatchingUserEntityProfileEmail"
    assert "resolver" not in second


def test_a_failing_hook_never_breaks_the_caller_and_is_logged_once(caplog):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)

    def broken(fields):
        raise RuntimeError("collector down")

    settings = AuditSettings(hook=broken)
    with auditing(settings, {}):
        for _ in range(3):
            audit(AuditEvent.LOGOUT, provider="github")
    errors = [r for r in audit_records(caplog) if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "the audit hook failed; later failures are not logged"
    ]
    assert len(audit_records(caplog)) == 3 + 1


def test_settings_from_config():
    assert audit_settings_from_config(Config.from_dict({})).hook is None
    config = Config.from_dict(
        {"auth": {"audit": {"hook": "tests.test_audit:ship", "clientAddressKey": "k"}}}
    )
    settings = audit_settings_from_config(config)
    assert settings.hook is ship
    assert settings.client("192.0.2.1") == AuditSettings(address_key=b"k").client("192.0.2.1")
    given = print
    assert audit_settings_from_config(config, given).hook is given


@pytest.mark.parametrize(
    ("audit_config", "key", "message"),
    [
        ({"hook": "tests.test_audit:nope"}, "auth.audit.hook", "cannot be loaded: "),
        ({"hook": "no_such_package_here:x"}, "auth.audit.hook", "cannot be loaded: "),
        ({"hook": "tests.test_audit:NOT_CALLABLE"}, "auth.audit.hook", "is not callable"),
        ({"hook": 12}, "auth.audit.hook", "expected a string"),
        ({"hok": "x"}, "auth.audit.hok", "unknown key"),
    ],
)
def test_bad_settings_name_the_key(audit_config, key, message):
    with pytest.raises(ConfigError) as info:
        audit_settings_from_config(Config.from_dict({"auth": {"audit": audit_config}}))
    assert info.value.path == key
    assert message in info.value.reason


# --- full flows: every event, and no secret in any of them ------------------------------

SESSION_SECRET = "audit-scan-session-secret-0123456789"  # noqa: S105
CLIENT_ADDRESS = "198.51.100.7"


@pytest.fixture
def flow_idp():
    fake = LoopbackIdp(oidc_issuer_path="/oidc", client_secret="audit-scan-client-secret")
    fake.user = {"id_token": {"sub": "u-jane", "email": "jane@example.com"}}
    with fake.serving():
        yield fake


def flow_app(tmp_path, idp, shipped):
    """oidc against the loopback IdP, and guest; sealed cookies; the hook collects events."""
    catalog = tmp_path / "users.yaml"
    catalog.write_text(yaml.safe_dump(user_entity("jane", email="jane@example.com")))
    resolver = {"resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]}
    providers = {
        "oidc": {
            "development": {
                "metadataUrl": f"{idp.issuer}/.well-known/openid-configuration",
                "clientId": idp.client_id,
                "clientSecret": idp.client_secret,
                "signIn": resolver,
            }
        },
        "guest": {},
    }
    config = Config.from_dict(
        base_config(
            providers=providers, keyStore={"provider": "memory"}, session={"secret": SESSION_SECRET}
        )
    )
    auth_app = create_auth_app(
        config, catalog=YamlCatalog([catalog]), audit_hook=lambda fields: shipped.append(fields)
    )
    return webtest.TestApp(
        AuthMiddleware(lambda e, s: [], auth_app), extra_environ={"REMOTE_ADDR": CLIENT_ADDRESS}
    )


def secrets_of_the_flow(idp, app, messages) -> set[str]:
    """Every token, code, state, nonce, verifier and secret this flow used."""
    found = {SESSION_SECRET, idp.client_secret}
    for method, path, form, _ in idp.requests:
        if method == "GET" and path == idp.authorize_path:
            found.update(form[key] for key in ("state", "nonce", "code_challenge"))
            found.add(decode_oauth_state(form["state"])["nonce"])
        found.update(form[key] for key in ("code", "code_verifier", "refresh_token") if key in form)
    found.update(idp._access)  # every access and refresh token the IdP issued
    found.update(idp._refresh)
    found.update(cookie.value for cookie in app.cookiejar if cookie.value)
    for message in messages:
        found.add(message["backstageIdentity"]["token"])
        found.update(str(value) for value in message["providerInfo"].values())
    return {value for value in found if len(value) >= 8}


def test_full_flows_emit_every_event_and_no_secret(tmp_path, flow_idp, caplog):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    shipped: list[dict[str, object]] = []
    app = flow_app(tmp_path, flow_idp, shipped)

    signed_in = sign_in(app, flow_idp, "oidc")
    assert signed_in.message["type"] == "authorization_response"
    refreshed = refresh(app, "oidc").json
    cookies_before_logout = [cookie.value for cookie in app.cookiejar]
    logout(app, "oidc")
    app.get("/api/auth/guest/refresh")
    # Refused: no X-Requested-With (CSRF), an origin that is not allowed, a callback
    # without this browser's flow cookie (login CSRF), a state that is not ours.
    app.get("/api/auth/oidc/refresh?env=development", status=401)
    app.get("/api/auth/oidc/start?env=development&origin=https://evil.example", status=403)
    start = app.get(f"/api/auth/oidc/start?env=development&origin={APP_ORIGIN}", status=302)
    callback = urlsplit(flow_idp.consent(start.location))
    app.cookiejar.clear()
    app.get(f"{callback.path}?{callback.query}", status=200)
    app.get("/api/auth/oidc/handler/frame?state=00&code=x", status=403)
    # A user the catalog does not know.
    flow_idp.user = {"id_token": {"sub": "u-eve", "email": "eve@example.com"}}
    failed = sign_in(app, flow_idp, "oidc")
    assert failed.message["error"]["name"] == "NotFoundError"

    records = [r for r in caplog.records if r.name == AUDIT_LOGGER and hasattr(r, "audit")]
    events = [r.audit for r in records]  # type: ignore[attr-defined]
    assert shipped == events
    used = secrets_of_the_flow(flow_idp, app, [signed_in.message["response"], refreshed]) | {
        value for value in cookies_before_logout if len(value) >= 8
    }
    assert len(used) >= 12  # session and client secrets, codes, tokens, state, nonce, verifier
    texts = [r.getMessage() for r in records] + [json.dumps(e) for e in events + shipped]
    leaks = sorted({secret[:12] for secret in used for text in texts if secret in text})
    assert leaks == []
    assert [(e["event"], e.get("provider")) for e in events] == [
        ("key.rotated", "oidc"),
        ("sign_in.succeeded", "oidc"),
        ("refresh.succeeded", "oidc"),
        ("logout", "oidc"),
        ("sign_in.succeeded", "guest"),
        ("request.refused", "oidc"),
        ("request.refused", "oidc"),
        ("request.refused", "oidc"),
        ("request.refused", "oidc"),
        ("sign_in.failed", "oidc"),
    ]
    client = AuditSettings().client(CLIENT_ADDRESS)
    assert all(e["client"] == client for e in events[1:])
    assert events[1] == {
        "event": "sign_in.succeeded",
        "provider": "oidc",
        "route": "/oidc/handler/frame",
        "resolver": "emailMatchingUserEntityProfileEmail",
        "client": client,
        "env": "development",
        "user": "user:default/jane",
    }
    assert events[0]["kid"]  # the first token's key, published in the sign-in request
    assert events[2]["user"] == "user:default/jane"
    assert events[4]["user"] == "user:development/guest"
    reasons = [e["reason"] for e in events[5:]]
    assert reasons[0] == "AuthenticationError: Invalid X-Requested-With header"
    assert reasons[1] == "NotAllowedError: Origin 'https://evil.example' is not allowed"
    assert reasons[2] == "NotAllowedError: Auth response is missing cookie nonce"
    assert reasons[3] == "NotAllowedError: OAuth state is invalid, missing env"
    assert reasons[4].startswith("NotFoundError: ")


def test_a_refresh_the_provider_fails_is_an_event_and_keeps_its_503(tmp_path, flow_idp, caplog):
    app = flow_app(tmp_path, flow_idp, [])
    sign_in(app, flow_idp, "oidc")
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    flow_idp.fault = "server_error"

    down = refresh(app, "oidc", status=503)

    assert down.json["error"]["name"] == "ServiceUnavailableError"
    [event] = [r.audit for r in audit_records(caplog)]  # type: ignore[attr-defined]
    assert (event["event"], event["provider"]) == ("refresh.failed", "oidc")
    assert event["reason"].startswith("ServiceUnavailableError: ")


def test_a_proxy_sign_in_that_fails_is_an_event(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    config = Config.from_dict(
        base_config(
            providers={"guest": {}}, environment="production", keyStore={"provider": "memory"}
        )
    )
    app = webtest.TestApp(AuthMiddleware(lambda e, s: [], create_auth_app(config)))
    app.get("/api/auth/guest/refresh", status=501)  # Backstage's answer outside development
    [event] = [r.audit for r in caplog.records if r.name == AUDIT_LOGGER]  # type: ignore[attr-defined]
    assert (event["event"], event["provider"]) == ("sign_in.failed", "guest")
    assert event["reason"].startswith("NotImplementedError: The guest provider is NOT recommended")


def _event_in_a_request(settings: AuditSettings) -> None:
    with auditing(settings, {"PATH_INFO": "/github/refresh", "REMOTE_ADDR": "203.0.113.7"}):
        audit_note(resolver="emailMatchingUserEntityProfileEmail")
        audit(AuditEvent.REFRESH_SUCCEEDED, env="development", user=None)


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING])
def test_a_hook_gets_the_whole_event_whether_or_not_the_logger_listens(caplog, level):
    # Without a listening logger the event is built for the hook alone, the same fields.
    caplog.set_level(level, logger=AUDIT_LOGGER)
    shipped: list[dict] = []
    settings = AuditSettings(hook=shipped.append, address_key=b"k")
    _event_in_a_request(settings)
    assert shipped == [
        {
            "event": "refresh.succeeded",
            "provider": "github",
            "route": "/github/refresh",
            "resolver": "emailMatchingUserEntityProfileEmail",
            "client": settings.client("203.0.113.7"),
            "env": "development",
        }
    ]
    assert len(audit_records(caplog)) == (1 if level == logging.INFO else 0)


def test_an_event_nobody_listens_to_still_uses_up_its_notes(caplog):
    # Skipped (no handler level, no hook), its notes must not leak into the next event.
    caplog.set_level(logging.WARNING, logger=AUDIT_LOGGER)
    shipped: list[dict] = []
    settings = AuditSettings()
    with auditing(settings, {}):
        audit_note(resolver="for the skipped event")
        audit(AuditEvent.REFRESH_SUCCEEDED)
        settings.hook = shipped.append
        audit(AuditEvent.LOGOUT)
    assert audit_records(caplog) == []
    assert shipped == [{"event": "logout"}]


def test_a_warning_is_logged_when_the_logger_listens_to_warnings_only(caplog):
    caplog.set_level(logging.WARNING, logger=AUDIT_LOGGER)
    with auditing(AuditSettings(), {}):
        audit(AuditEvent.REFRESH_SUCCEEDED)
        audit(AuditEvent.REFRESH_FAILED, reason="InputError: Missing session cookie")
    assert [r.audit["event"] for r in audit_records(caplog)] == ["refresh.failed"]  # type: ignore[attr-defined]
