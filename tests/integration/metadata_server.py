"""A stand-in for the ECS metadata service, for tests.

    python metadata_server.py --document DOC.json --control CONTROL.json \
        [--address 100.100.100.200] [--port 80] [--require-token]

Serves the tree in DOC.json (the JSON-file layout eni-agent reads) the way the
service does: text values, `private-ipv4s` as a JSON array, `ipv6s` as
`[a,b]` (not JSON), 404 for absent fields, directory listings with a trailing
slash. With --require-token, GETs need a token from PUT /latest/api/token.

Faults are read from CONTROL.json on every request, so a test changes the
behaviour by rewriting that file:
  {"status": 500}             every request answers 500 (or 429, 403, ...)
  {"hang": true}              requests never answer
  {"not_found": "ipv6s"}      that field answers 404 (a path suffix)
  {"not_found_once": "ipv6s"} only its next request answers 404 (a blip)
  {"truncate": true}          bodies are cut short (Content-Length kept)
  {"huge": true}              bodies are 10 MB
  {"expire_tokens": N}        all tokens issued so far are revoked, once per N
A JSON line per request is appended to CONTROL.json + ".log".
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

META = "/latest/meta-data"


def service_view(doc: dict) -> dict[str, str]:
    """Every path the service would answer, with its body."""
    paths = {f"{META}/mac": doc["mac"]}
    macs = doc["network"]["interfaces"]["macs"]
    paths[f"{META}/network/interfaces/macs/"] = "".join(f"{mac}/\n" for mac in macs)
    for mac, fields in macs.items():
        base = f"{META}/network/interfaces/macs/{mac}/"
        paths[base] = "".join(f"{name}\n" for name in fields)
        for name, value in fields.items():
            if name == "ipv6s" and isinstance(value, list):
                body = "[" + ",".join(value) + "]"
            elif isinstance(value, list):
                body = json.dumps(value)
            else:
                body = str(value)
            paths[base + name] = body
    return paths


def make_handler(args):
    tokens: set[str] = set()
    revocations_done: set = set()
    blips_done: set = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):  # quiet; requests go to the .log file
            pass

        def setup(self):
            super().setup()
            # Headers and body are written separately: without this, Nagle and
            # the client's delayed ACK stall every answer by 40 ms.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def control(self) -> dict:
            try:
                with open(args.control) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return {}

        def record(self, status: int) -> None:
            with open(args.control + ".log", "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path,
                                    "status": status, "time": time.time()}) + "\n")

        def reply(self, status: int, body: str = "", truncate: bool = False) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if truncate else data)
            if truncate:
                self.close_connection = True
            self.record(status)

        def faults(self) -> bool:
            control = self.control()
            if control.get("hang"):
                time.sleep(3600)
            if control.get("status"):
                self.reply(int(control["status"]), "fault\n")
                return True
            return False

        def do_PUT(self):
            if self.faults():
                return
            if self.path != "/latest/api/token":
                return self.reply(404, "not found\n")
            ttl = self.headers.get("X-aliyun-ecs-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, "bad ttl\n")
            token = secrets.token_hex(16)
            tokens.add(token)
            self.reply(200, token)

        def do_GET(self):
            if self.faults():
                return
            control = self.control()
            token = self.headers.get("X-aliyun-ecs-metadata-token")
            revoke = control.get("expire_tokens")
            if revoke and revoke not in revocations_done:
                revocations_done.add(revoke)
                tokens.clear()
            if (args.require_token or token) and token not in tokens:
                return self.reply(401, "unauthorized\n")
            with open(args.document) as f:
                view = service_view(json.load(f))
            missing = control.get("not_found")
            if missing and self.path.endswith("/" + missing):
                return self.reply(404, "not found\n")
            blip = control.get("not_found_once")
            if blip and self.path.endswith("/" + blip) and blip not in blips_done:
                blips_done.add(blip)
                return self.reply(404, "not found\n")
            if self.path not in view:
                return self.reply(404, "not found\n")
            body = view[self.path]
            if control.get("huge"):
                body = "x" * (10 << 20)
            self.reply(200, body, truncate=bool(control.get("truncate")))

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--document", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--address", default="100.100.100.200")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--require-token", action="store_true")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.address, args.port), make_handler(args))
    server.daemon_threads = True
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
