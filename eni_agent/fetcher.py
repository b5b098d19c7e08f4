"""A metadata fetch on a worker thread (a hanging service must not hold up
signals, hotplug or drift repair). The answer comes back through a queue and
a wake-up socket the daemon's selector reads (`fileno`).

An abandoned fetch's thread is left to end on its own and its late answer
ignored; one stuck past FETCH_STUCK makes `stuck_since` say so, and the
daemon stops feeding the systemd watchdog, so systemd restarts it.
"""

from __future__ import annotations

import queue
import socket
import threading
from typing import Callable, Union

from eni_agent.errors import AgentError
from eni_agent.model import Metadata

FETCH_STUCK = 60.0  # a fetch thread stuck this long stops the watchdog

Answer = Union[Metadata, AgentError]


class FetchWorker:
    def __init__(self, load: Callable[[str | None], Metadata]):
        self.load = load
        self.thread: threading.Thread | None = None
        self.generation = 0  # answers of abandoned fetches are ignored
        self.abandoned: list[tuple[threading.Thread, float]] = []
        self._answers: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)

    def fileno(self) -> int:
        return self._wake_r.fileno()

    def start(self, source: str | None, now: float) -> None:
        self.generation += 1
        generation, load = self.generation, self.load

        def fetch() -> None:
            try:
                answer: Answer = load(source)
            except AgentError as e:
                answer = e
            except Exception as e:  # a bug in a reader must not kill the thread silently
                answer = AgentError(f"metadata fetch failed: {type(e).__name__}: {e}")
            self._answers.put((generation, answer))
            try:
                self._wake_w.send(b"\0")
            except OSError:
                pass

        self.started = now
        self.thread = threading.Thread(target=fetch, name="metadata-fetch", daemon=True)
        self.thread.start()

    def answers(self) -> list[Answer]:
        """The answer of the fetch in flight, if it came (late answers of
        abandoned fetches are dropped)."""
        try:
            self._wake_r.recv(64)
        except BlockingIOError:
            pass
        answers = []
        while not self._answers.empty():
            generation, answer = self._answers.get()
            if generation == self.generation:
                answers.append(answer)
                self.thread = None
        return answers

    def abandon(self) -> None:
        if self.thread is not None:
            self.abandoned.append((self.thread, self.started))
        self.thread = None
        self.generation += 1  # its answer, if it ever comes, is ignored

    def stuck_since(self, now: float) -> float | None:
        """When the oldest fetch thread stuck past FETCH_STUCK started."""
        self.abandoned = [(t, started) for t, started in self.abandoned if t.is_alive()]
        stuck = [started for _, started in self.abandoned if now - started > FETCH_STUCK]
        return min(stuck) if stuck else None

    def close(self) -> None:
        for end in (self._wake_r, self._wake_w):
            end.close()
