"""The suite's CPU-per-request figure (benchmarks/suite/cputime.py), read from /proc of real
processes: a parent and its child each burn a known amount of their own CPU time."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from benchmarks.suite import cputime

BURN_S = 0.4

# Waits for the go-file, then burns BURN_S of its own CPU (process_time, so a busy machine
# only makes it take longer), writes a done-file, and sleeps until killed.
BURNER = """
import os, subprocess, sys, time
go, done, child = sys.argv[1], sys.argv[2], sys.argv[3] == "parent"
if child:
    kid = subprocess.Popen([sys.executable, __file__, go, done + ".child", "child"])
while not os.path.exists(go):
    time.sleep(0.01)
start = time.process_time()
n = 0
while time.process_time() - start < {burn}:
    for _ in range(20000):  # user time; the clock read itself is a system call
        n += 1
open(done, "w").close()
time.sleep(60)
"""


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_window_counts_the_whole_tree_and_only_the_window(tmp_path: Path) -> None:
    script = tmp_path / "burn.py"
    script.write_text(BURNER.format(burn=BURN_S))
    go, done = tmp_path / "go", tmp_path / "done"
    proc = subprocess.Popen([sys.executable, str(script), str(go), str(done), "parent"])
    try:
        deadline = time.monotonic() + 30
        while len(cputime.tree(proc.pid)) < 2:  # the child has started
            assert time.monotonic() < deadline, "child never started"
            time.sleep(0.02)
        time.sleep(0.3)  # both are past their imports and only poll for the go-file
        with cputime.Sampler(proc.pid, interval=0.05) as sampler:
            assert len(sampler.pids) == 2
            before = time.monotonic()
            time.sleep(0.2)
            quiet = sampler.window(before, time.monotonic())
            go.touch()
            wait_for(done)
            wait_for(Path(str(done) + ".child"))
            time.sleep(0.1)
        busy = sampler.window(sampler.samples[0][0], sampler.samples[-1][0])
        # Two processes of BURN_S each, plus their 10 ms polls; ticks are 10 ms.
        assert 2 * BURN_S - 0.05 <= busy.total_s <= 2 * BURN_S + 0.15, busy
        assert busy.user_s > busy.system_s
        assert quiet.total_s <= 0.05, quiet
        each = cputime.per_request(busy, 1000)
        assert abs(each.total_us - 1e6 * busy.total_s / 1000) < 1e-6
    finally:
        for pid in cputime.tree(proc.pid)[1:]:
            subprocess.run(["kill", str(pid)], check=False)
        proc.kill()
        proc.wait(10)


def test_interpolates_between_samples() -> None:
    s = cputime.Sampler.__new__(cputime.Sampler)
    s.samples = [(10.0, cputime.Cpu(1.0, 0.5)), (12.0, cputime.Cpu(3.0, 1.5))]
    mid = s.window(10.0, 11.0)
    assert abs(mid.user_s - 1.0) < 1e-9 and abs(mid.system_s - 0.5) < 1e-9
    assert s.window(9.0, 13.0) == cputime.Cpu(2.0, 1.0)  # clamped to the samples taken


def test_no_requests_gives_nan_not_a_division_error() -> None:
    each = cputime.per_request(cputime.Cpu(1.0, 1.0), 0)
    assert each.total_us != each.total_us


# A parent that sleeps, and a child named like pygate's log daemon that burns BURN_S.
LOGD_PARENT = """
import subprocess, sys, time
subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2], sys.argv[3], "child", "pygate", "logd"])
time.sleep(60)
"""


def test_the_log_daemon_is_counted_apart(tmp_path: Path) -> None:
    burner, parent = tmp_path / "burn.py", tmp_path / "parent.py"
    burner.write_text(BURNER.format(burn=BURN_S))
    parent.write_text(LOGD_PARENT)
    go, done = tmp_path / "go", tmp_path / "done"
    proc = subprocess.Popen([sys.executable, str(parent), str(burner), str(go), str(done)])
    try:
        deadline = time.monotonic() + 30
        while len(cputime.tree(proc.pid)) < 2:
            assert time.monotonic() < deadline, "child never started"
            time.sleep(0.02)
        time.sleep(0.3)
        with cputime.Sampler(proc.pid, interval=0.05) as sampler:
            assert sampler.pids == [proc.pid] and len(sampler.logd_pids) == 1
            go.touch()
            wait_for(done)
            time.sleep(0.1)
        start, end = sampler.samples[0][0], sampler.samples[-1][0]
        logd = sampler.window(start, end, logd=True)
        assert BURN_S - 0.05 <= logd.total_s <= BURN_S + 0.1, logd
        assert sampler.window(start, end).total_s <= 0.05
    finally:
        for pid in cputime.tree(proc.pid)[1:]:
            subprocess.run(["kill", str(pid)], check=False)
        proc.kill()
        proc.wait(10)
