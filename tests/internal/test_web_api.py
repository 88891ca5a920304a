"""Every endpoint of the real web app: uvicorn subprocess on PostgreSQL, driven with httpx."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.internal.conftest import WebServer

pytestmark = pytest.mark.slow


@pytest.fixture
async def client(start_web, app_name: str, users_table: None) -> httpx.AsyncClient:
    server: WebServer = start_web(app_name)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        yield client


def _email(tag: str, domain: str) -> str:
    return f"{tag}@{domain}"


async def test_health_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    db = await client.get("/health/db")
    assert db.status_code == 200
    body = db.json()
    assert body["status"] == "ok" and body["latency_ms"] > 0
    assert body["pool"]["size"] >= 1 and body["pool"]["checked_out"] == 0


async def test_user_crud_and_errors(client: httpx.AsyncClient) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    created = await client.post("/users", json={"username": "ada", "email": _email("ada", domain)})
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["version"] == 1 and user["is_active"] is True and user["profile"] == {}

    got = await client.get(f"/users/{user['id']}")
    assert got.status_code == 200 and got.json()["email"] == _email("ada", domain)

    dup = await client.post("/users", json={"username": "other", "email": _email("ada", domain)})
    assert dup.status_code == 409
    assert dup.json() == {"detail": "a user with this email already exists", "code": "duplicate"}

    bad = await client.post("/users", json={"username": "", "email": "not-an-email", "extra": 1})
    assert bad.status_code == 422
    assert {e["loc"][-1] for e in bad.json()["detail"]} == {"username", "email", "extra"}

    patched = await client.patch(f"/users/{user['id']}", json={"username": "ada2", "version": 1})
    assert patched.status_code == 200 and patched.json()["version"] == 2
    assert patched.json()["username"] == "ada2"
    stale = await client.patch(f"/users/{user['id']}", json={"username": "ada3", "version": 1})
    assert stale.status_code == 409 and stale.json()["code"] == "stale"
    assert (await client.get(f"/users/{user['id']}")).json()["username"] == "ada2"  # rolled back

    assert (await client.delete(f"/users/{user['id']}")).status_code == 204
    assert (await client.get(f"/users/{user['id']}")).status_code == 404
    assert (await client.delete(f"/users/{user['id']}")).status_code == 404
    assert (await client.patch(f"/users/{user['id']}", json={"username": "x"})).status_code == 404
    assert (await client.get("/users/999999999")).json()["code"] == "not_found"


async def test_failed_request_rolls_back(client: httpx.AsyncClient) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    first = (await client.post("/users", json={"username": "a", "email": _email("a", domain)})).json()
    second = (await client.post("/users", json={"username": "b", "email": _email("b", domain)})).json()
    clash = await client.patch(f"/users/{second['id']}", json={"email": first["email"]})
    assert clash.status_code == 409 and clash.json()["code"] == "duplicate"
    again = (await client.get(f"/users/{second['id']}")).json()
    assert again["email"] == _email("b", domain) and again["version"] == 1


async def _seed(client: httpx.AsyncClient, domain: str, n: int) -> list[dict]:
    users = []
    for i in range(n):
        body = {"username": f"user{i:02d}", "email": _email(f"u{i:02d}", domain), "is_active": i % 3 != 0}
        response = await client.post("/users", json=body)
        assert response.status_code == 201, response.text
        users.append(response.json())
    return users


async def test_list_offset_filters_and_sort(client: httpx.AsyncClient) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    seeded = await _seed(client, domain, 12)
    page = (await client.get("/users", params={"email_domain": domain, "page": 2, "size": 5})).json()
    assert set(page) == {"items", "total", "page", "size", "pages"}
    assert (page["total"], page["page"], page["size"], page["pages"]) == (12, 2, 5, 3)
    assert [u["id"] for u in page["items"]] == [u["id"] for u in seeded[5:10]]

    params = {"email_domain": domain, "sort": "-username", "size": 3}
    desc = (await client.get("/users", params=params)).json()
    assert [u["username"] for u in desc["items"]] == ["user11", "user10", "user09"]

    active = (await client.get("/users", params={"email_domain": domain, "is_active": "false"})).json()
    assert active["total"] == 4 and all(not u["is_active"] for u in active["items"])
    one = (await client.get("/users", params={"email_domain": domain, "username_contains": "R07"})).json()
    assert [u["username"] for u in one["items"]] == ["user07"]

    assert (await client.get("/users", params={"sort": "password"})).status_code == 422
    assert (await client.get("/users", params={"size": 0})).status_code == 422


async def test_list_with_cursor_walks_everything_once(client: httpx.AsyncClient) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    seeded = await _seed(client, domain, 7)
    seen, cursor = [], ""
    while cursor is not None:
        params = {"email_domain": domain, "size": 3, "cursor": cursor, "sort": "-created_at"}
        body = (await client.get("/users", params=params)).json()
        assert set(body) == {"items", "next_cursor"}
        seen += [u["id"] for u in body["items"]]
        cursor = body["next_cursor"]
    assert seen == [u["id"] for u in reversed(seeded)]
    bad = await client.get("/users", params={"cursor": "bogus", "sort": "-created_at"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"


async def test_openapi_documents_the_api(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert {"/users", "/users/{user_id}", "/health", "/health/db", "/diagnostics/sleep"} <= set(paths)
    assert {"get", "post"} <= set(paths["/users"]) and {"get", "patch", "delete"} <= set(
        paths["/users/{user_id}"]
    )
    params = {p["name"] for p in paths["/users"]["get"]["parameters"]}
    assert {"page", "size", "cursor", "sort", "is_active", "email_domain"} <= params
    assert "409" in paths["/users/{user_id}"]["patch"]["responses"]
