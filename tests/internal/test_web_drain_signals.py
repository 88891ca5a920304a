"""The drain pieces in-process: real signals to this process, the middleware over real ASGI."""

from __future__ import annotations

import asyncio
import signal

import httpx
from fastapi import FastAPI

from internal.web.drain import DrainMiddleware, DrainState, install_drain_signals


def test_sigterm_starts_the_drain_and_chains_to_the_previous_handler() -> None:
    seen: list[int] = []
    original = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        state = DrainState()
        uninstall = install_drain_signals(state, [signal.SIGTERM])
        signal.raise_signal(signal.SIGTERM)
        assert state.draining and seen == [signal.SIGTERM]
        signal.raise_signal(signal.SIGTERM)  # idempotent drain, still chained
        assert seen == [signal.SIGTERM, signal.SIGTERM]
        uninstall()
        signal.raise_signal(signal.SIGTERM)
        assert len(seen) == 3 and state.in_flight_at_drain == 0
    finally:
        signal.signal(signal.SIGTERM, original)


def test_uninstall_keeps_a_handler_chained_after_ours() -> None:
    original = signal.getsignal(signal.SIGUSR1)
    signal.signal(signal.SIGUSR1, lambda *_: None)
    try:
        state = DrainState()
        uninstall = install_drain_signals(state, [signal.SIGUSR1])
        later = signal.getsignal(signal.SIGUSR1)

        def someone_else(signum, frame):
            later(signum, frame)

        signal.signal(signal.SIGUSR1, someone_else)
        uninstall()
        assert signal.getsignal(signal.SIGUSR1) is someone_else
        signal.raise_signal(signal.SIGUSR1)
        assert state.draining
    finally:
        signal.signal(signal.SIGUSR1, original)


def _app(state: DrainState, entered: asyncio.Event, release: asyncio.Event) -> FastAPI:
    app = FastAPI()
    app.add_middleware(DrainMiddleware, state=state)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        entered.set()
        await release.wait()
        return {"ok": True}

    return app


async def test_middleware_finishes_in_flight_and_refuses_new_requests() -> None:
    state, entered, release = DrainState(), asyncio.Event(), asyncio.Event()
    transport = httpx.ASGITransport(app=_app(state, entered, release))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        in_flight = asyncio.create_task(client.get("/slow"))
        await asyncio.wait_for(entered.wait(), 5)
        state.start_drain("test")
        refused = await client.get("/slow")
        release.set()
        finished = await in_flight
    assert finished.status_code == 200
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert refused.json()["code"] == "draining"
    summary = state.log_summary()
    assert summary["in_flight_at_drain"] == 1 and summary["finished_during_drain"] == 1
    assert summary["rejected"] == 1 and summary["cancelled"] == 0 and not state.in_flight


async def test_a_failing_request_is_not_left_in_flight() -> None:
    state = DrainState()
    app = _app(state, asyncio.Event(), asyncio.Event())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        assert (await client.get("/boom")).status_code == 500
    assert state.in_flight == {} and state.cancelled == 0
