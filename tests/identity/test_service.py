"""The identity half assembled from config: tokens the app issues, its own verifier accepts."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import base_config
from tests.conftest import make_testapp
from wsgiauth.config import Config
from wsgiauth.identity.refresh_flights import SqlRefreshFlights
from wsgiauth.identity.service import create_identity_service


@pytest.mark.parametrize(
    ("curve", "algorithm"), [(ec.SECP256R1(), "ES256"), (ec.SECP384R1(), "ES384")]
)
def test_static_keys_verify_with_their_own_algorithm(tmp_path, curve, algorithm):
    private = ec.generate_private_key(curve)
    (tmp_path / "private.pem").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "public.pem").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    static = {
        "keys": [
            {
                "publicKeyFile": str(tmp_path / "public.pem"),
                "privateKeyFile": str(tmp_path / "private.pem"),
                "keyId": "static-1",
                "algorithm": algorithm,
            }
        ]
    }
    config = base_config(providers={"guest": {}}, keyStore={"provider": "static", "static": static})
    testapp = make_testapp(config)
    token = testapp.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]
    identity = testapp.auth_app.verifier.verify(token)
    assert identity.user_entity_ref == "user:development/guest"
    assert testapp.get("/api/auth/.well-known/jwks.json").json["keys"][0]["alg"] == algorithm


def test_refresh_flights_use_the_user_info_database():
    shared = create_identity_service(Config.from_dict(base_config()), issuer="http://x/api/auth")
    assert isinstance(shared.refresh_flights, SqlRefreshFlights)
    assert shared.refresh_flights.database is shared.user_info_store.database  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("database", "key_store", "environ", "shared"),
    [
        pytest.param("file", None, {}, True, id="sqlite-file"),
        pytest.param(":memory:", None, {}, False, id="sqlite-memory"),
        pytest.param("file", "memory", {}, False, id="memory-store"),
        pytest.param("file", "memory", {"WSGIAUTH_SERVER_STORE": "x"}, True, id="server-store"),
        pytest.param("file", None, {"WSGIAUTH_SINGLE_PROCESS": "1"}, False, id="single-process"),
    ],
)
def test_new_keys_wait_only_where_other_processes_read_the_store(
    tmp_path, monkeypatch, no_server_word, database, key_store, environ, shared
):
    for name, value in environ.items():
        monkeypatch.setenv(name, str(tmp_path / value) if name.endswith("STORE") else value)
    config = base_config(**({"keyStore": {"provider": key_store}} if key_store else {}))
    filename = str(tmp_path / "auth.sqlite3") if database == "file" else database
    config["backend"]["database"] = {"client": "better-sqlite3", "connection": filename}
    identity = create_identity_service(Config.from_dict(config), issuer="http://x/api/auth")
    assert identity.token_issuer.shared_store is shared  # type: ignore[attr-defined]
