"""Provider registry: built-ins, entry points, explicit modules, and their clashes."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint

import pytest

from tests.conftest import FAKE_MODULE
from wsgiauth import registry
from wsgiauth.errors import ConfigError
from wsgiauth.registry import ENTRY_POINT_GROUP
from wsgiauth.registry import resolve_providers
from wsgiauth.types import ProviderModule

OTHER_MODULE = ProviderModule(provider_id="other", factory=FAKE_MODULE.factory)


@pytest.fixture(autouse=True)
def _fresh_entry_points() -> Iterator[None]:
    registry._entry_points.cache_clear()
    yield
    registry._entry_points.cache_clear()


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch):
    """Pretend these ``name=value`` entry points are installed."""

    def install(**points: str) -> None:
        def fake_entry_points(*, group: str) -> list[EntryPoint]:
            assert group == ENTRY_POINT_GROUP
            return [EntryPoint(name, value, group) for name, value in points.items()]

        monkeypatch.setattr(registry, "entry_points", fake_entry_points)
        registry._entry_points.cache_clear()

    install()
    return install


@pytest.mark.parametrize("provider_id", ["oidc", "oauth2"])
def test_builtin_providers_resolve(installed, provider_id: str) -> None:
    found = resolve_providers([provider_id])

    assert list(found) == [provider_id]
    assert isinstance(found[provider_id], ProviderModule)
    assert found[provider_id].provider_id == provider_id
    assert callable(found[provider_id].factory)


def test_only_configured_ids_are_returned(installed) -> None:
    installed(fake="tests.conftest:FAKE_MODULE")

    assert resolve_providers([]) == {}
    assert list(resolve_providers(["oauth2"])) == ["oauth2"]


def test_entry_point_resolves(installed) -> None:
    installed(fake="tests.conftest:FAKE_MODULE")

    assert resolve_providers(["fake"]) == {"fake": FAKE_MODULE}


def test_entry_points_are_loaded_only_when_configured(installed) -> None:
    # Loading this one would fail; it must not be touched unless configured.
    installed(fake="tests.conftest:FAKE_MODULE", broken="no_such_module_for_wsgiauth:module")

    assert resolve_providers(["fake"]) == {"fake": FAKE_MODULE}


def test_explicit_beats_everything(installed) -> None:
    installed(fake="tests.conftest:FAKE_MODULE", oidc="tests.conftest:FAKE_MODULE")

    found = resolve_providers(
        ["fake", "oidc", "oauth2"], {"fake": OTHER_MODULE, "oidc": OTHER_MODULE}
    )

    assert found["fake"] is OTHER_MODULE
    assert found["oidc"] is OTHER_MODULE
    assert found["oauth2"].provider_id == "oauth2"


def test_explicit_unconfigured_ids_are_ignored(installed) -> None:
    assert resolve_providers(["oauth2"], {"fake": FAKE_MODULE}).keys() == {"oauth2"}


def test_unknown_id_names_its_config_path(installed) -> None:
    installed(fake="tests.conftest:FAKE_MODULE")

    with pytest.raises(ConfigError) as caught:
        resolve_providers(["nonesuch"])

    assert caught.value.path == "auth.providers.nonesuch"
    assert str(caught.value).startswith("auth.providers.nonesuch: unknown provider")
    assert "fake" in str(caught.value)
    assert "oidc" in str(caught.value)


def test_entry_point_clashing_with_builtin_is_a_config_error(installed) -> None:
    installed(oidc="thirdparty_oidc:module")

    with pytest.raises(ConfigError) as caught:
        resolve_providers(["oidc"])

    assert caught.value.path == "auth.providers.oidc"
    message = str(caught.value)
    assert "thirdparty_oidc:module" in message
    assert "wsgiauth.providers.oidc:module" in message


def test_clash_is_only_checked_for_configured_ids(installed) -> None:
    installed(oidc="thirdparty_oidc:module")

    assert list(resolve_providers(["oauth2"])) == ["oauth2"]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("tests.conftest:base_config", id="not-a-module"),
        pytest.param("tests.conftest:APP_ORIGIN", id="a-string"),
        pytest.param("tests.conftest:no_such_attribute", id="missing-attribute"),
        pytest.param("no_such_module_for_wsgiauth:module", id="missing-module"),
    ],
)
def test_bad_entry_point_is_a_config_error(installed, value: str) -> None:
    installed(thirdparty=value)

    with pytest.raises(ConfigError) as caught:
        resolve_providers(["thirdparty"])

    assert caught.value.path == "auth.providers.thirdparty"
    assert "cannot load provider" in str(caught.value)
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("tests.conftest:base_config", id="not-a-module"),
        pytest.param("no_such_module_for_wsgiauth:module", id="missing-module"),
    ],
)
def test_bad_builtin_is_a_config_error(installed, monkeypatch, path: str) -> None:
    monkeypatch.setattr(registry, "BUILTIN_PROVIDERS", {"broken": path})

    with pytest.raises(ConfigError) as caught:
        resolve_providers(["broken"])

    assert caught.value.path == "auth.providers.broken"


def test_entry_points_are_discovered_once(installed, monkeypatch) -> None:
    calls = []

    def counting_entry_points(*, group: str) -> list[EntryPoint]:
        calls.append(group)
        return [EntryPoint("fake", "tests.conftest:FAKE_MODULE", group)]

    monkeypatch.setattr(registry, "entry_points", counting_entry_points)
    registry._entry_points.cache_clear()

    resolve_providers(["fake"])
    resolve_providers(["fake", "oauth2"])

    assert calls == [ENTRY_POINT_GROUP]


def test_real_entry_point_discovery_finds_no_clash() -> None:
    # wsgiauth itself registers nothing under the group: built-ins are static.
    assert not set(registry._entry_points()) & set(registry.BUILTIN_PROVIDERS)
