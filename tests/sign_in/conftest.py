"""Fixtures: the same catalog, token issuer and resolver context as the catalog tests."""

from __future__ import annotations

from tests.catalog.conftest import catalog  # noqa: F401
from tests.catalog.conftest import context  # noqa: F401
from tests.catalog.conftest import issuer  # noqa: F401
