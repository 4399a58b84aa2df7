"""Audit events: one structured log record per security-relevant event.

Every event goes to the logger ``wsgiauth.audit`` with its fields in ``extra`` under
the one key ``audit`` (a dict), so a JSON formatter (python-json-logger, structlog's
stdlib bridge) renders them as a nested object and no field can collide with a
``LogRecord`` attribute; the message is a readable one-line summary of the same fields.
An optional hook (``create_auth_app(audit_hook=...)`` or ``auth.audit.hook:
package.module:callable``) gets each event's fields too, to ship them elsewhere; a
hook that raises never breaks a request (its first failure is logged, later ones not).

No token, code, state, verifier or secret is ever a field: events carry the provider,
environment, user entity ref, resolver name, a reason (an error's name and our own
message) and ``client``, a keyed hash of the client address (HMAC-SHA256 with
``auth.audit.clientAddressKey``, else a random key made per process). Keyed, so the
2^32 IPv4 addresses cannot be hashed one by one to reverse it; with the default key,
hashes match only within one process. The address is ``REMOTE_ADDR``: behind a proxy,
the proxy's unless the server trusts forwarded headers.

The auth app sets the request context (:func:`auditing`) around each request, so code
below it (route handlers, resolvers, the token factory) emits an event in one call,
with no plumbing: :func:`audit`. An event outside a request (a key made at startup)
is logged without ``client`` and reaches no hook; ``wsgiauth keys rotate`` and
``prune`` set a context of their own, so the config's hook gets their events.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import pkgutil
import secrets
from collections.abc import Callable
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field
from enum import StrEnum
from typing import TYPE_CHECKING
from typing import Any

from .errors import HttpError

if TYPE_CHECKING:
    from .config import Config

__all__ = [
    "AUDIT_LOGGER",
    "AuditEvent",
    "AuditHook",
    "AuditSettings",
    "audit",
    "audit_failure",
    "audit_note",
    "audit_settings_from_config",
    "auditing",
    "refused",
    "user_ref_of",
]

AUDIT_LOGGER = "wsgiauth.audit"
log = logging.getLogger(AUDIT_LOGGER)

#: Gets each event's fields (``event`` included); shipping them elsewhere is its job.
AuditHook = Callable[[Mapping[str, Any]], None]

_PROCESS_KEY = secrets.token_bytes(32)


class AuditEvent(StrEnum):
    """The events, by the name they carry in the ``event`` field."""

    SIGN_IN_SUCCEEDED = "sign_in.succeeded"
    SIGN_IN_FAILED = "sign_in.failed"
    REFRESH_SUCCEEDED = "refresh.succeeded"
    REFRESH_FAILED = "refresh.failed"
    LOGOUT = "logout"
    KEY_ROTATED = "key.rotated"
    #: ``wsgiauth keys rotate``: every process replaces a key made before ``mark``.
    KEY_ROTATION_REQUESTED = "key.rotation_requested"
    #: ``wsgiauth keys prune``: keys past their listing time deleted (``kids``).
    KEYS_PRUNED = "key.pruned"
    REQUEST_REFUSED = "request.refused"


#: Failures and refusals are warnings; the rest is information.
_WARNINGS = {AuditEvent.SIGN_IN_FAILED, AuditEvent.REFRESH_FAILED, AuditEvent.REQUEST_REFUSED}
_LEVELS = {event: logging.WARNING if event in _WARNINGS else logging.INFO for event in AuditEvent}


@dataclass
class AuditSettings:
    """One auth app's hook and client-address key."""

    hook: AuditHook | None = None
    address_key: bytes = _PROCESS_KEY
    _hook_failed: bool = field(default=False, repr=False)

    def client(self, address: str) -> str:
        """The keyed hash of a client address (32 hex digits)."""
        digest = hmac.new(self.address_key, address.encode(), hashlib.sha256).hexdigest()
        return digest[:32]

    def ship(self, fields: Mapping[str, Any]) -> None:
        """Hand ``fields`` to the hook; a failing hook is logged once and never raises."""
        if self.hook is None:
            return
        try:
            self.hook(fields)
        except Exception:
            if not self._hook_failed:
                self._hook_failed = True
                log.exception("the audit hook failed; later failures are not logged")


