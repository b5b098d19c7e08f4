"""The stand-in ECS metadata service (metadata_server.py), run inside a
topology's router namespace at 100.100.100.200, where the guest reaches it
through its primary NIC's default route, as on ECS.

    with serve_metadata(topo, tmp_path, build_metadata(topo)) as svc:
        res = agent.sync(metadata=svc.url)      # sync --metadata http://100.100.100.200
        svc.fault(status=500)                   # every request answers 500 from now on
        svc.clear()                             # back to normal
        svc.set_document(doc)                   # attach / detach / IP changes
        svc.requests(since=mark)                # what the server saw (method, path, status)

The document and the control file are replaced by rename, so the server (which
re-reads both on every request) never sees a half-written file. The server is
always killed (its whole process group) when the ``with`` block ends, pass or
fail, before the topology's namespaces go away.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from .commands import ip
from .kernel import ip_json
from .metadata import build_metadata
from .topology import Topology

SERVICE_IP = "100.100.100.200"
ALL_PATH = "/latest/meta-data/all"
LISTING_PATH = "/latest/meta-data/network/interfaces/macs/"
SERVER = Path(__file__).resolve().with_name("metadata_server.py")
START_TIMEOUT = 30.0  # the machine is busy: python start-up can take seconds

# metadata_server.py with one more fault, for ``MetadataServer(partial_bodies=True)``:
#   {"cut_lines": {"path": SUFFIX, "keep": N}}  the answer to a GET whose path ends
#   with SUFFIX announces its full Content-Length, sends only its first N lines,
#   and the connection closes: a connection dropped mid-answer, at a line end.
_PARTIAL_BODIES = """
import sys
sys.path.insert(0, sys.argv.pop(1))
import metadata_server as ms

_make_handler = ms.make_handler

def make_handler(args):
    base = _make_handler(args)

    class Handler(base):
        def reply(self, status, body="", truncate=False, **kwargs):
            cut = self.control().get("cut_lines")
            if not (cut and status == 200 and self.command == "GET"
                    and self.path.endswith(cut["path"])):
                return super().reply(status, body, truncate, **kwargs)
            data = body.encode()
            kept = "".join(body.splitlines(keepends=True)[: cut["keep"]]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(kept)
            self.close_connection = True
            self.record(200)

    return Handler

ms.make_handler = make_handler
ms.main()
"""


def _write_atomically(path: Path, doc: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.rename(tmp, path)


class MetadataServer:
    """metadata_server.py running in ``topo.router``; see the module docstring."""

    def __init__(self, topo: Topology, workdir: Path, document: dict | None = None, *,
                 require_token: bool = True, tokens: str | None = None,
                 close: bool = False, all: str = "thin", address: str = SERVICE_IP,
                 partial_bodies: bool = False) -> None:
        self.topo = topo
        self.dir = Path(workdir) / "service"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.document = self.dir / "document.json"
        self.control = self.dir / "control.json"
        self.log = Path(str(self.control) + ".log")
        self.stderr_path = self.dir / "server.stderr"
        self.address = address
        self.url = f"http://{address}"
        # hardened-only (required), tokens offered (optional), normal mode (refused)
        self.tokens = tokens or ("required" if require_token else "optional")
        self.close = close  # close the connection after every answer ("silent": unannounced)
        self.all = all  # /latest/meta-data/all: thin, complete or missing (404)
        self.partial_bodies = partial_bodies
        self.proc: subprocess.Popen | None = None
        self._stderr = None
        self.set_document(build_metadata(topo) if document is None else document)
        self.clear()

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> "MetadataServer":
        addrs = {a["local"] for link in ip_json(self.topo.router, "addr", "show", "dev", "lo")
                 for a in link.get("addr_info", [])}
        if self.address not in addrs:
            ip(self.topo.router, "addr", "add", f"{self.address}/32", "dev", "lo")
        program = (["-c", _PARTIAL_BODIES, str(SERVER.parent)] if self.partial_bodies
                   else [str(SERVER)])
        argv = ["ip", "netns", "exec", self.topo.router, sys.executable, *program,
                "--document", str(self.document), "--control", str(self.control),
                "--address", self.address, "--port", "80"]
        argv += ["--tokens", self.tokens, "--all", self.all]
        if self.close:
            argv += ["--close"] + (["silent"] if self.close == "silent" else [])
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while time.monotonic() < deadline and self.proc.poll() is None:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                break
        if line.strip() != b"listening":
            self.stop()
            raise RuntimeError(f"metadata server did not start: {line!r}, stderr: "
                               f"{self.stderr_path.read_text(errors='replace')}")
        return self

    def stop(self) -> None:
        """Kill the server (SIGKILL to its process group: a hang fault leaves
        threads sleeping for an hour) and reap it. Idempotent."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- what it serves ----------------------------------------------------------

    def set_document(self, doc: dict) -> None:
        """Serve ``doc`` (the JSON-file layout) from the next request on."""
        _write_atomically(self.document, doc)

    def fault(self, **control: Any) -> None:
        """E.g. ``fault(status=500)``, ``fault(hang=True)``, ``fault(not_found="gateway")``,
        ``fault(truncate=True)``, ``fault(huge=True)``, ``fault(expire_tokens=1)``,
        ``fault(drip={"what": "headers", "every": 1.5})``, ``fault(tokens="required")``,
        ``fault(token_status=404)``, ``fault(token_body="<html>")``, ``fault(all="complete")``
        (see metadata_server.py)."""
        _write_atomically(self.control, control)

    def clear(self) -> None:
        _write_atomically(self.control, {})

    # -- what it saw ---------------------------------------------------------------

    def requests(self, since: int = 0) -> list[dict]:
        """Requests logged so far (from index ``since``): method, path, status, time."""
        try:
            lines = self.log.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines[since:] if line.strip()]

    def mark(self) -> int:
        """An index for ``requests(since=...)``: the requests from now on."""
        return len(self.requests())

    def fetches(self, since: int = 0) -> list[float]:
        """Times (epoch) of the fetches started: each one begins with GET .../all,
        or with the ENI listing where `all` is not served (a fetch that finds
        `all` missing reads the listing right after: one fetch, not two)."""
        starts, previous = [], None
        for r in self.requests(since):
            if r["method"] != "GET":
                continue
            retried = previous and previous["path"] == r["path"] and previous["status"] not in (
                200, 404)
            if retried:
                pass
            elif r["path"] == ALL_PATH or (r["path"] == LISTING_PATH and not (
                    previous and previous["path"] == ALL_PATH and previous["status"] == 404)):
                starts.append(r["time"])
            previous = r
        return starts

    def show(self) -> str:
        reqs = self.requests()
        lines = [f"{r['time']:.3f} {r['method']} {r['path']} -> {r['status']}" for r in reqs[-40:]]
        return f"metadata server: {len(reqs)} request(s), last ones:\n" + "\n".join(lines)


@contextlib.contextmanager
def serve_metadata(topo: Topology, workdir: Path, document: dict | None = None,
                   **kwargs: Any) -> Iterator[MetadataServer]:
    """Start the stand-in service in ``topo.router``; always kill it on exit."""
    server = MetadataServer(topo, workdir, document, **kwargs)
    try:
        server.start()
        yield server
    finally:
        server.stop()
