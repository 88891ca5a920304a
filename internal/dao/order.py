"""The DAO of :class:`Order`: items load with every order (``default_loads``)."""

from __future__ import annotations

from internal.models.order import Order
from pkg.database import BaseDao


class OrderDao(BaseDao[Order]):
    """Data access for :class:`Order`: ``OrderDao(session_provider=get_session)``."""

    model_cls = Order
    default_loads = ("items",)
