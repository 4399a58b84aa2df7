"""Fixtures for the adapter tests: an auth app with a stub OAuth provider and the guest, and hosts.

Django is configured once per session (``settings.configure`` is process-wide);
each Django host then overrides only its own settings, undone after the test.
Bottle's debug mode is a module global, restored the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any
from wsgiref.validate import validator

import pytest
import webtest

from tests.adapters import hosts
from tests.conftest import FAKE_MODULE
from tests.conftest import base_config
from wsgiauth import AuthApp
from wsgiauth import Config
from wsgiauth import create_auth_app

HOSTS = ["wsgi", "pyramid", "bottle", "flask", "django"]


def auth_config(**guest: Any) -> dict[str, Any]:
    """An app-config: the stub OAuth provider ``fake`` and the guest, keys in memory."""
    return base_config(
        providers={"fake": {"development": {"clientId": "id"}}, "guest": guest},
        keyStore={"provider": "memory"},
    )


def new_auth_app(**guest: Any) -> AuthApp:
    return create_auth_app(Config.from_dict(auth_config(**guest)), providers={"fake": FAKE_MODULE})


@pytest.fixture(scope="session")
def django_configured() -> None:
    """Django's settings, once for the session; hosts override what they need."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=True,
            SECRET_KEY="tests-only",  # noqa: S106
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=hosts.django_urlconf(),
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()


@pytest.fixture
def build_host(request) -> Iterator[Callable[..., Any]]:
    """``build_host(name, source, plain=False, clash=False, **WSGIAUTH_KEYS)``: a WSGI app."""
    undo: list[Callable[[], Any]] = []

    def build(name: str, source: Any, **options: Any) -> Any:
        if name == "bottle":
            import bottle

            previous = bottle.DEBUG
            bottle.debug(True)
            undo.append(lambda: bottle.debug(previous))
        extra = {k: options.pop(k) for k in list(options) if k.isupper()}
        if name == "django":
            from django.test import override_settings

            request.getfixturevalue("django_configured")
            override = override_settings(**hosts.django_settings(source, **options, **extra))
            override.enable()
            undo.append(override.disable)
        return hosts.BUILDERS[name](source, **options)

    yield build
    for step in reversed(undo):
        step()


@pytest.fixture(params=HOSTS)
def host(request, build_host) -> webtest.TestApp:
    """Each host in turn, with a fresh auth app; WSGI-validated outside and (where the
    host is a plain WSGI stack) inside."""
    auth_app = new_auth_app()
    app = webtest.TestApp(validator(build_host(request.param, auth_app)))
    app.auth_app = auth_app  # type: ignore[attr-defined]
    app.name = request.param  # type: ignore[attr-defined]
    return app
