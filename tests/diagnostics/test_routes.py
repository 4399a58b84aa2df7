"""The diagnostics route: GET only, HTML or JSON by query or ``Accept``."""

from __future__ import annotations

from tests.diagnostics.conftest import PAGE
from tests.diagnostics.conftest import make_client
from tests.diagnostics.conftest import make_config


def test_only_get_is_allowed(idp):
    refused = make_client(make_config()).post(PAGE, expect_errors=True)
    assert refused.status_int == 405
    assert refused.headers["Allow"] == "GET"


def test_json_by_query_or_accept(idp):
    client = make_client(make_config())
    assert client.get(PAGE, params={"format": "json"}).content_type == "application/json"
    by_accept = client.get(PAGE, headers={"Accept": "application/json"})
    assert by_accept.content_type == "application/json"
    assert by_accept.json["environment"] == "development"
