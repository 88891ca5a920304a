"""A loopback TCP proxy that counts what clients send a server: statements and round trips.

Used only in the bench's counting pass (never while timing). PostgreSQL: each simple
``Query`` ('Q') or extended ``Execute`` ('E') is a statement; a 'Q' or a ``Sync`` ('S')
is one round trip (the client waits for ReadyForQuery). MySQL/MariaDB: each client
command (a packet with sequence id 0 after the handshake: COM_QUERY, COM_PING ...) is
a statement and a round trip. Pre-ping, BEGIN, COMMIT and ROLLBACK all count.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass

_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104
_COM_QUIT = 0x01


@dataclass
class Counts:
    statements: int = 0
    round_trips: int = 0

    def reset(self) -> None:
        self.statements = self.round_trips = 0


class _PgCounter:
    def __init__(self, counts: Counts) -> None:
        self.counts, self.buf, self.started = counts, b"", False

    def feed(self, data: bytes) -> None:
        self.buf += data
        while True:
            if not self.started:
                if len(self.buf) < 8:
                    return
                length, code = struct.unpack("!ii", self.buf[:8])
                if len(self.buf) < length:
                    return
                self.buf = self.buf[length:]
                self.started = code not in (_SSL_REQUEST, _GSS_REQUEST)
                continue
            if len(self.buf) < 5:
                return
            kind, length = self.buf[:1], struct.unpack("!i", self.buf[1:5])[0]
            if len(self.buf) < 1 + length:
                return
            self.buf = self.buf[1 + length :]
            if kind in (b"Q", b"E"):
                self.counts.statements += 1
            if kind in (b"Q", b"S"):
                self.counts.round_trips += 1


class _MyCounter:
    def __init__(self, counts: Counts) -> None:
        self.counts, self.buf = counts, b""

    def feed(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 4:
            length = int.from_bytes(self.buf[:3], "little")
            if len(self.buf) < 4 + length:
                return
            seq, command = self.buf[3], self.buf[4] if length else -1
            self.buf = self.buf[4 + length :]
            if seq == 0 and command != _COM_QUIT:
                self.counts.statements += 1
                self.counts.round_trips += 1


class CountingProxy:
    """``async with CountingProxy(host, port, "postgresql") as proxy:`` then connect to
    ``proxy.port``; ``proxy.counts`` accumulates over every connection."""

    def __init__(self, host: str, port: int, protocol: str) -> None:
        self.host, self.target_port, self.protocol = host, port, protocol
        self.counts = Counts()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CountingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        counter = _PgCounter(self.counts) if self.protocol == "postgresql" else _MyCounter(self.counts)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, counter)),
            asyncio.create_task(self._pump(up_reader, writer, None)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
            self._tasks.discard(pump)
        for w in (writer, up_writer):
            w.close()

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: _PgCounter | _MyCounter | None
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if counter is not None:
                    counter.feed(data)
                writer.write(data)
                await writer.drain()
