"""``AuthApp``: the WSGI app behind the auth base path, and ``create_auth_app``.

It routes ``/{provider}/{action}`` (paths relative to where it is mounted) to
provider route handlers, checks methods and sizes, and turns what handlers raise
into responses: Backstage's JSON error body for every
:class:`~wsgiauth.errors.HttpError` (:func:`~wsgiauth.responses.error_response`),
a generic 500 (logged, never a stack trace) for anything else. Every host mounts
this same object: the :class:`~wsgiauth.middleware.AuthMiddleware`, Pyramid,
Bottle, gunicorn.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from webob import Request
from webob import Response

from .audit import AuditHook
from .audit import AuditSettings
from .audit import audit_settings_from_config
from .audit import auditing
from .bulkhead import Bulkhead
from .bulkhead import default_limit
from .catalog.context import CatalogAuthResolverContext
from .catalog.yaml_catalog import YamlCatalog
from .client import CLIENT_PATH
from .client import client_script
from .config import Config
from .cors import CorsPolicy
from .cors import cors_policy_from_config
from .diagnostics import diagnostics_routes
from .errors import ConfigError
from .errors import HeaderTooLargeError
from .errors import HttpError
from .errors import InputError
from .errors import MethodNotAllowedError
from .errors import NotFoundError
from .errors import PayloadTooLargeError
from .errors import ServiceUnavailableError
from .http import HttpClient
from .http import create_http_client
from .identity.database_config import unshared_memory_error
from .identity.replay import replay_store_from_config
from .identity.service import create_identity_service
from .loader import load_config
from .origins import checked_origin_patterns
from .origins import create_origin_filter
from .origins import origin_of
from .registry import resolve_providers
from .responses import FixedRoute
from .responses import error_response
from .responses import wsgi_bytes
from .sealing import CookieSealer
from .sign_in.common import load_resolver_factories
from .types import AuthProviderFactoryOptions
from .types import AuthProviderRouteHandlers
from .types import SupportsExtraRoutes
from .types import SupportsLogout
from .types import SupportsRefresh

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

    from .catalog.types import Catalog
    from .identity.types import KeyStore
    from .identity.types import TokenIssuer
    from .identity.verifier import IdentityVerifier
    from .types import CookieConfigurer
    from .types import ProviderModule

__all__ = ["DEFAULT_BASE_PATH", "AuthApp", "AuthAppSource", "auth_app_from", "create_auth_app"]

log = logging.getLogger(__name__)

DEFAULT_BASE_PATH = "/api/auth"
#: Query strings past this are refused (431); Backstage's own state is < 1 KB.
MAX_QUERY_LENGTH = 8192
#: Request headers past this in all are refused (431); twice Node's 16 KB default,
#: room for a chunked refresh-token cookie.
MAX_HEADERS_LENGTH = 32 * 1024
#: Request bodies past this are refused (413); form_post callbacks are small.
MAX_BODY_LENGTH = 64 * 1024

#: Sent with every answer of the auth app. ``nosniff``: no browser may run a JSON error
#: or a cookie echo as a script or a page. ``no-referrer``: the callback URL holds the
#: code and ``state``, and no page or redirect it leads to may learn them.
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))

Handler = Callable[[Request], Response]
#: Action → (allowed methods, handler name on the provider's route handlers).
_ACTIONS: Mapping[str, tuple[tuple[str, ...], str]] = {
    "start": (("GET",), "start"),
    "handler/frame": (("GET", "POST"), "frame_handler"),
    "refresh": (("GET", "POST"), "refresh"),
    "logout": (("POST",), "logout"),
}


class AuthApp:
    """The auth routes as one WSGI app; mount it under the auth base path.

    :param providers: provider id → its route handlers.
    :param base_path: where it is mounted; :class:`~wsgiauth.middleware.AuthMiddleware`
        reads it.
    :param routes: fixed paths (``/.well-known/jwks.json`` ...) → handler.
    """

    def __init__(
        self,
        providers: Mapping[str, AuthProviderRouteHandlers],
        *,
        base_path: str = DEFAULT_BASE_PATH,
        routes: Mapping[str, Handler] | None = None,
        verifier: IdentityVerifier | None = None,
        cors: CorsPolicy | None = None,
        token_issuer: TokenIssuer | None = None,
        audit: AuditSettings | None = None,
        unshared_memory: ConfigError | None = None,
    ) -> None:
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.providers = dict(providers)
        self._routes: dict[tuple[str, str], tuple[tuple[str, ...], Handler]] = {}
        for provider_id, handlers in self.providers.items():
            self._add_provider(provider_id, handlers)
        self._extra_routes = dict(routes or {})
        #: Routes whose answer reads nothing from the request: the fast path of __call__.
        self._fixed = {
            path: route
            for path, route in self._extra_routes.items()
            if isinstance(route, FixedRoute)
        }
        self._headers_length = _HeadersLength()
        #: Verifies this app's identity tokens in-process, for ``IdentityMiddleware``.
        self.verifier = verifier
        self.cors = cors
        #: Signs this app's identity tokens; :mod:`wsgiauth.testing` issues test tokens with it.
        self.token_issuer = token_issuer
        #: Where this app's audit events go (:mod:`wsgiauth.audit`).
        self.audit = audit or AuditSettings()
        #: Why this app must not serve from several processes (keys in one process's
        #: memory, no server store); None when it may. A server that says it runs
        #: several (``wsgi.multiprocess``) then gets 503s, never tokens that fail elsewhere.
        self.unshared_memory = unshared_memory
        self._unshared_logged = False

    def check_host_route(self, route: str, literal_prefix: str) -> None:
        """Refuse a host app's route at or under the base path: one side would never be reached.

        Framework adapters call it for each route at startup.

        :param route: the route as the host shows it, for the message.
        :param literal_prefix: the route's text before its first variable.
        :raises ConfigError: on ``auth.basePath``.
        """
        prefix = "/" + literal_prefix.lstrip("/")
        if prefix.rstrip("/") == self.base_path or prefix.startswith(self.base_path + "/"):
            raise self.route_clash(route)

    def route_clash(self, route: str) -> ConfigError:
        """The error for a host route that clashes with the auth routes."""
        return ConfigError(
            f"route {route} clashes with the auth base path {self.base_path}; "
            "move it or set another auth.basePath",
            path="auth.basePath",
        )

    def _add_provider(self, provider_id: str, handlers: AuthProviderRouteHandlers) -> None:
        # Optional routes are bound once, here, as Backstage binds only what a provider has.
        for action, (methods, attribute) in _ACTIONS.items():
            if attribute == "refresh" and not isinstance(handlers, SupportsRefresh):
                continue
            if attribute == "logout" and not isinstance(handlers, SupportsLogout):
                continue
            self._routes[(provider_id, action)] = (methods, getattr(handlers, attribute))
        if isinstance(handlers, SupportsExtraRoutes):
            for action, handler in handlers.extra_routes().items():
                self._routes.setdefault((provider_id, action), (("GET",), handler))

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        fixed = self._fixed.get(environ.get("PATH_INFO", ""))
        if fixed is not None and self._is_plain_get(environ):
            # JWKS and discovery: the bytes the general path would send, without a
            # WebOb request or response. A list, which servers send in one write.
            try:
                answer = fixed.answer()
            except Exception:  # noqa: BLE001 - the general path answers again and renders it
                answer = None
            if answer is not None:
                start_response("200 OK", [*answer.headers, *SECURITY_HEADERS])
                return [answer.body] if environ["REQUEST_METHOD"] == "GET" else []
        with auditing(self.audit, environ):
            return self._respond(environ, start_response)

    def _refuse_unshared_memory(self) -> None:
        """Only the first request learns that the server runs several processes: refuse it."""
        error = self.unshared_memory
        assert error is not None  # noqa: S101 - only called with one
        if not self._unshared_logged:
            self._unshared_logged = True
            log.error("Refusing to sign in: %s", error)
        raise ServiceUnavailableError(
            f"Sign-in is unavailable: {error.path} keeps keys in the memory of each worker "
            "process of this server; see the server log"
        )

    def _is_plain_get(self, environ: WSGIEnvironment) -> bool:
        """A GET or HEAD that the general path would answer with a fixed route's bytes.

        Anything it would read goes the general way: a query, a body, ``Origin``
        (CORS), conditional and range headers, headers past the size limit.
        """
        method = environ.get("REQUEST_METHOD")
        return (
            (method == "GET" or method == "HEAD")  # noqa: PLR1714 - faster than a tuple
            and not environ.get("QUERY_STRING")
            and not environ.get("CONTENT_LENGTH")
            and "HTTP_ORIGIN" not in environ
            and "HTTP_IF_NONE_MATCH" not in environ
            and "HTTP_IF_MODIFIED_SINCE" not in environ
            and "HTTP_RANGE" not in environ
            and "HTTP_IF_RANGE" not in environ
            and self._headers_length(environ) <= MAX_HEADERS_LENGTH
        )

    def _respond(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            if self.cors is not None and request.method == "OPTIONS":
                response = self.cors.preflight(request)
            else:
                response = self.handle(request)
        except HttpError as error:
            response = error_response(request, error)
        except Exception:
            log_id = secrets.token_hex(8)
            log.exception("Unhandled error in wsgiauth (logId=%s)", log_id)
            response = error_response(
                request, HttpError(f"An internal error occurred logId={log_id}"), name="Error"
            )
        if self.cors is not None and "HTTP_ORIGIN" in environ:
            self.cors.apply(request, response)
        response.headerlist.extend(SECURITY_HEADERS)  # handlers leave these to us
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """Route one request; raises :class:`~wsgiauth.errors.HttpError` on failure."""
        environ = request.environ
        if self.unshared_memory is not None and _several_processes(environ):
            self._refuse_unshared_memory()
        if len(environ.get("QUERY_STRING", "")) > MAX_QUERY_LENGTH:
            raise HeaderTooLargeError("Request query string is too large")
        if self._headers_length(environ) > MAX_HEADERS_LENGTH:
            raise HeaderTooLargeError("Request headers are too large")
        _check_utf8(environ)
        _limit_body(request)
        path = request.path_info
        extra = self._extra_routes.get(path)
        if extra is not None:
            return extra(request)
        provider_id, _, action = path.strip("/").partition("/")
        route = self._routes.get((provider_id, action))
        if route is None:
            if provider_id in self.providers:
                raise NotFoundError(f"Unknown route '{action}' of auth provider '{provider_id}'")
            raise NotFoundError(f"Unknown auth provider '{provider_id}'")
        methods, handler = route
        if request.method not in methods:
            raise MethodNotAllowedError(
                f"Method {request.method} is not allowed for '{action}'", allow=methods
            )
        return handler(request)


class _HeadersLength:
    """The total length of an environ's request headers (its ``HTTP_*`` values), fast.

    A server's environ holds more than the request: granian copies its whole process
    environment into each one, so a loop over every key cost more than the rest of a
    JWKS answer. The keys that are not headers are the same from one request to the
    next; they are learned (at most :attr:`LEARNED_MAX` of them) and skipped with one
    set difference, done in C.
    """

    LEARNED_MAX = 1024

    def __init__(self) -> None:
        self._other: frozenset[str] = frozenset()

    def __call__(self, environ: WSGIEnvironment) -> int:
        """The sum of the lengths of the ``HTTP_*`` values."""
        total = 0
        new: list[str] = []
        for key in environ.keys() - self._other:
            if key[:5] == "HTTP_":
                total += len(environ[key])
            else:
                new.append(key)
        if new and len(self._other) < self.LEARNED_MAX:
            # Benign race: a thread may drop another's additions; they are learned again.
            self._other = self._other.union(new)
        return total


def _several_processes(environ: WSGIEnvironment) -> bool:
    """Whether the server says other processes serve this app too (``wsgi.multiprocess``).

    gunicorn, uWSGI, mod_wsgi and Werkzeug say so only with several workers. The
    standard library's ``wsgiref`` says so always, as its default, though it never
    forks (Django's ``runserver``, Bottle's and ``wsgiauth serve``'s fallback run on it).
    """
    return bool(environ.get("wsgi.multiprocess")) and not environ.get(
        "SERVER_SOFTWARE", ""
    ).startswith("WSGIServer/")


#: An escaped byte past ASCII: an ASCII query without one decodes to ASCII, valid UTF-8.
_HIGH_ESCAPE = re.compile(r"%[89a-fA-F][0-9a-fA-F]")


def _check_utf8(environ: WSGIEnvironment) -> None:
    """Refuse a path or query that is not UTF-8 (400) before any handler decodes it."""
    path = environ.get("PATH_INFO", "")
    if not path.isascii():
        try:
            wsgi_bytes(path).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("Request path is not valid UTF-8") from None
    query = environ.get("QUERY_STRING", "")
    if not query.isascii() or _HIGH_ESCAPE.search(query):
        try:
            unquote_to_bytes(wsgi_bytes(query)).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("Request query is not valid UTF-8") from None


def _limit_body(request: Request) -> None:
    """Never hold more than :data:`MAX_BODY_LENGTH` of a body, whatever its framing.

    A declared ``Content-Length`` past the limit is refused unread. A chunked body
    (no length, ``wsgi.input_terminated``) is read up to one byte past the limit and,
    if it fits, handed on as a body of known length: without this a 100 MB chunked
    POST would be read whole into memory.
    """
    environ = request.environ
    length = environ.get("CONTENT_LENGTH", "")
    if length.isdigit():
        if int(length) > MAX_BODY_LENGTH:
            raise PayloadTooLargeError("Request body is too large")
        return  # WebOb reads a declared body by its length, and no further
    if environ["REQUEST_METHOD"] in ("GET", "HEAD") or not environ.get("wsgi.input_terminated"):
        return  # no handler reads these; PEP 3333: without a length there is no body
    stream = environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY_LENGTH:
        chunk = stream.read(MAX_BODY_LENGTH + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_BODY_LENGTH:
        raise PayloadTooLargeError("Request body is too large")
    request.body = b"".join(chunks)


def create_auth_app(
    config: Config,
    *,
    providers: Mapping[str, ProviderModule] | None = None,
    base_path: str | None = None,
    http: HttpClient | None = None,
    cookie_configurer: CookieConfigurer | None = None,
    catalog: Catalog | None = None,
    key_store: KeyStore | None = None,
    audit_hook: AuditHook | None = None,
) -> AuthApp:
    """Build the auth app from an app-config; every config problem raises here, at startup.

    :param providers: explicit provider modules by id, beating entry points and built-ins.
    :param base_path: the mount path, default ``auth.basePath`` or ``/api/auth``.
    :param catalog: the users sign-in resolvers look up; default the YAML files of
        ``catalog.locations``.
    :param key_store: where public signing keys go; default ``auth.keyStore``.
    :param audit_hook: gets every audit event's fields (:mod:`wsgiauth.audit`); beats
        ``auth.audit.hook``.
    """
    app_url = config.get_string("app.baseUrl")
    backend_url = config.get_string("backend.baseUrl")
    for key, url in (("app.baseUrl", app_url), ("backend.baseUrl", backend_url)):
        try:
            origin_of(url)
        except ValueError:
            raise config.error(key, "must be an absolute http(s) URL") from None
    base_path = base_path or config.get_optional_string("auth.basePath") or DEFAULT_BASE_PATH
    base_path = "/" + base_path.strip("/")
    base_url = backend_url.rstrip("/") + base_path
    extra_origins = "auth.experimentalExtraAllowedOrigins"
    is_origin_allowed = create_origin_filter(
        app_url,
        checked_origin_patterns(
            config, extra_origins, config.get_optional_string_list(extra_origins) or ()
        ),
    )
    sealer = CookieSealer(_session_secrets(config))
    http = http or create_http_client()
    identity = create_identity_service(config, issuer=base_url, key_store=key_store)
    # The token issuer saves each token's user info itself, with its exp.
    resolver_context = CatalogAuthResolverContext(
        catalog or YamlCatalog.from_config(config), identity.token_issuer
    )
    environment = config.get_optional_string("auth.environment") or "development"
    replay_store = replay_store_from_config(config, key_store=identity.key_store)
    providers_config = config.get_optional_config("auth.providers") or Config.from_dict({})
    call_limit = _outbound_call_limit(config)
    built: dict[str, AuthProviderRouteHandlers] = {}
    for provider_id, module in resolve_providers(providers_config.keys(), providers).items():
        options = AuthProviderFactoryOptions(
            provider_id=provider_id,
            config=providers_config.get_config(provider_id),
            base_url=base_url,
            app_url=app_url,
            is_origin_allowed=is_origin_allowed,
            # Its own bulkhead: a slow provider holds at most call_limit threads.
            http=http.with_bulkhead(Bulkhead(provider_id, call_limit)),
            sealer=sealer,
            resolver_context=resolver_context,
            environment=environment,
            replay_store=replay_store,
            sign_in_resolver_factories=load_resolver_factories(module.resolvers),
            cookie_configurer=cookie_configurer,
            refresh_flights=identity.refresh_flights,
        )
        try:
            built[provider_id] = module.factory(options)
        except ConfigError:
            raise
        except Exception as error:
            raise config.error(
                f"auth.providers.{provider_id}", f"failed to build: {error}"
            ) from error
    return AuthApp(
        built,
        base_path=base_path,
        routes={
            **identity.routes.routes(),
            CLIENT_PATH: client_script,
            **diagnostics_routes(
                config,
                environment=environment,
                base_url=base_url,
                app_url=app_url,
                providers=built,
                key_store=identity.key_store,
                catalog=resolver_context.catalog,
                http=http,
            ),
        },
        verifier=identity.verifier,
        token_issuer=identity.token_issuer,
        cors=cors_policy_from_config(config),
        audit=audit_settings_from_config(config, audit_hook),
        unshared_memory=unshared_memory_error(config),
    )


#: What a host integration may be given: app-config path(s), a ``Config`` or a ready app.
AuthAppSource = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Config | AuthApp


def auth_app_from(source: AuthAppSource | None, *, setting: str) -> AuthApp:
    """The auth app of a host's setting: built from path(s) or a ``Config``, or as given.

    A framework adapter's one setting can then take any of these.

    :param setting: the setting's name, for the :class:`~wsgiauth.errors.ConfigError`
        raised when it is missing (None, no paths, a blank path), of another type, or an
        app that cannot verify its own identity tokens, which every host needs.
    """
    if isinstance(source, AuthApp):
        auth_app = source
    elif isinstance(source, Config):
        auth_app = create_auth_app(source)
    else:
        if source is None or isinstance(source, str | os.PathLike):
            paths = [source] if source is not None else []
        elif isinstance(source, Sequence):
            paths = list(source)
        else:
            raise ConfigError(
                f"expected app-config path(s), a Config or an AuthApp, not {type(source).__name__}",
                path=setting,
            )
        if not paths or not all(
            isinstance(path, str | os.PathLike) and os.fspath(path).strip() for path in paths
        ):
            raise ConfigError("missing: set it to the app-config file path(s)", path=setting)
        auth_app = create_auth_app(load_config(*paths))
    if auth_app.verifier is None:
        raise ConfigError("the auth app has no identity verifier", path=setting)
    return auth_app


def _outbound_call_limit(config: Config) -> int:
    """``auth.outbound.maxConcurrentCalls``: calls in flight to one provider, per process."""
    key = "auth.outbound.maxConcurrentCalls"
    limit = config.get_optional_number(key)
    if limit is None:
        return default_limit()
    if isinstance(limit, float) and not limit.is_integer() or limit < 1:
        raise config.error(key, "must be a whole number of at least 1")
    return int(limit)


def _session_secrets(config: Config) -> list[str]:
    """``auth.session.secret``: one secret, or a list (newest first) to rotate; never split."""
    key = "auth.session.secret"
    if isinstance(config.get(key), str):
        return [config.get_string(key)]
    return config.get_optional_string_list(key) or []
