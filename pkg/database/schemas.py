"""Schemas in, schemas out: pydantic models as DAO input and as query results.

In: ``create(schema)`` and ``update_by_id(pk, schema)`` take a pydantic model as well as
keyword values. An update changes only the fields the client *sent*
(``model_dump(exclude_unset=True)``); ``partial=False`` sends every field (full replace)::

    user = await users.create(UserCreate(username="ann", email="ann@example.com"))
    user = await users.update_by_id(5, UserUpdate(email="new@example.com"))   # username untouched

Out: ``query().as_schema(S)`` selects only the columns of ``S``'s fields and returns ``S``
instances (a field that is no column raises ``UnknownFieldError`` before any SQL)::

    briefs = await users.query().filter(is_active=True).as_schema(UserBrief).all()

pydantic itself is never imported: anything with pydantic v2's ``model_fields`` /
``model_dump`` / ``model_validate`` works, and the kit imports without pydantic installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from pkg.database.errors import MultipleResultsError, NotFoundError, QueryError, UnknownFieldError
from pkg.database.query.lookups import column_names, model_columns
from pkg.database.query.pages import Page

__all__ = ["SchemaLike", "SchemaQuery", "SchemaT", "schema_values"]

SchemaT = TypeVar("SchemaT")


class SchemaLike(Protocol):
    """What the kit needs of an input schema: pydantic v2's ``model_dump``."""

    def model_dump(self, *, exclude_unset: bool = ...) -> dict[str, Any]: ...


def schema_values(schema: SchemaLike | Mapping[str, Any] | None, *, partial: bool) -> dict[str, Any]:
    """The values a schema carries: only the fields that were set when ``partial``."""
    if schema is None:
        return {}
    if isinstance(schema, Mapping):
        return dict(schema)
    dump = getattr(schema, "model_dump", None)
    if dump is None:
        raise QueryError(f"expected a pydantic model or a mapping of values, got {type(schema).__name__}")
    return dict(dump(exclude_unset=partial))


def _fields(schema: type[Any]) -> dict[str, str]:
    """``{field name: key model_validate reads}`` of a pydantic model class (alias if any)."""
    fields = getattr(schema, "model_fields", None)
    if not isinstance(fields, Mapping) or not hasattr(schema, "model_validate"):
        raise QueryError(f"as_schema needs a pydantic model class, got {schema!r}")
    return {name: getattr(info, "alias", None) or name for name, info in fields.items()}


@dataclass(frozen=True, slots=True)
class SchemaQuery(Generic[SchemaT]):
    """A builder's rows as ``schema`` instances; only the schema's columns are selected.

    ``source`` is the :class:`~pkg.database.query.builder.QueryBuilder` (its filters, sort,
    limit, soft-delete rule and lock apply); terminals take ``session=`` like the builder's.
    """

    source: Any
    schema: type[SchemaT]

    def __post_init__(self) -> None:
        self.columns()  # unknown fields fail here, before any SQL

    def columns(self) -> list[Any]:
        """The model columns of the schema's fields, labelled with the key the schema reads."""
        model = self.source.model
        found = model_columns(model)
        out = []
        for name, key in _fields(self.schema).items():
            if name not in found:
                raise UnknownFieldError(name, column_names(model), kind="schema field")
            out.append(found[name].label(key))
        return out

    def statement(self) -> Select[Any]:
        """The SELECT of the schema's columns with the builder's criteria, sort and limits."""
        return self.source.statement().with_only_columns(*self.columns())  # type: ignore[no-any-return]

    async def _rows(self, source: Any, session: AsyncSession | None) -> list[SchemaT]:
        stmt = SchemaQuery(source, self.schema).statement()
        async with source.scope.read(session, primary=source.lock is not None) as s:
            result = await s.execute(stmt)
            validate = self.schema.model_validate  # type: ignore[attr-defined]
            return [validate(dict(row)) for row in result.mappings()]

    async def all(self, *, session: AsyncSession | None = None) -> list[SchemaT]:
        """Every matching row as a ``schema`` instance."""
        return await self._rows(self.source, session)

    async def first(self, *, session: AsyncSession | None = None) -> SchemaT | None:
        """The first row (LIMIT 1), or None."""
        rows = await self._rows(self.source.limit(1), session)
        return rows[0] if rows else None

    async def one(self, *, session: AsyncSession | None = None) -> SchemaT:
        """The only row; ``NotFoundError`` if none, ``MultipleResultsError`` if more."""
        rows = await self._rows(self.source.limit(2), session)
        if len(rows) != 1:
            name = self.source.model.__name__
            raise (
                NotFoundError(f"no {name} matched")
                if not rows
                else MultipleResultsError(f"more than one {name} matched")
            )
        return rows[0]

    async def page(
        self, page: int = 1, size: int = 50, *, session: AsyncSession | None = None
    ) -> Page[SchemaT]:
        """Offset page ``page`` of ``size`` rows (PK-tiebroken), with the total."""
        paged = self.source.page_query(page, size)
        async with self.source.scope.read(session) as s:
            total = await self.source.count(session=s)
            items = await self._rows(paged, s) if total > (page - 1) * size else []
        return Page(items=items, total=total, page=page, size=size)
