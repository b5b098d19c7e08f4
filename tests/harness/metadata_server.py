"""A stand-in for the ECS metadata service, for tests.

    python metadata_server.py --document DOC.json --control CONTROL.json \
        [--address 100.100.100.200] [--port 80] [--tokens required|optional|refused]
        [--close [silent]] [--all thin|complete|missing]

Serves the tree in DOC.json (the JSON-file layout eni-agent reads) the way the
service does: text values, `private-ipv4s` as a JSON array, `ipv6s` as
`[a,b]` (not JSON), 404 for absent fields, directory listings with a trailing
slash (the top-level and `network/` ones too, with `instance-id` and `hostname`:
cloud-init's AliYun datasource crawls the tree, under a dated version such as
`/2016-01-01/`, which is served as `latest`), and `/latest/meta-data/all`: the
whole tree as one JSON document whose
values keep those text forms. `--all thin` (the default, as recorded from the
service) gives thin entries there (an ENI: only `vpc-cidr-block` and
`netmask`; the primary: `gateway`, `netmask`, `network-interface-id`);
`complete` gives every field; `missing` answers 404.

Tokens: `required` (hardened-only mode: a GET without a token answers 403, a
bad token 401), `optional` (tokens handed out, GETs without one work), or
`refused` (normal mode: the token PUT answers 403). `--close` closes the
connection after every answer, as the service does in normal mode (`--close
silent`: without a `Connection: close` header, so a client finds out only
when it reuses the connection).

Faults and modes are read from CONTROL.json on every request, so a test
changes the behaviour by rewriting that file:
  {"status": 500}             every request answers 500 (or 429, 403, ...)
  {"hang": true}              requests never answer
  {"portal": true}            every request answers 200 with an HTML page (a captive
                              portal, a proxy); "GET": only GETs (the token PUT
                              answers as it would)
  {"drip": {"what": "headers", "every": 1.5}}   one header line every 1.5 s,
                              forever; "what": "body": the body one byte at a time
  {"not_found": "ipv6s"}      that field answers 404 (a path suffix, or a list
                              of them), and is left out of `all`
  {"not_found_once": "ipv6s"} only its next request answers 404 (a blip)
  {"truncate": true}          bodies are cut short (Content-Length kept)
  {"huge": true}              bodies are 10 MB
  {"expire_tokens": N}        all tokens issued so far are revoked, once per N
  {"tokens": "required"}      overrides --tokens (e.g. switch to hardened-only)
  {"token_status": 404}       the token PUT answers that status
  {"token_body": "<html>"}    the token PUT answers 200 with that body
  {"token_status_once": 404}  only the next token PUT answers that status
  {"replace_body": {"path": SUFFIX, "body": TEXT}}  200 answers to GETs of
                              paths ending with SUFFIX carry TEXT instead
  {"all": "complete"}         overrides --all
  {"close": true}             overrides --close; "silent": close after each
                              answer without saying so (no Connection: close)
A JSON line per request is appended to CONTROL.json + ".log".
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

META = "/latest/meta-data"
THIN_PRIMARY = ("gateway", "netmask", "network-interface-id")
THIN_ENI = ("vpc-cidr-block", "netmask")
PORTAL_PAGE = ("<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n"
               "<body><a href=\"/login\">Sign in to continue</a></body></html>\n")


def text_form(name: str, value) -> str:
    """A field's value as the service writes it."""
    if name == "ipv6s" and isinstance(value, list):
        return "[" + ",".join(value) + "]"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def service_view(doc: dict) -> dict[str, str]:
    """Every path the service would answer, with its body."""
    paths = {f"{META}/mac": doc["mac"], f"{META}/instance-id": "i-standin",
             f"{META}/hostname": "stand-in",
             f"{META}/": "hostname\ninstance-id\nmac\nnetwork/\n",
             f"{META}/network/": "interfaces/\n", f"{META}/network/interfaces/": "macs/\n"}
    macs = doc["network"]["interfaces"]["macs"]
    paths[f"{META}/network/interfaces/macs/"] = "".join(f"{mac}/\n" for mac in macs)
    for mac, fields in macs.items():
        base = f"{META}/network/interfaces/macs/{mac}/"
        paths[base] = "".join(f"{name}\n" for name in fields)
        for name, value in fields.items():
            paths[base + name] = text_form(name, value)
    return paths


def all_view(doc: dict, mode: str, missing: list[str]) -> dict:
    """The `all` document: text forms kept, entries thin or complete, and a
    field answering 404 (`missing`, a path suffix) left out."""
    def served(path: str) -> bool:
        return not any(path.endswith("/" + suffix) for suffix in missing)

    macs = {}
    for mac, fields in doc["network"]["interfaces"]["macs"].items():
        keep = (fields if mode == "complete" else
                THIN_PRIMARY if mac == doc["mac"] else THIN_ENI)
        macs[mac] = {name: text_form(name, value) for name, value in fields.items()
                     if name in keep
                     and served(f"{META}/network/interfaces/macs/{mac}/{name}")}
    tree = {"hostname": "stand-in", "instance-id": "i-standin", "region-id": "cn-test",
            "network-type": "vpc"}
    if served(f"{META}/mac"):
        tree["mac"] = doc["mac"]
    if served(f"{META}/network/interfaces/macs/"):
        tree["network"] = {"interfaces": {"macs": macs}}
    return tree


