"""One kept-alive HTTP connection to the metadata service, and the deadline
that bounds a fetch: `expire()` (called by the fetch's timer) shuts the socket
down, so a server dripping headers or a body one byte at a time cannot hold a
fetch past it. A transient failure of one request raises `Retry`."""

from __future__ import annotations

import http.client
import socket
import threading
import time

from eni_agent.errors import MetadataUnavailable, one_line


class Retry(Exception):
    """A transient failure of one request: try again if time allows."""


class _Stale(Exception):
    """A kept-alive connection the server had already closed: reconnect at once."""


class ServiceConnection:
    """The connection to one service address (reused between requests)."""

    def __init__(self, base_url: str, host: str, port: int | None, https: bool) -> None:
        self.base_url, self.host, self.port, self.https = base_url, host, port, https
        self.expired = False  # the fetch's deadline passed
        self._conn: http.client.HTTPConnection | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def request(self, method: str, path: str, headers: dict, deadline: float, max_body: int, *,
                connect_timeout: float, read_timeout: float) -> tuple[int, str]:
        """(status, body) of one request; `Retry` for a transient failure."""
        for _ in range(2):
            try:
                return self._request_once(method, path, headers, deadline, max_body,
                                          connect_timeout, read_timeout)
            except _Stale:
                self.close()
        raise Retry("connection closed by the server")

    def _request_once(self, method: str, path: str, headers: dict, deadline: float,
                      max_body: int, connect_timeout: float,
                      read_timeout: float) -> tuple[int, str]:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.expired:
            raise Retry("deadline reached")
        reused = self._conn is not None and self._conn.sock is not None
        try:
            conn = self._connection(min(connect_timeout, remaining))
            conn.request(method, path, headers=headers)
            with self._lock:
                self._sock = conn.sock  # the deadline timer cuts it, even mid-body
            conn.sock.settimeout(min(read_timeout, remaining))
            response = conn.getresponse()
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_body:
                raise MetadataUnavailable(f"metadata service {self.base_url}{path}: answer of "
                                          f"{length} bytes exceeds {max_body}")
            body = response.read(max_body + 1)
            if self.expired:
                raise Retry("deadline reached")
            if len(body) > max_body:
                raise MetadataUnavailable(f"metadata service {self.base_url}{path}: answer "
                                          f"exceeds {max_body} bytes")
            if length is not None and length.isdigit() and len(body) < int(length):
                # read(amt) returns what arrived before the peer closed: a listing
                # cut at a line end, or 10.0.1.253 cut to 10.0.1.25, would parse.
                raise Retry(f"truncated answer ({len(body)} of {length} bytes)")
            if response.will_close or response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, body.decode("utf-8", "replace")
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            if reused and not self.expired:
                raise _Stale() from None  # the service closes idle connections
            raise Retry(f"connection closed ({type(e).__name__})") from None
        except http.client.IncompleteRead as e:
            raise Retry(f"truncated answer ({type(e).__name__})") from None
        except (TimeoutError, socket.timeout):
            raise Retry("timed out") from None
        except (OSError, http.client.HTTPException) as e:
            if self.expired:
                raise Retry("deadline reached") from None
            raise Retry(one_line(e) or type(e).__name__) from None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        with self._lock:
            if self._conn is None:
                cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
                self._conn = cls(self.host, self.port, timeout=timeout)
            return self._conn

    def expire(self) -> None:
        """The fetch's deadline passed: cut whatever is in progress short."""
        self.expired = True
        with self._lock:
            sock = self._sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        with self._lock:
            conn, self._conn, self._sock = self._conn, None, None
        if conn is not None:
            conn.close()
