"""The full popup flow of a provider against its loopback fake, as a browser drives it.

``start`` → the provider's authorize page (the fake consents) → ``handler/frame`` →
the postMessage payload → ``refresh`` → ``logout``. The auth app is the real one,
built from an app-config dict, with a YAML catalog of the test's users and an
:class:`~wsgiauth.http.HttpClient` whose fixed hosts are rerouted to the fake.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from wsgiref.validate import validator

import pytest
import webtest
import yaml

from tests.conftest import APP_ORIGIN
from tests.conftest import base_config
from tests.conftest import parse_web_message
from tests.providers.loopback_idp import LoopbackIdp
from wsgiauth import AuthMiddleware
from wsgiauth import Config
from wsgiauth import YamlCatalog
from wsgiauth import create_auth_app
from wsgiauth.check import check_config
from wsgiauth.errors import ConfigError
from wsgiauth.http import create_http_client

XRW = {"X-Requested-With": "XMLHttpRequest"}


def user_entity(name: str, *, email: str | None = None, **annotations: str) -> dict[str, Any]:
    """A catalog User entity with ``annotations``."""
    spec: dict[str, Any] = {"profile": {"email": email}} if email else {}
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {**spec, "memberOf": []},
    }


def build_app(
    tmp_path: Path,
    providers: dict[str, Any],
    *,
    users: list[dict[str, Any]] = (),  # type: ignore[assignment]
    reroute: dict[str, str] | None = None,
) -> webtest.TestApp:
    """The auth app for ``auth.providers`` = ``providers``, its catalog holding ``users``."""
    catalog_file = tmp_path / "users.yaml"
    catalog_file.write_text(yaml.safe_dump_all(list(users)) if users else "")
    http = create_http_client()
    for origin, target in (reroute or {}).items():
        http.reroute(origin, target)
    config = Config.from_dict(base_config(providers=providers, keyStore={"provider": "memory"}))
    auth_app = create_auth_app(config, http=http, catalog=YamlCatalog([catalog_file]))
    app = webtest.TestApp(validator(AuthMiddleware(_not_found, auth_app)))
    app.auth_app = auth_app  # type: ignore[attr-defined]
    return app


def _not_found(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


@dataclass
class SignIn:
    """What one popup sign-in left: the authorize URL sent to the browser, the message."""

    authorize_url: str
    #: The payload posted to the opener: ``{"type", "response"}`` or ``{"type", "error"}``.
    message: dict[str, Any]


def sign_in(
    app: webtest.TestApp,
    idp: LoopbackIdp,
    provider_id: str,
    *,
    env: str = "development",
    scope: str | None = None,
) -> SignIn:
    """Start, consent at the fake, come back to the callback; the posted message."""
    query = f"env={env}&origin={APP_ORIGIN}" + (f"&scope={scope}" if scope else "")
    start = app.get(f"/api/auth/{provider_id}/start?{query}", status=302)
    callback_url = idp.consent(start.location)
    callback = urlsplit(callback_url)
    page = app.get(f"{callback.path}?{callback.query}", status=200)
    return SignIn(authorize_url=start.location, message=parse_web_message(page.text))


def refresh(app: webtest.TestApp, provider_id: str, *, env: str = "development", **kw: Any) -> Any:
    """``/refresh`` with the session cookie the sign-in set."""
    return app.get(f"/api/auth/{provider_id}/refresh?env={env}", headers=XRW, **kw)


def logout(app: webtest.TestApp, provider_id: str, *, env: str = "development", **kw: Any) -> Any:
    """``/logout``: the session cookies are cleared."""
    return app.post(f"/api/auth/{provider_id}/logout?env={env}", headers=XRW, **kw)


def faults(expired_code_message: str = "invalid_grant") -> list[Any]:
    """``(fault, error name, message part)`` for the four faults a :class:`LoopbackIdp` injects.

    ``expired_code_message`` is what the token endpoint's refusal of a spent code reads as.
    """
    return [
        pytest.param("access_denied", "AuthenticationError", "denied access", id="denied"),
        pytest.param(
            "expired_code", "AuthenticationError", expired_code_message, id="expired-code"
        ),
        pytest.param("server_error", "ServiceUnavailableError", "502", id="5xx"),
        pytest.param("malformed", "ServiceUnavailableError", "malformed", id="malformed"),
    ]


#: The four faults, for ``@pytest.mark.parametrize(("fault", "name", "message"), FAULTS)``.
FAULTS = faults()


def fault_error(
    app: webtest.TestApp,
    idp: LoopbackIdp,
    provider_id: str,
    fault: str,
    *,
    query: str = "env=development",
) -> dict[str, Any]:
    """The error posted to the popup when ``idp`` injects ``fault``.

    ``access_denied`` is set before ``start`` (the consent page refuses); every other fault
    after consent, so it hits the back channel (token endpoint, user APIs).
    """
    if fault == "access_denied":
        idp.fault = fault
    start = app.get(f"/api/auth/{provider_id}/start?{query}", status=302)
    callback = urlsplit(idp.consent(start.location))
    idp.fault = fault
    page = app.get(f"{callback.path}?{callback.query}", status=200)
    return parse_web_message(page.text)["error"]


def check_config_of(
    tmp_path: Path, config: str | dict[str, Any], *, environ: dict[str, str] | None = None
) -> list[ConfigError]:
    """``check_config`` of ``config`` (YAML text, or a document dumped to YAML) as a file."""
    path = tmp_path / "app-config.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return check_config(path, environ=environ)
