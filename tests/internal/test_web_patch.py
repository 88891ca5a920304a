"""PATCH /users/{id} sends the body schema to ``update_by_id``: only the fields the client
sent change, an explicit null is refused. In process (ASGI), every commit of the requests
rolled back afterwards by ``rollback_after`` on the app's database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from internal.app import create_app
from internal.config.load_config import load_settings
from internal.infra import database as infra
from internal.models import User
from pkg.database.testing import rollback_after
from tests.conftest import Backend


@pytest.fixture
async def client(pg: Backend, users_table: None) -> AsyncIterator[httpx.AsyncClient]:
    infra.reset_async_db()
    settings = load_settings("test", environ={"DB_URL": pg.url.render_as_string(hide_password=False)})
    db = await infra.init_async_db(settings, handle_signals=False)
    try:
        async with rollback_after(db):  # get_session / get_read_session use its connection
            transport = httpx.ASGITransport(app=create_app(settings))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield client
        async with db.session() as session:  # the request's COMMITs were savepoints
            found = await session.execute(select(func.count()).where(User.email == "patch@x.io"))
            assert found.scalar_one() == 0
    finally:
        await infra.close_async_db()


async def test_patch_with_one_field_leaves_the_others(client: httpx.AsyncClient) -> None:
    body = {"username": "pat", "email": "patch@x.io", "profile": {"lang": "de"}}
    created = (await client.post("/users", json=body)).json()
    patched = await client.patch(f"/users/{created['id']}", json={"is_active": False})
    assert patched.status_code == 200, patched.text
    got = (await client.get(f"/users/{created['id']}")).json()
    assert (got["username"], got["email"], got["profile"]) == ("pat", "patch@x.io", {"lang": "de"})
    assert got["is_active"] is False and got["version"] == 2


async def test_patch_refuses_an_explicit_null(client: httpx.AsyncClient) -> None:
    created = (await client.post("/users", json={"username": "pat", "email": "patch@x.io"})).json()
    refused = await client.patch(f"/users/{created['id']}", json={"username": None})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "username"
    assert (await client.get(f"/users/{created['id']}")).json()["username"] == "pat"
