"""The one outbound HTTP client: every call to an identity provider goes through here.

Providers talk to discovery documents, JWKS, token, userinfo and revocation
endpoints. Doing that with bare ``requests`` calls invites the usual faults:
no timeout (a stuck IdP pins a WSGI worker forever), unbounded bodies, a
``Session`` cookie jar shared by every user, redirects followed on ``POST``,
and ``requests`` exceptions leaking out as 500s. :class:`HttpClient` fixes
those once:

- connect and read timeouts are always set;
- bodies are streamed and reading stops past ``max_bytes``;
- transport faults, timeouts and 5xx answers become
  :class:`~wsgiauth.errors.ServiceUnavailableError` (503), raised ``from`` the
  cause, with a message a human can act on;
- 4xx answers are returned, because OAuth error bodies live there;
- the session keeps no cookies and ``POST`` never follows redirects.

Bodies are never logged: they hold tokens. Providers receive an
:class:`HttpClient` from the auth app; tests of a provider whose hosts are fixed
(``github.com``, ``login.microsoftonline.com``) send its calls to a fake on
loopback with :meth:`HttpClient.reroute`, never with a config key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from .bulkhead import Bulkhead
from .errors import AuthenticationError
from .errors import ServiceUnavailableError

__all__ = ["HttpClient", "HttpResponse", "create_http_client"]

log = logging.getLogger(__name__)

#: Redirects are followed for these methods only (and at most this many times).
_REDIRECT_METHODS = frozenset({"GET", "HEAD"})
_MAX_REDIRECTS = 5
_CHUNK_SIZE = 64 * 1024


def _host(url: str) -> str:
    """``host[:port]`` of a URL, without userinfo, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or "unknown host"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port is not None else host


