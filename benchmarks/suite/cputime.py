"""CPU time a proxy's processes spend per request: user + system from /proc, over the
generator's measured window.

req/s on a shared 2-core machine moves with whatever else runs; the CPU a proxy spends per
request does not (much), so it is the figure to compare builds and proxies by.

A `Sampler` reads utime + stime of a process tree (pygate's one process, or nginx's master
and workers) every `interval` seconds on a thread of its own. The generator's measured window
is the last `duration_s` seconds before it exited (a warm-up, and the generator's own start,
come before it), so the CPU in that window is interpolated from the samples around its two
ends.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def tree(root: int) -> list[int]:
    """`root` and every process below it (nginx's workers, a supervised child)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):
            continue  # exited while listed
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses):
    [0] is the state, [1] the parent pid, [11] utime, [12] stime (clock ticks)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


@dataclass(frozen=True)
class Cpu:
    user_s: float
    system_s: float

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s


def cpu_of(pids: list[int]) -> Cpu:
    """User and system seconds the live processes `pids` have used so far."""
    user = system = 0
    for pid in pids:
        try:
            f = _fields(pid)
        except OSError:
            continue  # gone: its time is lost to this sum (the window then reads low)
        user += int(f[11])
        system += int(f[12])
    return Cpu(user * TICK_S, system * TICK_S)


def is_logd(pid: int) -> bool:
    """pygate's log daemon (`pygate logd`, supervised by `pygate serve`)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"pygate" in argv and b"logd" in argv


class Sampler:
    """Samples (monotonic time, Cpu) of one process tree until `stop()`. pygate's log daemon
    is sampled apart (`logd_samples`), as a log shipper's CPU would be: `samples` is the
    rest of the tree (pygate's gateway process; nginx's master and workers)."""

    def __init__(self, root: int, interval: float = 0.1):
        every = tree(root)
        self.logd_pids = [p for p in every if is_logd(p)]
        self.pids = [p for p in every if p not in self.logd_pids]
        self.interval = interval
        self.samples: list[tuple[float, Cpu]] = []
        self.logd_samples: list[tuple[float, Cpu]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if not self._done.is_set():
            self._done.set()
            self._thread.join()
            self._sample()

    def _sample(self) -> None:
        now = time.monotonic()
        self.samples.append((now, cpu_of(self.pids)))
        self.logd_samples.append((now, cpu_of(self.logd_pids)))

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._sample()

    def at(self, t: float, logd: bool = False) -> Cpu:
        """CPU used by time `t`, interpolated between the samples around it."""
        s = self.logd_samples if logd else self.samples
        if not s:
            raise ValueError("no samples")
        if t <= s[0][0]:
            return s[0][1]
        for (t0, c0), (t1, c1) in zip(s, s[1:], strict=False):
            if t0 <= t <= t1:
                w = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
                return Cpu(
                    c0.user_s + w * (c1.user_s - c0.user_s),
                    c0.system_s + w * (c1.system_s - c0.system_s),
                )
        return s[-1][1]

    def window(self, start: float, end: float, logd: bool = False) -> Cpu:
        a, b = self.at(start, logd), self.at(end, logd)
        return Cpu(b.user_s - a.user_s, b.system_s - a.system_s)


@dataclass(frozen=True)
class PerRequest:
    """Microseconds of the proxy's CPU per request served in the window."""

    user_us: float
    system_us: float

    @property
    def total_us(self) -> float:
        return self.user_us + self.system_us


def per_request(cpu: Cpu, requests: int) -> PerRequest:
    if requests <= 0:
        return PerRequest(float("nan"), float("nan"))
    return PerRequest(1e6 * cpu.user_s / requests, 1e6 * cpu.system_s / requests)
