"""A fake OpenID provider for development and tests: ``wsgiauth fake-idp``.

Never put it in front of real users: anyone who reaches it signs in as any listed
user. It is strict where a relying party needs it to be (exact redirect URIs, PKCE
S256, single-use codes, refresh-token rotation with replay detection, ``nonce``,
``iss`` on the callback), so a client that works against it is not merely lucky.

- :mod:`.discovery`: keys (RS256, ES256), JWKS, discovery document;
- :mod:`.registry`: users (from a catalog file) and clients;
- :mod:`.grants`: requests, codes, grants and tokens in memory;
- :mod:`.authorize`: ``/authorize`` and the sign-in page;
- :mod:`.token`: ``/token`` (code + PKCE, refresh rotation, client authentication);
- :mod:`.session`: ``/userinfo``, ``/revoke``, ``/end-session``;
- :mod:`.app`: the WSGI app; :mod:`.server` and :mod:`.command`: serving it.
"""

from __future__ import annotations

from .app import FakeIdp as FakeIdp
from .registry import FakeClient as FakeClient
from .registry import FakeUser as FakeUser
from .registry import clients_from_yaml as clients_from_yaml
from .registry import users_from_catalog as users_from_catalog
from .server import running_fake_idp as running_fake_idp

__all__ = [
    "FakeClient",
    "FakeIdp",
    "FakeUser",
    "clients_from_yaml",
    "running_fake_idp",
    "users_from_catalog",
]