def make_handler(args):
    tokens: set[str] = set()
    revocations_done: set = set()
    blips_done: set = set()
    token_refusals_done: set = set()

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

        def reply(self, status: int, body: str = "", truncate: bool = False,
                  content_type: str = "text/plain") -> None:
            control = self.control()
            data = body.encode()
            close = control.get("close", args.close)  # True, or "silent": no header
            drip = control.get("drip")
            self.record(status)
            if drip:
                return self.drip(status, data, drip)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if close and close != "silent":
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if truncate else data)
            if truncate or close:
                self.close_connection = True

        def drip(self, status: int, data: bytes, drip: dict) -> None:
            """Answer slowly: one header line, or one body byte, per interval."""
            every = float(drip.get("every", 1.5))
            self.close_connection = True
            try:
                self.wfile.write(f"HTTP/1.1 {status} OK\r\n".encode())
                if drip.get("what", "headers") == "headers":
                    for i in range(10000):
                        self.wfile.write(f"X-Drip-{i}: {i}\r\n".encode())
                        self.wfile.flush()
                        time.sleep(every)
                self.wfile.write(f"Content-Length: {len(data) + 10000}\r\n\r\n".encode())
                for i in range(len(data) + 10000):
                    self.wfile.write((data[i:i + 1] or b" "))
                    self.wfile.flush()
                    time.sleep(every)
            except OSError:
                pass

        def faults(self) -> bool:
            control = self.control()
            if control.get("hang"):
                time.sleep(3600)
            if control.get("status"):
                self.reply(int(control["status"]), "fault\n")
                return True
            portal = control.get("portal")
            if portal is True or portal == self.command:
                self.reply(200, PORTAL_PAGE, content_type="text/html; charset=utf-8")
                return True
            return False

        def do_PUT(self):
            if self.faults():
                return
            if self.path != "/latest/api/token":
                return self.reply(404, "not found\n")
            control = self.control()
            mode = control.get("tokens", args.tokens)
            refused = control.get("token_status") or (403 if mode == "refused" else None)
            once = control.get("token_status_once")
            if once and once not in token_refusals_done:
                token_refusals_done.add(once)
                refused = once
            if refused:
                return self.reply(int(refused), "forbidden\n")
            if "token_body" in control:
                return self.reply(200, control["token_body"], content_type="text/html")
            ttl = self.headers.get("X-aliyun-ecs-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, "bad ttl\n")
            token = secrets.token_hex(16)
            tokens.add(token)
            self.reply(200, token)

        def do_GET(self):
            self.path = re.sub(r"^/\d{4}-\d{2}-\d{2}/", "/latest/", self.path)
            if self.faults():
                return
            control = self.control()
            token = self.headers.get("X-aliyun-ecs-metadata-token")
            revoke = control.get("expire_tokens")
            if revoke and revoke not in revocations_done:
                revocations_done.add(revoke)
                tokens.clear()
            mode = control.get("tokens", args.tokens)
            if mode == "required" and token is None:
                return self.reply(403, "forbidden\n")
            if token is not None and mode != "refused" and token not in tokens:
                return self.reply(401, "unauthorized\n")
            with open(args.document) as f:
                doc = json.load(f)
            missing = control.get("not_found") or []
            missing = [missing] if isinstance(missing, str) else missing
            if any(self.path.endswith("/" + suffix) for suffix in missing):
                return self.reply(404, "not found\n")
            blip = control.get("not_found_once")
            if blip and self.path.endswith("/" + blip) and blip not in blips_done:
                blips_done.add(blip)
                return self.reply(404, "not found\n")
            if self.path == f"{META}/all":
                mode = control.get("all", args.all)
                if mode == "missing":
                    return self.reply(404, "not found\n")
                body = json.dumps(all_view(doc, mode, missing), indent=2)
                content_type = "application/json"
            else:
                view = service_view(doc)
                if self.path not in view:
                    return self.reply(404, "not found\n")
                body, content_type = view[self.path], "text/plain"
            replace = control.get("replace_body")
            if replace and self.path.endswith(replace["path"]):
                body = replace["body"]
            if control.get("huge"):
                body = "x" * (10 << 20)
            self.reply(200, body, truncate=bool(control.get("truncate")),
                       content_type=content_type)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--document", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--address", default="100.100.100.200")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--tokens", choices=("required", "optional", "refused"),
                        default="optional")
    parser.add_argument("--require-token", dest="tokens", action="store_const",
                        const="required")
    parser.add_argument("--close", nargs="?", const=True, default=False,
                        choices=(True, "silent"))
    parser.add_argument("--all", choices=("thin", "complete", "missing"), default="thin")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.address, args.port), make_handler(args))
    server.daemon_threads = True
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
