"""Relations without N+1 and without ``MissingGreenlet``: eager loads by name, and a typed
error for a relation nobody loaded.

``load_options(User, ["orders", "orders.items"])`` turns dotted relation paths into ORM
loader options (``selectinload`` by default: one extra statement per path level, whatever
the number of rows; ``strategy="joined"``: a LEFT OUTER JOIN in the same statement). Every
DAO statement also carries :data:`RAISE_UNLOADED`: a relation it did not load raises
:class:`~pkg.database.errors.UnloadedRelationError` on access, naming the ``.load(...)`` to
add, instead of a lazy load (which in async code is ``MissingGreenlet``, or
``DetachedInstanceError`` once the DAO's session is closed)::

    users = await dao.query().load("orders", "orders.items").limit(50).all()   # 3 statements
    users[0].orders[0].items          # loaded
    users[0].orders[0].user           # UnloadedRelationError: Order.user was not loaded ...

The typed error is a loader strategy (``lazy="kit_unloaded"``) built on SQLAlchemy's
``lazy="raise"`` loader; that loader and the option builder are SQLAlchemy internals (same
in 2.0 and 2.1), used here only, and checked by ``tests/pkg/database/test_dao_relations.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import RelationshipProperty, joinedload, selectinload, strategies, strategy_options
from sqlalchemy.orm.path_registry import _DEFAULT_TOKEN

from pkg.database.errors import UnknownFieldError, UnloadedRelationError

__all__ = [
    "RAISE_UNLOADED",
    "STRATEGIES",
    "UNLOADED_STRATEGY",
    "load_options",
    "relation_names",
    "resolve_relation",
]

STRATEGIES = {"selectin": selectinload, "joined": joinedload}
UNLOADED_STRATEGY = "kit_unloaded"  # the lazy= name of the raising loader
_LazyLoader: Any = getattr(strategies, "_LazyLoader", None) or strategies.LazyLoader  # type: ignore[attr-defined]


@RelationshipProperty.strategy_for(lazy=UNLOADED_STRATEGY)
class _RaiseUnloaded(_LazyLoader):  # type: ignore[misc]
    """``lazy="raise"`` that raises the kit's :class:`UnloadedRelationError`."""

    def __init__(self, parent: Any, strategy_key: Any) -> None:
        super().__init__(parent, strategy_key)
        self._raise_always = True

    def _invoke_raise_load(self, state: Any, passive: Any, lazy: Any) -> None:
        raise UnloadedRelationError(self.parent.class_.__name__, self.key)


def _raise_rest(load: Any) -> Any:
    """``load`` plus "every other relation below it raises when touched"."""
    return load._set_relationship_strategy("*", {"lazy": UNLOADED_STRATEGY})


# The statement-level wildcard, as ``raiseload("*")`` builds it, with the kit's strategy.
RAISE_UNLOADED: Any = strategy_options._WildcardLoad()._set_relationship_strategy(
    _DEFAULT_TOKEN,  # type: ignore[arg-type]
    {"lazy": UNLOADED_STRATEGY},
)


def relation_names(model: type[Any]) -> list[str]:
    """The relationship attribute names of ``model``, sorted."""
    return sorted(inspect(model).relationships.keys())


def resolve_relation(model: type[Any], name: str) -> Any:
    """The relationship attribute ``model.<name>``; ``UnknownFieldError`` listing valid ones."""
    relations = inspect(model).relationships
    if name not in relations:
        raise UnknownFieldError(name, relation_names(model), kind="relation")
    return getattr(model, name)


def _path_option(model: type[Any], path: str, strategy: str) -> Any:
    make = STRATEGIES.get(strategy)
    if make is None:
        raise UnknownFieldError(strategy, sorted(STRATEGIES), kind="loader")
    option: Any = None
    current = model
    for name in path.split("."):
        attribute = resolve_relation(current, name)
        option = make(attribute) if option is None else getattr(option, f"{strategy}load")(attribute)
        current = attribute.property.mapper.class_
    return _raise_rest(option)


def load_options(model: type[Any], paths: Iterable[str], strategy: str = "selectin") -> tuple[Any, ...]:
    """Loader options for dotted relation ``paths`` of ``model`` (``"orders.items"``).

    Each path level is validated (``UnknownFieldError`` names the valid relations); below
    each loaded relation, the rest raises :class:`UnloadedRelationError` when touched.
    """
    return tuple(_path_option(model, path, strategy) for path in paths)
