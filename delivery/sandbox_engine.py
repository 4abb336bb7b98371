"""A small bounded pool of sandbox worker processes (`delivery/sandbox_worker.py`), per web worker.

A query runs in a separate process: DuckDB's guidance for untrusted SQL, and the only way to stop a
runaway query for certain (the process is killed at the time limit; an in-process interrupt can be
ignored by a long operator). Workers are started when first needed and reused; at most `size` run at
once, and a caller waits for a free one within the same time limit. A worker that timed out, died
or answered nonsense is killed and replaced by the next caller.

No database transaction is open while a query runs (the service ends it before calling `run`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("sandbox_worker.py")


class EngineFailed(Exception):
    """The query did not produce an answer: `code` is `timeout`, `busy`, `engine_error`, ... (never
    the engine's message, which may quote data)."""

    def __init__(self, code: str, column: str | None = None) -> None:
        super().__init__(code)
        self.code, self.column = code, column


@dataclass
class _Worker:
    proc: subprocess.Popen[str]
    scratch: tempfile.TemporaryDirectory[str]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.scratch.cleanup()


def _start(deadline: float) -> _Worker:
    scratch = tempfile.TemporaryDirectory(prefix="datafair-sandbox-")
    env = {"PATH": "/usr/bin:/bin", "HOME": scratch.name, "TMPDIR": scratch.name, "LANG": "C.UTF-8"}
    # A fixed argv: this interpreter and the worker's file; the request goes over stdin as JSON.
    proc = subprocess.Popen([sys.executable, "-I", str(WORKER)],  # noqa: S603
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            cwd=scratch.name, env=env, text=True, bufsize=1,
                            close_fds=True, start_new_session=True)
    worker = _Worker(proc, scratch)
    try:
        ready = _read(worker, deadline)
    except EngineFailed:
        worker.kill()
        raise
    if ready != {"ready": True}:
        worker.kill()
        raise EngineFailed("engine_error")
    return worker


def _read(worker: _Worker, deadline: float) -> Any:
    """One JSON line from the worker before `deadline`, or EngineFailed (`timeout`, `engine_error`)."""
    import selectors

    assert worker.proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(worker.proc.stdout, selectors.EVENT_READ)
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(timeout=left):
            raise EngineFailed("timeout")
    line = worker.proc.stdout.readline()
    if not line:
        raise EngineFailed("engine_error")
    try:
        return json.loads(line)
    except ValueError:
        raise EngineFailed("engine_error") from None


class Pool:
    """At most `size` worker processes; `run` sends one request and waits for its answer."""

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self._slots = threading.BoundedSemaphore(self.size)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _take(self, deadline: float) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
        return _start(deadline)

    @contextlib.contextmanager
    def slot(self, timeout_s: float) -> Iterator[Slot]:
        """Hold one of the pool's places, waiting at most `timeout_s` (EngineFailed `busy` past it);
        the slot's `run` shares the same deadline, so waiting and running stay within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        if not self._slots.acquire(timeout=max(0.0, timeout_s)):
            raise EngineFailed("busy")
        try:
            yield Slot(self, deadline)
        finally:
            self._slots.release()

    def run(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        """The worker's answer to `request` within `timeout_s` (waiting for a free worker included);
        EngineFailed otherwise — a worker past the limit is killed."""
        with self.slot(timeout_s) as held:
            return held.run(request)

    def _run(self, request: dict[str, Any], deadline: float) -> dict[str, Any]:
        worker: _Worker | None = None
        try:
            worker = self._take(deadline)
            assert worker.proc.stdin is not None
            try:
                worker.proc.stdin.write(json.dumps(request) + "\n")
                worker.proc.stdin.flush()
            except OSError:
                raise EngineFailed("engine_error") from None
            answer = _read(worker, deadline)
            if not isinstance(answer, dict) or "ok" not in answer:
                raise EngineFailed("engine_error")
            with self._lock:
                self._idle.append(worker)
            worker = None
            return answer
        finally:
            if worker is not None:
                worker.kill()  # timed out, died or spoke nonsense: never reused

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()

    def processes(self) -> int:
        with self._lock:
            return sum(1 for w in self._idle if w.alive())


@dataclass
class Slot:
    """A place in the pool, held: `run` sends requests until the slot's deadline."""

    pool: Pool
    deadline: float

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.pool._run(request, self.deadline)


_pools: dict[tuple[int, int], Pool] = {}
_pools_lock = threading.Lock()


def close_all() -> None:
    """Stop this process's idle workers (at exit, and between test modules)."""
    with _pools_lock:
        pools = [p for (pid, _), p in _pools.items() if pid == os.getpid()]
    for p in pools:
        p.close()


atexit.register(close_all)


def pool(size: int) -> Pool:
    """This process's pool (a forked web worker gets its own, never its parent's pipes)."""
    key = (os.getpid(), int(size))
    with _pools_lock:
        found = _pools.get(key)
        if found is None:
            found = _pools[key] = Pool(size)
        return found
