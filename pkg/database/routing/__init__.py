"""Read replicas: which engine a read session uses, with read-your-writes and health.

Example::

    from pkg.database import Database
    from pkg.database.routing import ReplicaSpec, consistency_token, read_after

    db = Database(primary_url, read_urls=[ReplicaSpec(replica_a, weight=3), replica_b])
    users = UserDao(session_provider=db.session)
    await users.get(5)                      # a replica (one per read session, by weight)
    await users.create(username="ann")      # the primary
    await users.get_by_email("ann@x")       # the primary until a replica replayed the write
    token = await consistency_token()       # carry it to the next request ...
    with read_after(token): ...             # ... which then reads its own writes too

The pieces: :mod:`.spec` (``DB_READ_URLS`` syntax), :mod:`.router` (the choice),
:mod:`.health` (probes, states), :mod:`.consistency` (read-your-writes scopes and tokens),
:mod:`.session` (the read-only session that moves to the primary on a connection failure),
:mod:`.positions` (what each dialect reports: WAL positions on PostgreSQL).
"""

from pkg.database.routing.consistency import consistency_scope, consistency_token, read_after
from pkg.database.routing.health import State
from pkg.database.routing.router import Router, routed
from pkg.database.routing.session import route_of
from pkg.database.routing.spec import ReplicaSpec, parse_read_urls

__all__ = [
    "ReplicaSpec",
    "Router",
    "State",
    "consistency_scope",
    "consistency_token",
    "parse_read_urls",
    "read_after",
    "route_of",
    "routed",
]
