"""``/users``: CRUD, soft delete, offset and keyset lists through :class:`UserDao`.

Example::

    POST   /users                       {"username": "ada", "email": "ada@example.com"} -> 201
    GET    /users/1                                                                     -> 200 | 404
    PATCH  /users/1                     {"email": "new@example.com", "version": 1}      -> 200 | 409
    DELETE /users/1                     (soft delete)                                   -> 204 | 404
    GET    /users?page=1&size=20&sort=-created_at,id&is_active=true
    GET    /users?cursor=&size=20       (keyset: pass back next_cursor until it is null)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response

from internal.web.deps import ReadSessionDep, SessionDep, UserDaoDep
from internal.web.schemas import ErrorOut, UserCreate, UserCursorPage, UserOut, UserPage, UserUpdate
from pkg.database.errors import NotFoundError, UnknownFieldError

__all__ = ["SORTABLE", "parse_sort", "router"]

SORTABLE = ("id", "username", "email", "created_at", "updated_at")
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such (live) user"},
    409: {"model": ErrorOut, "description": "Duplicate email or stale version"},
}
router = APIRouter(prefix="/users", tags=["users"], responses=_ERRORS)


def parse_sort(raw: str) -> list[str]:
    """``"-created_at,id"`` -> ``["-created_at", "id"]``; only :data:`SORTABLE` fields."""
    fields = [part.strip() for part in raw.split(",") if part.strip()]
    for field in fields:
        if field.lstrip("+-") not in SORTABLE:
            raise UnknownFieldError(field.lstrip("+-"), SORTABLE, kind="sort field")
    return fields


def _lookups(**given: Any) -> dict[str, Any]:
    """Whitelisted query parameters -> DAO lookups (unset ones dropped)."""
    names = {
        "username": "username",
        "username_contains": "username__icontains",
        "email": "email",
        "email_domain": "email__endswith",
        "is_active": "is_active",
        "created_after": "created_at__gte",
        "created_before": "created_at__lt",
    }
    out = {names[k]: v for k, v in given.items() if v is not None}
    if "email__endswith" in out:
        out["email__endswith"] = "@" + out["email__endswith"].lstrip("@")
    return out


@router.post("", response_model=UserOut, status_code=201, summary="Create a user")
async def create_user(body: UserCreate, session: SessionDep, users: UserDaoDep) -> UserOut:
    user = await users.create(body, session=session)
    return UserOut.model_validate(user)


@router.get("/{user_id}", response_model=UserOut, summary="Get a live user")
async def get_user(user_id: int, session: ReadSessionDep, users: UserDaoDep) -> UserOut:
    return UserOut.model_validate(await users.get_or_raise(user_id, session=session))


@router.patch("/{user_id}", response_model=UserOut, summary="Update a user (optimistic lock)")
async def update_user(user_id: int, body: UserUpdate, session: SessionDep, users: UserDaoDep) -> UserOut:
    user = await users.update_by_id(user_id, body, session=session)  # only the fields sent
    return UserOut.model_validate(user)


@router.delete("/{user_id}", status_code=204, summary="Soft-delete a user")
async def delete_user(user_id: int, session: SessionDep, users: UserDaoDep) -> Response:
    if not await users.soft_delete_by_id(user_id, session=session):
        raise NotFoundError(f"User {user_id} not found")
    return Response(status_code=204)


@router.get("", response_model=UserPage | UserCursorPage, summary="List users (offset or keyset)")
async def list_users(
    session: ReadSessionDep,
    users: UserDaoDep,
    page: int = Query(1, ge=1),
    size: int = Query(20, ge=1, le=200),
    cursor: str | None = Query(None, description="keyset mode: empty for the first page"),
    sort: str = Query("id", description=f"comma-separated, '-' for descending; of {', '.join(SORTABLE)}"),
    username: str | None = None,
    username_contains: str | None = None,
    email: str | None = None,
    email_domain: str | None = None,
    is_active: bool | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> UserPage | UserCursorPage:
    lookups = _lookups(
        username=username, username_contains=username_contains, email=email, email_domain=email_domain,
        is_active=is_active, created_after=created_after, created_before=created_before,
    )  # fmt: skip
    query = users.query().filter(**lookups).order_by(*parse_sort(sort))
    if cursor is not None:
        found = await query.keyset(size, after=cursor or None, session=session)
        items = [UserOut.model_validate(u) for u in found.items]
        return UserCursorPage(items=items, next_cursor=found.next_cursor)
    result = await query.page(page, size, session=session)
    items = [UserOut.model_validate(u) for u in result.items]
    return UserPage(items=items, total=result.total, page=result.page, size=result.size, pages=result.pages)
