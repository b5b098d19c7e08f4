#!/usr/bin/python3
"""Answer "ping\n" with "pong <the local address the client reached>\n"."""
import json
import socketserver

PLAN = "/etc/eni-vm/plan.json"


class Handler(socketserver.StreamRequestHandler):
    timeout = 10

    def handle(self):
        try:
            if self.rfile.readline(64).strip() == b"ping":
                local = self.connection.getsockname()[0]
                self.wfile.write(f"pong {local}\n".encode())
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 64


if __name__ == "__main__":
    with open(PLAN) as f:
        port = json.load(f)["listen_port"]
    Server(("0.0.0.0", port), Handler).serve_forever()
