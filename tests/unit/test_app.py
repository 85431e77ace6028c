"""The app factory (wiring/app.py): status, the OpenAPI schema's refusals, what is kept for the admin token."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.apps import (
    ADMIN,
    WEBHOOK,
    App,
    settings_for,
    start,
)

# ---------------------------------------------------------------- routes and reasons


# ---------------------------------------------------------------- bad input


# ---------------------------------------------------------------- web widget


# ---------------------------------------------------------------- admin API


# ---------------------------------------------------------------- out-of-band channels


# ---------------------------------------------------------------- serving state


async def test_status_tells_anonymous_callers_only_up_or_down(app: App) -> None:
    anonymous = (await app.http.get("/status")).json()
    assert set(anonymous) == {"version", "nlu", "llm"} and anonymous["nlu"] == {"ok": True}
    assert "app.db" not in json.dumps(anonymous)
    wrong = (await app.http.get("/status", headers={"Authorization": "Bearer nope"})).json()
    assert "database" not in wrong
    full = (await app.http.get("/status", headers=ADMIN)).json()
    assert full["database"].endswith("app.db") and "url" in full["nlu"]


async def test_the_openapi_schema_states_the_refusals(app: App) -> None:
    schema = (await app.http.get("/openapi.json")).json()
    for path in (WEBHOOK, "/webhooks/rest/stream", "/webhooks/web/stream"):
        assert {"413", "422", "429", "503"} <= set(schema["paths"][path]["post"]["responses"]), path
    message = schema["components"]["schemas"]["RestMessage"]["properties"]["message"]
    assert message.get("minLength") == 1


async def test_a_wrong_method_names_every_method_of_the_path(app: App) -> None:
    """A path with a GET route and a POST route (Starlette's own 405 names the first one only)."""
    refused = await app.http.request("OPTIONS", "/api/annotations", headers=ADMIN)
    assert refused.status_code == 405 and refused.json()["error"] == "method not allowed"
    assert set(refused.headers["Allow"].split(", ")) >= {"GET", "POST"}
    one = await app.http.request("PUT", WEBHOOK)
    assert one.status_code == 405 and one.headers["Allow"] == "POST"


async def test_metrics_and_docs_can_be_kept_for_the_admin_token(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, public_metrics=False, public_docs=False)
    async with start(settings) as app:
        for path in ("/metrics", "/openapi.json"):
            assert (await app.http.get(path)).status_code == 401, path
            assert (await app.http.get(path, headers=ADMIN)).status_code == 200, path
        assert (await app.http.get("/docs")).status_code == 404
    async with start(settings_for(tmp_path)) as app:  # the default: public
        assert (await app.http.get("/metrics")).status_code == 200
        assert (await app.http.get("/docs")).status_code == 200
