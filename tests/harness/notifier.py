"""A stand-in for the daemon's sd_notify sender (eni_agent.notify) that records
what it was asked to send, for unit tests of the daemon's parts."""

from __future__ import annotations


class RecordingNotifier:
    def __init__(self):
        self.sent: list[dict] = []

    def send(self, **fields) -> bool:
        self.sent.append(fields)
        return True
