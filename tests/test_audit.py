"""wsgiauth.audit: structured audit records, the request context, the hook and the address hash."""

from __future__ import annotations

import hashlib
import logging

import pytest

from wsgiauth.audit import AUDIT_LOGGER
from wsgiauth.audit import AuditEvent
from wsgiauth.audit import AuditSettings
from wsgiauth.audit import audit
from wsgiauth.audit import audit_note
from wsgiauth.audit import audit_settings_from_config
from wsgiauth.audit import auditing
from wsgiauth.config import Config
from wsgiauth.errors import ConfigError

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
