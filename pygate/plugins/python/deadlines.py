"""Per-call deadlines for plugin tasks, with one timer for all of them.

`asyncio.timeout()` per call costs a timer handle, a context object and a reschedule,
about half of the dispatcher's cost for a trivial plugin. Here every running task is
kept with its deadline in insertion order (all calls of a config share one timeout, so
that is deadline order too) and one timer, armed for the oldest deadline, cancels the
tasks that are late. A task that finishes is dropped from the table by its done callback.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Deadlines:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # Strong references too: the loop keeps only weak ones to running tasks.
        self.running: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, task: asyncio.Task[Any], timeout_s: float) -> None:
        deadline = self._loop.time() + timeout_s
        self.running[task] = deadline
        task.add_done_callback(self._done)
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._sweep)

    def timed_out(self, task: asyncio.Task[Any] | None) -> bool:
        """True when `task` was cancelled because its deadline passed."""
        return task in self.expired

    def _done(self, task: asyncio.Task[Any]) -> None:
        del self.running[task]
        if self.expired:
            self.expired.discard(task)

    def _sweep(self) -> None:
        self._timer = None
        now = self._loop.time()
        next_deadline = None
        for task, deadline in self.running.items():
            if deadline > now:
                # After a reload that shortened plugin_timeout a later entry may be due
                # earlier; it is caught at this entry's deadline, late by at most the change.
                next_deadline = deadline
                break
            if not task.done() and task not in self.expired:
                self.expired.add(task)
                task.cancel()
        if next_deadline is not None:
            self._timer = self._loop.call_at(next_deadline, self._sweep)
        elif self.running:
            # Only expired tasks that ignore their cancellation remain: look again later.
            self._timer = self._loop.call_later(1.0, self._sweep)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
