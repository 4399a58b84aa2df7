"""The same small app in every host: plain WSGI, Pyramid, Bottle, Flask and Django.

Each has ``GET /hello`` (a body, a cookie and headers of its own), ``POST /echo``
(what the app received), ``GET /whoami`` (the identity, if any), ``GET /private``
(sign-in required, through the host's own idiom, and open to ``OPTIONS``, so a
forged preflight would reach it), and HTML error pages of its own
for 401 and 404 with the framework's debug mode on: if the framework's error
handling touched the auth app's answers, these pages would show up in the wire
checks. ``plain=True`` builds the app without wsgiauth, to compare the pass-through
with; ``clash=True`` adds a route under the auth base path.
"""

from __future__ import annotations

import json
from typing import Any

from wsgiauth import AuthMiddleware
from wsgiauth import IdentityMiddleware

HELLO_HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("X-Host", "kept"),
]
HELLO_BODY = b"hello from the host app"
ERROR_PAGE = b"<html><body>the host's own error page</body></html>"


def _identity_json(identity: Any) -> bytes:
    if identity is None:
        return json.dumps({"user": None}).encode()
    return json.dumps(
        {"user": identity.user_entity_ref, "ownership": list(identity.ownership_entity_refs)}
    ).encode()


def _echo_json(environ: dict[str, Any], body: bytes) -> bytes:
    return json.dumps(
        {
            "path": environ.get("PATH_INFO"),
            "script_name": environ.get("SCRIPT_NAME", ""),
            "query": environ.get("QUERY_STRING", ""),
            "authorization": environ.get("HTTP_AUTHORIZATION"),
            "body": body.decode("latin-1"),
        }
    ).encode()


# -- plain WSGI --------------------------------------------------------------------------


def build_wsgi(source: Any, *, plain: bool = False, clash: bool = False) -> Any:
    """The reference host: ``AuthMiddleware`` and ``IdentityMiddleware`` around a WSGI app."""

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/hello":
            start_response("200 OK", [*HELLO_HEADERS, ("Set-Cookie", "host=1; Path=/")])
            return [HELLO_BODY]
        if path == "/echo":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            start_response("200 OK", [("Content-Type", "application/json")])
            return [_echo_json(environ, body)]
        if path in ("/whoami", "/private"):
            start_response("200 OK", [("Content-Type", "application/json")])
            return [_identity_json(environ.get("wsgiauth.identity"))]
        start_response("404 Not Found", [("Content-Type", "text/html")])
        return [ERROR_PAGE]

    if plain:
        return app
    auth_app = _auth_app_of(source)
    wrapped = IdentityMiddleware(
        app, auth_app.verifier, protected=["/private"], cors=auth_app.cors
    )
    return AuthMiddleware(wrapped, auth_app)


def _auth_app_of(source: Any) -> Any:
    from wsgiauth import AuthApp
    from wsgiauth import Config
    from wsgiauth import create_auth_app
    from wsgiauth import load_config

    if isinstance(source, AuthApp):
        return source
    if isinstance(source, Config):
        return create_auth_app(source)
    return create_auth_app(load_config(source))


# -- Pyramid -----------------------------------------------------------------------------


class PyramidRoot:
    """Signed-in callers may ``view``; ``group:default/admins`` may ``admin``."""

    def __init__(self, request: Any) -> None:
        from pyramid.authorization import Allow
        from pyramid.authorization import Authenticated

        self.__acl__ = [(Allow, Authenticated, "view"), (Allow, "group:default/admins", "admin")]


def build_pyramid(source: Any, *, plain: bool = False, clash: bool = False) -> Any:
    from pyramid.config import Configurator
    from pyramid.httpexceptions import HTTPUnauthorized
    from pyramid.response import Response

    settings = {
        "pyramid.debug_all": "true",
        "wsgiauth.config": source,
        "wsgiauth.security_policy": "true",
    }
    with Configurator(settings=settings, root_factory=PyramidRoot) as config:
        if clash:
            config.add_route("clash", "/api/auth/me")
            config.add_view(lambda request: Response("clash"), route_name="clash")
        if not plain:
            config.include("pyramid_wsgiauth")

        def hello(request):
            response = Response(body=HELLO_BODY, headerlist=list(HELLO_HEADERS))
            response.headers.add("Set-Cookie", "host=1; Path=/")
            return response

        def echo(request):
            # Not request.body: WebTest marks the body seekable, the validator's wrapper isn't.
            raw = request.environ["wsgi.input"].read(request.content_length or 0)
            body = _echo_json(request.environ, raw)
            return Response(body=body, content_type="application/json", charset=None)

        def identity_view(request):
            identity = getattr(request, "identity", None)
            return Response(
                body=_identity_json(identity), content_type="application/json", charset=None
            )

        def error_page(context, request):
            return Response(body=ERROR_PAGE, status=context.status, content_type="text/html")

        for name, path, view, permission in [
            ("hello", "/hello", hello, None),
            ("echo", "/echo", echo, None),
            ("whoami", "/whoami", identity_view, None),
            ("private", "/private", identity_view, "view"),
            ("admin", "/admin", identity_view, "admin"),
        ]:
            config.add_route(name, path)
            config.add_view(view, route_name=name, permission=permission)
        config.add_notfound_view(error_page)
        config.add_exception_view(error_page, HTTPUnauthorized)
        return config.make_wsgi_app()


# -- Bottle ------------------------------------------------------------------------------


