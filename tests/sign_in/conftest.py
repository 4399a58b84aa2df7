"""Fixtures: the YAML catalog of tests/files/catalog and a resolver context over it."""

from __future__ import annotations

import os

import pytest

from tests.catalog.fakes import CATALOG_DIR
from tests.catalog.fakes import FakeTokenIssuer
from wsgiauth.catalog import CatalogAuthResolverContext
from wsgiauth.catalog import YamlCatalog


@pytest.fixture
def catalog() -> YamlCatalog:
    return YamlCatalog(
        [os.path.join(CATALOG_DIR, "users.yaml"), os.path.join(CATALOG_DIR, "groups.yaml")]
    )


@pytest.fixture
def issuer() -> FakeTokenIssuer:
    return FakeTokenIssuer()


@pytest.fixture
def context(catalog, issuer) -> CatalogAuthResolverContext:
    return CatalogAuthResolverContext(catalog, issuer)