def _seconds(value: float) -> str:
    return f"{value:g}s"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A fully read, size-capped response."""

    #: The HTTP status code.
    status: int
    #: Response headers (case-insensitive mapping from ``requests``).
    headers: Mapping[str, str]
    #: The body, at most ``max_bytes`` long.
    body: bytes
    #: The URL that was requested; names the host in error messages.
    url: str = ""

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body parsed as JSON; ``ServiceUnavailableError`` if it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError) as exc:
            # ValueError covers JSONDecodeError and UnicodeDecodeError; a deeply
            # nested body raises RecursionError.
            raise ServiceUnavailableError(
                f"Identity provider at {_host(self.url)} returned malformed JSON"
            ) from exc


class HttpClient:
    """Outbound HTTP with timeouts, a size cap and faults translated to 503.

    One instance holds one ``requests.Session`` (connection pooling) and is
    shared by all threads; it keeps no per-request state.

    :param connect_timeout: seconds to wait for a TCP/TLS connection.
    :param read_timeout: seconds to wait between bytes of the answer.
    :param max_bytes: the largest body read; a longer one is a 503.
    :param session: a session to use instead of a fresh one (tests, proxies).
    :param bulkhead: caps the calls in flight through this client (one provider's);
        past it a call fails at once with a 503 (:mod:`wsgiauth.bulkhead`).
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        max_bytes: int = 1_048_576,
        session: requests.Session | None = None,
        bulkhead: Bulkhead | None = None,
    ) -> None:
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_bytes = max_bytes
        self.session = session if session is not None else _new_session()
        self.bulkhead = bulkhead
        #: Origin prefix → replacement (:meth:`reroute`); shared with derived clients.
        self._reroutes: dict[str, str] = {}

    def reroute(self, origin: str, to: str) -> None:
        """Send every request for ``origin`` to ``to`` instead: the test seam for fixed hosts.

        ``client.reroute("https://github.com", "http://127.0.0.1:8123")`` makes
        ``https://github.com/login/oauth/access_token`` reach the fake at
        ``http://127.0.0.1:8123/login/oauth/access_token``; path and query are kept.
        It applies to the clients derived from this one too.
        """
        self._reroutes[origin.rstrip("/") + "/"] = to.rstrip("/") + "/"

    def with_read_timeout(self, read_timeout: float) -> HttpClient:
        """A client with another read timeout that shares this one's connection pool.

        Providers with their own ``timeout`` setting use it.
        """
        return self.with_timeouts(self.connect_timeout, read_timeout)

    def with_timeouts(self, connect_timeout: float, read_timeout: float) -> HttpClient:
        """A client with other timeouts that shares this one's pool, reroutes and bulkhead.

        The diagnostics page probes providers with short ones.
        """
        client = HttpClient(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_bytes=self.max_bytes,
            session=self.session,
            bulkhead=self.bulkhead,
        )
        client._reroutes = self._reroutes  # the same dict: later reroutes apply too
        return client

    def with_bulkhead(self, bulkhead: Bulkhead) -> HttpClient:
        """A client whose calls go through ``bulkhead``, sharing this one's pool and reroutes.

        The auth app gives each provider its own, so a slow provider holds at most
        ``bulkhead.limit`` of the server's threads.
        """
        client = self.with_read_timeout(self.read_timeout)
        client.bulkhead = bulkhead
        return client

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | str | bytes | None = None,
        auth: tuple[str, str] | AuthBase | None = None,
    ) -> HttpResponse:
        """Send a request and read its answer, capped at ``max_bytes``.

        Returns 2xx, 3xx (``POST`` never follows redirects) and 4xx answers;
        raises ``ServiceUnavailableError`` when the host is unreachable, slow,
        answers 5xx or sends too much, or when the client's bulkhead is full.
        """
        with self.bulkhead.slot() if self.bulkhead is not None else nullcontext():
            return self._send(method, url, headers=headers, data=data, auth=auth)

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        data: Mapping[str, str] | str | bytes | None,
        auth: tuple[str, str] | AuthBase | None,
    ) -> HttpResponse:
        method = method.upper()
        host = _host(url)
        for origin, target in self._reroutes.items():
            if url.startswith(origin):
                url = target + url[len(origin) :]
                break
        try:
            response = self.session.request(
                method,
                url,
                headers=dict(headers) if headers else None,
                data=data,
                auth=auth,
                timeout=(self.connect_timeout, self.read_timeout),
                # Following a redirect on POST could replay credentials and codes
                # to another host; GETs only carry a bearer token, which requests
                # strips on a cross-host redirect.
                allow_redirects=method in _REDIRECT_METHODS,
                stream=True,
            )
        except requests.ConnectTimeout as exc:
            raise ServiceUnavailableError(
                f"Identity provider at {host} timed out after "
                f"{_seconds(self.connect_timeout)} while connecting"
            ) from exc
        except requests.Timeout as exc:
            raise ServiceUnavailableError(
                f"Identity provider at {host} timed out after {_seconds(self.read_timeout)}"
            ) from exc
        except requests.ConnectionError as exc:
            raise ServiceUnavailableError(f"Identity provider at {host} is unreachable") from exc
        except requests.RequestException as exc:
            raise ServiceUnavailableError(
                f"Request to identity provider at {host} failed ({type(exc).__name__})"
            ) from exc

        try:
            if response.status_code >= 500:
                log.warning("%s %s answered %d", method, host, response.status_code)
                raise ServiceUnavailableError(
                    f"Identity provider at {host} answered {response.status_code}"
                )
            body = self._read_body(response, host)
        finally:
            response.close()
        log.debug("%s %s answered %d (%d bytes)", method, host, response.status_code, len(body))
        return HttpResponse(
            status=response.status_code, headers=response.headers, body=body, url=url
        )

    def _read_body(self, response: requests.Response, host: str) -> bytes:
        too_large = ServiceUnavailableError(
            f"Identity provider at {host} sent more than {self.max_bytes} bytes"
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(_CHUNK_SIZE):
                size += len(chunk)
                if size > self.max_bytes:
                    # Stop reading: a hostile or broken IdP must not fill our memory.
                    raise too_large
                chunks.append(chunk)
        except requests.RequestException as exc:
            # A read timeout or a dropped connection in the middle of the body.
            raise ServiceUnavailableError(
                f"Identity provider at {host} broke off its answer ({type(exc).__name__})"
            ) from exc
        return b"".join(chunks)

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET a JSON object; anything but a 2xx JSON object is a ``ServiceUnavailableError``.

        Except a 401 to a request that sent ``Authorization``: the provider refused the
        user's token (revoked, expired), so the session is over, and that is an
        :class:`AuthenticationError` (a 401 to the client, who signs in again), not a
        provider outage that a retry would fix.
        """
        response = self.request(
            "GET", url, headers={"Accept": "application/json", **(headers or {})}
        )
        if response.status == 401 and any(k.lower() == "authorization" for k in headers or ()):
            raise AuthenticationError(f"Identity provider at {_host(url)} refused the token")
        if not response.ok:
            raise ServiceUnavailableError(
                f"Identity provider at {_host(url)} answered {response.status}"
            )
        document = response.json()
        if not isinstance(document, dict):
            raise ServiceUnavailableError(
                f"Identity provider at {_host(url)} returned JSON that is not an object"
            )
        return document


def _new_session() -> requests.Session:
    session = requests.Session()
    # The session is shared by every user's requests: a cookie set by an IdP
    # for one user must never be sent along with another user's token request.
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.max_redirects = _MAX_REDIRECTS
    # WSGI servers run many threads; let the pool keep a connection per thread.
    adapter = HTTPAdapter(pool_connections=10, pool_maxsize=32, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def create_http_client(
    *,
    connect_timeout: float = 3.05,
    read_timeout: float = 10.0,
    max_bytes: int = 1_048_576,
) -> HttpClient:
    """Build the shared outbound client with safe defaults (timeouts on, 1 MiB cap)."""
    return HttpClient(
        connect_timeout=connect_timeout, read_timeout=read_timeout, max_bytes=max_bytes
    )
