"""``QueryBuilder.stream``: a large result in chunks, one query per chunk, nothing held between."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pkg.database.errors import QueryError
from pkg.database.query.ordering import check_keyset_columns, keyset_predicate, with_pk_tiebreaker

__all__ = ["stream_rows"]


async def stream_rows(query: Any, chunk_size: int, session: AsyncSession | None) -> AsyncIterator[Any]:
    """Iterate ``query`` (a ``QueryBuilder``) in chunks of ``chunk_size`` rows, one query per chunk.

    Chunks follow the sort plus the primary key: keyset predicates (OFFSET when a sort
    column is nullable). No connection is held while the loop body runs, so leaving the
    loop early (``break``) leaves nothing checked out, and a joined session is free for
    other calls between chunks. Outside a transaction each chunk reads the data as of its
    own query; inside one (``session=`` / ``transaction()``), as the transaction sees it.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise QueryError("chunk_size must be an int >= 1")
    sort = with_pk_tiebreaker(query.model, query.sort)
    try:
        check_keyset_columns(query.model, sort)
        keyset = True
    except QueryError:  # a nullable sort column: page by OFFSET instead
        keyset = False
    remaining, offset, after = query.limit_, query.offset_ or 0, None
    while remaining is None or remaining > 0:
        size = chunk_size if remaining is None else min(chunk_size, remaining)
        chunk = query._replace(sort=sort, limit_=size, offset_=offset or None)
        if after is not None:
            chunk = chunk.where(keyset_predicate(query.model, sort, after))
        rows = await chunk.all(session=session)  # the connection goes back here
        if rows:
            after = [getattr(rows[-1], k.name) for k in sort] if keyset else None
            offset = 0 if keyset else offset + len(rows)
            remaining = None if remaining is None else remaining - len(rows)
        for row in rows:
            yield row
        if len(rows) < size:
            return
