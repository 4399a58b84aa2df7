"""The ``wsgiauth`` pytest plugin, active once wsgiauth is installed with its ``test`` extra.

Point it at your app, once, in the pytest config::

    [tool.pytest.ini_options]
    wsgiauth_app = "myapp:app"          # or "myapp:create_app()"

or by overriding the ``wsgiauth_app`` fixture. Then:

- ``identity_token(user, groups=())``: a token your app's own identity check accepts;
- ``wsgiauth_webtest(user=None, groups=())``: a ``webtest.TestApp`` of your app that
  sends it (anonymous without ``user``);
- ``wsgiauth_requests(user, groups=())``: a ``requests.Session`` that sends it, for a
  server you started;
- ``fake_idp(redirect_uri, users, auto_consent=None)``: a running fake OpenID provider.

Nothing here changes how tokens are checked: tokens are signed by your app's own
auth app (:mod:`wsgiauth.testing.tokens`).
"""

from __future__ import annotations

import contextlib
import os
import pkgutil
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ..fake_idp import FakeUser
from ..server_store import SINGLE_PROCESS_ENV
from .idp import TestIdp
from .idp import serve_test_idp
from .tokens import find_auth_app
from .tokens import issue_identity_token

__all__ = [
    "INI_OPTION",
    "fake_idp",
    "identity_token",
    "pytest_addoption",
    "wsgiauth_app",
    "wsgiauth_requests",
    "wsgiauth_webtest",
]

INI_OPTION = "wsgiauth_app"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI_OPTION,
        "your WSGI app for wsgiauth's fixtures, as package.module:attr or package.module:factory()",
        default="",
    )


@pytest.fixture
def wsgiauth_app(request: pytest.FixtureRequest) -> Any:
    """Your WSGI app (or its ``AuthApp``), named by the ``wsgiauth_app`` ini option.

    It is built (imported, or made by its factory) as the app of one process
    (``WSGIAUTH_SINGLE_PROCESS=1`` meanwhile): the tests run it here, so its signing
    key signs at once, even in a key store other processes could read, where a new
    key otherwise waits a few seconds (docs/deployment.md). Override this fixture to
    build it yourself.
    """
    dotted = str(request.config.getini(INI_OPTION)).strip()
    if not dotted:
        raise pytest.UsageError(
            "wsgiauth: set `wsgiauth_app = package.module:app` in your pytest config, "
            "or override the wsgiauth_app fixture"
        )
    factory = dotted.endswith("()")
    with _one_process():
        obj = pkgutil.resolve_name(dotted.removesuffix("()"))
        return obj() if factory else obj


@contextlib.contextmanager
def _one_process() -> Iterator[None]:
    """``WSGIAUTH_SINGLE_PROCESS=1`` for the block, unless the environment says otherwise."""
    if SINGLE_PROCESS_ENV in os.environ:
        yield
        return
    os.environ[SINGLE_PROCESS_ENV] = "1"
    try:
        yield
    finally:
        os.environ.pop(SINGLE_PROCESS_ENV, None)


@pytest.fixture
def identity_token(wsgiauth_app: Any) -> Callable[..., str]:
    """``identity_token("user:default/jane", groups=["group:default/team-a"])``: a token
    signed by your app's auth app, which its identity check accepts."""
    auth_app = find_auth_app(wsgiauth_app)

    def issue(user: str, groups: Iterable[str] = (), **claims: Any) -> str:
        return issue_identity_token(auth_app, user, groups, **claims)

    return issue


@pytest.fixture
def wsgiauth_webtest(wsgiauth_app: Any, identity_token: Callable[..., str]) -> Callable[..., Any]:
    """``wsgiauth_webtest("user:default/jane")``: a ``webtest.TestApp`` of your app that
    sends the user's token with every request; ``wsgiauth_webtest()`` sends none."""
    import webtest  # type: ignore[import-untyped]

    def make(user: str | None = None, groups: Iterable[str] = (), **claims: Any) -> Any:
        extra = {}
        if user is not None:
            token = identity_token(user, groups, **claims)
            extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return webtest.TestApp(wsgiauth_app, extra_environ=extra)

    return make


@pytest.fixture
def wsgiauth_requests(identity_token: Callable[..., str]) -> Iterator[Callable[..., Any]]:
    """``wsgiauth_requests("user:default/jane")``: a ``requests.Session`` that sends the
    user's token, for your app served by a real server; closed after the test."""
    sessions: list[requests.Session] = []

    def make(user: str, groups: Iterable[str] = (), **claims: Any) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {identity_token(user, groups, **claims)}"
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def fake_idp() -> Iterator[Callable[..., TestIdp]]:
    """``fake_idp(redirect_uri, users, auto_consent=None)``: a fake OpenID provider on a
    free loopback port (see :class:`~wsgiauth.testing.idp.TestIdp`), stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(
            redirect_uri: str,
            users: str | Path | Iterable[str | FakeUser],
            *,
            auto_consent: str | None = None,
            signing_alg: str = "RS256",
        ) -> TestIdp:
            return stack.enter_context(
                serve_test_idp(
                    redirect_uri, users, auto_consent=auto_consent, signing_alg=signing_alg
                )
            )

        yield start
