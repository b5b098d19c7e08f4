#!/usr/bin/python3
"""Listen on each address of `eni_fo.addrs=A,B` port `eni_fo.port=P` (kernel
command line), bound with IP_FREEBIND so the addresses need not exist yet (the
ENI may be attached later, or never), and answer every connection with
"<eni_fo.name> <the local address reached>\\n"."""
import selectors
import socket

IP_FREEBIND = 15


def cmdline() -> dict:
    with open("/proc/cmdline") as f:
        words = f.read().split()
    return dict(w[len("eni_fo."):].split("=", 1) for w in words
                if w.startswith("eni_fo.") and "=" in w)


def main() -> None:
    args = cmdline()
    name, port = args["name"], int(args["port"])
    sel = selectors.DefaultSelector()
    for addr in args["addrs"].split(","):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        sock.bind((addr, port))
        sock.listen(128)
        sel.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            try:
                conn, _ = key.fileobj.accept()
            except OSError:
                continue
            try:
                conn.settimeout(1)
                conn.sendall(f"{name} {conn.getsockname()[0]}\n".encode())
            except OSError:
                pass
            finally:
                conn.close()


if __name__ == "__main__":
    main()
