"""Testing apps that use wsgiauth: the pytest plugin and what it is made of.

The plugin (:mod:`wsgiauth.testing.plugin`) is registered through the ``pytest11``
entry point, so it is active wherever wsgiauth is installed with its ``test`` extra.
See ``docs/testing.md``.
"""

from __future__ import annotations

from .idp import TestIdp as TestIdp
from .idp import serve_test_idp as serve_test_idp
from .tokens import find_auth_app as find_auth_app
from .tokens import issue_identity_token as issue_identity_token

__all__ = ["TestIdp", "find_auth_app", "issue_identity_token", "serve_test_idp"]
