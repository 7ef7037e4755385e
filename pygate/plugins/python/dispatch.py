"""The dispatcher: takes the core's plugin calls off the asyncio loop and replies.

The core writes to a wakeup socket when calls are waiting; the loop's reader callback
drains them in one batch and starts one task per call that runs the route's chain for
the call's phase, under the `plugin_timeout` deadline (see deadlines.py). Whatever a
plugin does (raise, hang, return nonsense), the call gets a reply and the loop goes
on: a plugin can fail its request, never the gateway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pygate.plugins.python.chains import Chains, Step
from pygate.plugins.python.deadlines import Deadlines
from pygate.plugins.python.failure_log import FailureLog
from pygate.plugins.python.plugin import Refuse
from pygate.plugins.python.request import Request
from pygate.plugins.python.response import Response

log = logging.getLogger("pygate.plugins")

# Calls taken per wakeup; the core wakes us again at once when more are waiting.
BATCH = 4096


class Dispatcher:
    def __init__(self, gateway: Any, chains: Chains) -> None:
        self._gateway = gateway
        self.chains = chains
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadlines: Deadlines | None = None
        self._fd: int | None = None
        self._failures = FailureLog()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._deadlines = Deadlines(self._loop)
        self._fd = self._gateway.plugin_wakeup_fd()
        # Calls queued before this have left a wakeup byte: the reader fires at once.
        self._loop.add_reader(self._fd, self._on_wakeup)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop taking calls; let running ones (log calls, mostly) finish within grace_s."""
        if self._loop is None or self._deadlines is None:
            return
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._fd = None
            self._on_wakeup()  # the last calls the core queued
        running = set(self._deadlines.running)
        if running:
            _, pending = await asyncio.wait(running, timeout=grace_s)
            for task in pending:
                task.cancel()
        self._deadlines.close()

    # ----- taking calls -------------------------------------------------------------
    def _on_wakeup(self) -> None:
        try:
            calls = self._gateway.take_plugin_calls(BATCH)
        except Exception:
            log.exception("taking plugin calls from the core failed")
            return
        chains = self.chains
        routes = chains.routes
        timeout_s = chains.timeout_s
        create_task = self._loop.create_task  # type: ignore[union-attr]
        watch = self._deadlines.watch  # type: ignore[union-attr]
        for call in calls:
            phase = call.phase
            chain = routes.get(call.route)
            if phase == "access":
                steps = chain.access if chain is not None else ()
                if not steps:
                    # A reload removed the route's plugins while the call was queued.
                    call.continue_request()
                    continue
                task = create_task(self._access(call, steps))
            elif phase == "response":
                steps = chain.response if chain is not None else ()
                if not steps:
                    call.continue_response()
                    continue
                task = create_task(self._response(call, steps))
            else:
                steps = chain.log if chain is not None else ()
                if not steps:
                    continue
                task = create_task(self._log(call, steps))
            watch(task, timeout_s)

    # ----- the phases ---------------------------------------------------------------
    async def _access(self, call: Any, steps: tuple[Step, ...]) -> None:
        request = Request(call)

        async def step(access: Any) -> bool:
            result = await access(request)
            if result is None:
                return False
            if not isinstance(result, Response):
                raise TypeError(
                    f"access() returned {type(result).__name__}, expected a Response or None"
                )
            call.answer(*result._answer())
            return True

        def finish() -> None:
            uri, headers, body = request._changes()
            call.continue_request(uri=uri, headers=headers, body=body, upstream=request.upstream)

        await self._chain(call, steps, step, finish)

    async def _response(self, call: Any, steps: tuple[Step, ...]) -> None:
        request = Request(call)
        response = Response._from_call(call)

        async def step(respond: Any) -> bool:
            await respond(request, response)
            return False

        def finish() -> None:
            status, headers, body = response._changes()
            call.continue_response(status=status, headers=headers, body=body)

        await self._chain(call, steps, step, finish)

    async def _chain(
        self,
        call: Any,
        steps: tuple[Step, ...],
        step: Callable[[Any], Awaitable[bool]],
        finish: Callable[[], None],
    ) -> None:
        """Run `step` on each plugin's phase method until one answers (True), then
        `finish`; whatever fails is the call's failure, charged to the plugin last run."""
        name = steps[0][0]
        try:
            for name, method in steps:  # noqa: B007 (the except clauses name it)
                if await step(method):
                    return
            finish()
        except Refuse as refusal:
            _refuse(call, refusal)
        except asyncio.CancelledError:
            self._cancelled(call, name)
        except Exception as exc:
            self._failed(call, name, call.route, call.request_id, exc)

    async def _log(self, call: Any, steps: tuple[Step, ...]) -> None:
        record = call.record
        name = steps[0][0]
        try:
            for name, log_phase in steps:  # noqa: B007 (the except clauses name it)
                try:
                    await log_phase(record)
                except Exception as exc:  # the next log plugin still gets the record
                    self._failed(None, name, record.get("route"), record.get("request_id"), exc)
        except asyncio.CancelledError:
            route, request_id = record.get("route"), record.get("request_id")
            self._failures.timed_out(name, route, request_id, self.chains.timeout_s, "log")

    # ----- failures -----------------------------------------------------------------
    def _cancelled(self, call: Any, name: str) -> None:
        timed_out = self._deadlines.timed_out(asyncio.current_task())  # type: ignore[union-attr]
        if not timed_out:
            # Not our deadline: the plugin let a cancellation escape, or we are stopping.
            _fail(call, 500, "plugin_error", f"plugin {name} was cancelled")
            return
        seconds = self.chains.timeout_s
        self._failures.timed_out(name, call.route, call.request_id, seconds, call.phase)
        _fail(call, 504, "plugin_timeout", f"plugin {name} did not finish within {seconds:g}s")

    def _failed(
        self, call: Any, name: str, route: str | None, request_id: str | None, exc: Exception
    ) -> None:
        self._failures.failed(name, route, request_id, exc)
        if call is not None:
            _fail(call, 500, "plugin_error", f"plugin {name} failed")


def _refuse(call: Any, refusal: Refuse) -> None:
    try:
        call.fail(refusal.status, refusal.kind, refusal.message, refusal.headers)
    except (RuntimeError, ValueError, TypeError) as exc:
        # A refusal the core cannot send (bad status or header) is the plugin's bug.
        log.error("plugin refusal could not be sent (request %s): %s", call.request_id, exc)
        _fail(call, 500, "plugin_error", "a plugin refused with an invalid answer")


def _fail(call: Any, status: int, kind: str, message: str) -> None:
    try:
        call.fail(status, kind, message)
    except RuntimeError:
        # Already answered: the failure came after the reply went through.
        pass