def audit_settings_from_config(config: Config, hook: AuditHook | None = None) -> AuditSettings:
    """``auth.audit``: ``hook`` (``package.module:callable``) and ``clientAddressKey``.

    :param hook: given (``create_auth_app(audit_hook=...)``), it beats the config's.
    :raises ConfigError: an unknown key, a hook that cannot be loaded or is not callable.
    """
    audit_config = config.get_optional_config("auth.audit")
    if audit_config is None:
        return AuditSettings(hook=hook)
    audit_config.check_keys({"hook", "clientAddressKey"})
    dotted = audit_config.get_optional_string("hook")
    if hook is None and dotted is not None:
        try:
            loaded = pkgutil.resolve_name(dotted)
        except (ImportError, AttributeError, ValueError) as exc:
            raise audit_config.error("hook", f"cannot be loaded: {exc}") from None
        if not callable(loaded):
            raise audit_config.error("hook", f"{dotted} is not callable")
        hook = loaded
    key = audit_config.get_optional_string("clientAddressKey")
    return AuditSettings(hook=hook, address_key=key.encode() if key else _PROCESS_KEY)


@dataclass
class _Request:
    settings: AuditSettings
    environ: Mapping[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)


_current: ContextVar[_Request | None] = ContextVar("wsgiauth_audit", default=None)


class _Auditing:
    """The context of :func:`auditing`: a class, cheaper per request than a generator."""

    __slots__ = ("_request", "_token")

    def __init__(self, request: _Request) -> None:
        self._request = request

    def __enter__(self) -> None:
        self._token = _current.set(self._request)

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)


def auditing(
    settings: AuditSettings, environ: Mapping[str, Any]
) -> contextlib.AbstractContextManager[None]:
    """Within this block, events carry this request's client and go to ``settings``'s hook."""
    return _Auditing(_Request(settings, environ))


def audit_note(**fields: Any) -> None:
    """Fields for this request's next event, from code that does not emit it (the resolver)."""
    request = _current.get()
    if request is not None:
        request.notes.update(fields)


def audit(event: AuditEvent, /, **fields: Any) -> None:
    """Log ``event`` with ``fields`` (None values dropped) and hand it to the hook.

    In a request, ``route`` (the path under the auth app, never the query) and
    ``provider`` (its first segment, unless given) come from the request. Never pass
    a token, code, state, verifier or secret.
    """
    request = _current.get()
    level = _LEVELS[event]
    if not log.isEnabledFor(level) and (request is None or request.settings.hook is None):
        # Nothing listens: no record to build. The notes were for this event all the same.
        if request is not None and request.notes:
            request.notes.clear()
        return
    record: dict[str, Any] = {"event": event.value}
    if request is not None:
        route = str(request.environ.get("PATH_INFO", ""))
        record["provider"] = route.strip("/").partition("/")[0] or None
        record["route"] = route or None
        record.update(request.notes)
        request.notes.clear()
        address = request.environ.get("REMOTE_ADDR")
        if address:
            record["client"] = request.settings.client(str(address))
    record.update((key, value) for key, value in fields.items() if value is not None)
    record = {key: value for key, value in record.items() if value is not None}
    summary = " ".join(f"{key}={value}" for key, value in record.items() if key != "event")
    log.log(level, "audit %s %s", event.value, summary, extra={"audit": record})
    if request is not None:
        request.settings.ship(dict(record))


def _reason(error: HttpError) -> str:
    """An error's name and our own message; never its cause, which may quote the IdP."""
    return f"{error.name}: {error.message}"


def refused(error: HttpError) -> HttpError:
    """Audit ``error`` as a refused request (CSRF, origin, state) and return it, to raise.

    ``raise refused(NotAllowedError("..."))``; :func:`audit_failure` will not repeat it.
    """
    audit(AuditEvent.REQUEST_REFUSED, reason=_reason(error))
    error.audited = True  # type: ignore[attr-defined]
    return error


def audit_failure(event: AuditEvent, error: HttpError, /, **fields: Any) -> None:
    """Audit a failed sign-in or refresh with ``error`` as its reason, unless already refused."""
    if not getattr(error, "audited", False):
        audit(event, reason=_reason(error), **fields)


def user_ref_of(body: Mapping[str, Any]) -> str | None:
    """The user entity ref of a session body (``backstageIdentity.identity``), if any."""
    identity = body.get("backstageIdentity") or {}
    ref = (identity.get("identity") or {}).get("userEntityRef")
    return ref if isinstance(ref, str) else None