def build_bottle(source: Any, *, plain: bool = False, clash: bool = False) -> Any:
    import bottle
    from bottle_wsgiauth import WsgiAuthPlugin

    app = bottle.Bottle()
    if clash:
        app.route("/api/auth/me", callback=lambda: "clash")
    if not plain:
        app.install(WsgiAuthPlugin(source))

    @app.get("/hello")
    def hello():
        for name, value in HELLO_HEADERS:
            bottle.response.set_header(name, value)
        bottle.response.add_header("Set-Cookie", "host=1; Path=/")
        return HELLO_BODY

    @app.post("/echo")
    def echo():
        bottle.response.content_type = "application/json"
        return _echo_json(bottle.request.environ, bottle.request.body.read())

    @app.get("/whoami")
    def whoami(identity=None):
        bottle.response.content_type = "application/json"
        return _identity_json(identity)

    @app.route("/private", method=["GET", "OPTIONS"], require_identity=True)
    def private(identity=None):
        bottle.response.content_type = "application/json"
        return _identity_json(identity)

    @app.error(404)
    @app.error(401)
    def error_page(error):
        return ERROR_PAGE

    return app


# -- Flask -------------------------------------------------------------------------------


def build_flask(source: Any, *, plain: bool = False, clash: bool = False) -> Any:
    import flask
    from flask_wsgiauth import WsgiAuth
    from flask_wsgiauth import current_identity
    from flask_wsgiauth import login_required

    app = flask.Flask("flask_host")
    app.debug = True
    app.config["WSGIAUTH_CONFIG"] = source
    if clash:
        app.add_url_rule("/api/auth/me", "clash", lambda: "clash")
    if not plain:
        WsgiAuth(app)

    @app.get("/hello")
    def hello():
        response = flask.Response(HELLO_BODY, headers=HELLO_HEADERS)
        response.headers.add("Set-Cookie", "host=1; Path=/")
        return response

    @app.post("/echo")
    def echo():
        body = _echo_json(flask.request.environ, flask.request.get_data())
        return flask.Response(body, content_type="application/json")

    @app.get("/whoami")
    def whoami():
        identity = current_identity._get_current_object() if not plain else None
        return flask.Response(_identity_json(identity), content_type="application/json")

    @app.route("/private", methods=["GET", "OPTIONS"])  # OPTIONS too: the view sees preflights
    @(login_required if not plain else (lambda view: view))
    def private():
        identity = current_identity._get_current_object() if not plain else None
        return flask.Response(_identity_json(identity), content_type="application/json")

    @app.errorhandler(404)
    @app.errorhandler(401)
    def error_page(error):
        return ERROR_PAGE, error.code

    return app


# -- Django ------------------------------------------------------------------------------


def _django_views() -> dict[str, Any]:
    from django.http import HttpResponse
    from django_wsgiauth import login_required

    def hello(request):
        response = HttpResponse(HELLO_BODY, headers=HELLO_HEADERS)
        response.headers["Set-Cookie"] = "host=1; Path=/"
        return response

    def echo(request):
        return HttpResponse(_echo_json(request.META, request.body), content_type="application/json")

    def whoami(request):
        identity = getattr(request, "wsgiauth_identity", None)
        return HttpResponse(_identity_json(identity), content_type="application/json")

    def user(request):
        user = getattr(request, "user", None)
        body = {
            "is_authenticated": user.is_authenticated,
            "username": user.get_username(),
        }
        return HttpResponse(json.dumps(body), content_type="application/json")

    def error_page(request, exception=None):
        return HttpResponse(ERROR_PAGE, status=404)

    return {
        "hello": hello,
        "echo": echo,
        "whoami": whoami,
        "private": login_required(whoami),
        "user": user,
        "error_page": error_page,
    }


class DjangoUrls:
    """A ROOT_URLCONF: any hashable object with ``urlpatterns`` will do."""

    @staticmethod
    def patterns(*extra: Any) -> list[Any]:
        from django.urls import path
        from django.views.decorators.csrf import csrf_exempt

        views = _django_views()
        return [
            *extra,
            path("hello", views["hello"]),
            path("echo", csrf_exempt(views["echo"])),
            path("whoami", views["whoami"]),
            path("private", views["private"]),
            path("open/user", views["user"]),
            path("api/data/user", views["user"]),
        ]


def django_urlconf(*, clash: bool = False) -> Any:
    """A fresh URLconf class (Django caches resolvers by URLconf)."""
    from django.http import HttpResponse
    from django.urls import include
    from django.urls import path

    extra = []
    if clash:
        extra = [path("api/", include([path("auth/me", lambda request: HttpResponse("clash"))]))]
    views = _django_views()
    return type(
        "Urls",
        (),
        {"urlpatterns": DjangoUrls.patterns(*extra), "handler404": views["error_page"]},
    )


def django_settings(source: Any, *, plain: bool = False, clash: bool = False, **wsgiauth: Any):
    """The settings to override for a Django host."""
    return {
        "DEBUG": True,
        "ROOT_URLCONF": django_urlconf(clash=clash),
        "MIDDLEWARE": [] if plain else ["django_wsgiauth.middleware.WsgiAuthMiddleware"],
        "WSGIAUTH": {"CONFIG": source, **wsgiauth},
    }


def build_django(source: Any, *, plain: bool = False, clash: bool = False) -> Any:
    """Django's WSGI app (settings must be overridden first, see ``django_settings``)."""
    from django.core.wsgi import get_wsgi_application
    from django_wsgiauth.wsgi import wrap

    application = get_wsgi_application()
    return application if plain else wrap(application)


BUILDERS = {
    "wsgi": build_wsgi,
    "pyramid": build_pyramid,
    "bottle": build_bottle,
    "flask": build_flask,
    "django": build_django,
}
