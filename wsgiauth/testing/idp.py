"""A fake OpenID provider for end-to-end tests of your own app's sign-in.

:func:`serve_test_idp` runs :mod:`wsgiauth.fake_idp` on a free loopback port with one
confidential client for your app's callback. :class:`TestIdp` gives the ``oidc``
provider config that points at it, and plays the user on its sign-in page.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from ..fake_idp import FakeClient
from ..fake_idp import FakeIdp
from ..fake_idp import FakeUser
from ..fake_idp import running_fake_idp
from ..fake_idp import users_from_catalog

__all__ = ["HTTP_TIMEOUT", "TestIdp", "serve_test_idp"]

#: Seconds any request to the fake IdP may take.
HTTP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class TestIdp:
    """A running fake IdP and the client registered for your app."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    idp: FakeIdp
    client_id: str
    client_secret: str
    redirect_uri: str

    @property
    def issuer(self) -> str:
        return self.idp.issuer

    @property
    def metadata_url(self) -> str:
        return self.idp.metadata_url

    def oidc_config(self, **extra: Any) -> dict[str, Any]:
        """The ``auth.providers.oidc.<env>`` block for it (``extra`` keys added)."""
        return {
            "metadataUrl": self.metadata_url,
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "prompt": "auto",
            **extra,
        }

    def sign_in(
        self,
        authorize_url: str,
        user: str | None = None,
        *,
        session: requests.Session | None = None,
    ) -> str:
        """Open ``authorize_url`` (where ``/start`` redirected) as a browser would, pick
        ``user`` on the sign-in page (none with auto-consent), and return the callback URL
        the IdP redirects to, without following it."""
        session = session or requests.Session()
        page = session.get(authorize_url, timeout=HTTP_TIMEOUT, allow_redirects=False)
        if page.status_code == 303:
            return str(page.headers["Location"])
        if page.status_code != 200:
            raise AssertionError(f"fake IdP answered {page.status_code}: {page.text[:500]}")
        found = re.search(r'name="request" value="([^"]+)"', page.text)
        if found is None or user is None:
            raise AssertionError("the fake IdP showed its sign-in page: pass user=")
        answer = session.post(
            urljoin(page.url, "sign-in"),
            data={"request": found.group(1), "user": user},
            timeout=HTTP_TIMEOUT,
            allow_redirects=False,
        )
        if answer.status_code != 303:
            raise AssertionError(f"fake IdP refused the sign-in: {answer.text[:500]}")
        return str(answer.headers["Location"])


@contextlib.contextmanager
def serve_test_idp(
    redirect_uri: str,
    users: str | Path | Iterable[str | FakeUser],
    *,
    auto_consent: str | None = None,
    signing_alg: str = "RS256",
) -> Iterator[TestIdp]:
    """Serve a fake IdP until the block ends.

    :param redirect_uri: your app's callback, e.g.
        ``http://localhost/api/auth/oidc/handler/frame``.
    :param users: a catalog file, or users (entity refs or :class:`FakeUser`).
    :param auto_consent: sign every request in as this user ref, with no page.
    :param signing_alg: the ID tokens' algorithm, RS256 or ES256.
    """
    if isinstance(users, str | Path):
        listed = users_from_catalog(users)
    else:
        listed = [u if isinstance(u, FakeUser) else FakeUser.from_ref(u) for u in users]
    secret = secrets.token_urlsafe(24)
    client = FakeClient(
        client_id="wsgiauth-test",
        client_secret=secret,
        redirect_uris=(redirect_uri,),
        id_token_signed_response_alg=signing_alg,
    )
    with running_fake_idp(listed, [client], auto_consent=auto_consent) as idp:
        yield TestIdp(idp, client.client_id, secret, redirect_uri)
