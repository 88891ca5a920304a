"""Keyset cursors: how the last row's sort values travel to the client and back.

A cursor is opaque: base64url of an orjson payload (format version, a hash of the
sort spec, the last row's sort values) followed by an HMAC-SHA256 tag. A cursor
that was altered, or made for another sort, raises :class:`InvalidCursorError`.

The HMAC key comes from ``KeysetCodec(secret)``, else the ``DB_CURSOR_SECRET``
environment variable, else a fixed documented default (``DEFAULT_CURSOR_SECRET``)
which detects accidental tampering but not forgery: set a secret in production.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import os
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from pkg.database.errors import InvalidCursorError

__all__ = ["CURSOR_SECRET_ENV", "DEFAULT_CURSOR_SECRET", "KeysetCodec"]

logger = logging.getLogger(__name__)

DEFAULT_CURSOR_SECRET = "pkg.database.keyset.default-secret"
CURSOR_SECRET_ENV = "DB_CURSOR_SECRET"
_VERSION = 1
_TAG_BYTES = 16


def _encode_value(value: Any) -> Any:
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


def _decode_value(raw: Any, python_type: type[Any] | None) -> Any:
    if raw is None or python_type is None or isinstance(raw, python_type):
        return raw
    if python_type is datetime:
        return datetime.fromisoformat(raw)
    if python_type is date:
        return date.fromisoformat(raw)
    if python_type in (Decimal, uuid.UUID, float, int):
        return python_type(raw)
    return raw


@functools.lru_cache(maxsize=256)  # a process has few sort specs
def _spec_hash(spec: str) -> str:
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


class KeysetCodec:
    """Signs and checks keyset cursors with an HMAC key."""

    def __init__(self, secret: str | bytes | None = None) -> None:
        if secret is None:
            secret = os.environ.get(CURSOR_SECRET_ENV) or DEFAULT_CURSOR_SECRET
            if secret == DEFAULT_CURSOR_SECRET:
                logger.debug("keyset cursors signed with the default secret; set %s", CURSOR_SECRET_ENV)
        self._key = secret.encode() if isinstance(secret, str) else secret

    @staticmethod
    def spec_hash(spec: str) -> str:
        """A short digest identifying a sort spec (model + columns + directions)."""
        return _spec_hash(spec)

    @staticmethod
    def spec_hash_cache_clear() -> None:
        """Forget the cached spec digests (a pure function of the spec: for tests)."""
        _spec_hash.cache_clear()

    def encode(self, spec: str, values: Sequence[Any]) -> str:
        payload = orjson.dumps(
            {"v": _VERSION, "s": self.spec_hash(spec), "k": list(values)}, default=_encode_value
        )
        tag = hmac.digest(self._key, payload, "sha256")[:_TAG_BYTES]
        return base64.urlsafe_b64encode(payload + tag).decode().rstrip("=")

    def decode(self, spec: str, cursor: str, types: Sequence[type[Any] | None]) -> list[Any]:
        """The sort values stored in ``cursor``; ``InvalidCursorError`` if it is not ours."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidCursorError("cursor is not valid base64") from exc
        payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        expected = hmac.digest(self._key, payload, "sha256")[:_TAG_BYTES]
        if len(raw) <= _TAG_BYTES or not hmac.compare_digest(tag, expected):
            raise InvalidCursorError("cursor signature mismatch")
        data = orjson.loads(payload)
        if data.get("v") != _VERSION or data.get("s") != self.spec_hash(spec):
            raise InvalidCursorError("cursor belongs to another query or version")
        keys = data.get("k")
        if not isinstance(keys, list) or len(keys) != len(types):
            raise InvalidCursorError("cursor does not match the sort columns")
        try:
            return [_decode_value(v, t) for v, t in zip(keys, types, strict=True)]
        except (TypeError, ValueError) as exc:
            raise InvalidCursorError("cursor value does not fit its column") from exc
