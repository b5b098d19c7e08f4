"""A captive portal or a proxy that answers every request with 200 and its
web page is the service being unavailable (exit 5, which the one-shot unit
retries), not an invalid document (exit 4, which it does not). Run against a
stand-in on 127.0.0.1 in a thread: no root, no namespace."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eni_agent.errors import MetadataUnavailable
from eni_agent.metadata_service import MetadataService, ServiceLimits, _is_markup

from tests.harness.commands import REPO

PAGE = ("<!DOCTYPE html>\n<html><head><title>Sign in to Wi-Fi</title></head>"
        "<body><form action=/login></form></body></html>\n")


@pytest.fixture(params=[405, 200], ids=["token-put-refused", "token-put-also-the-page"])
def portal(request):
    """http://127.0.0.1:PORT answering every GET with 200 and PAGE; the token
    PUT with `request.param` (405: a proxy that passes no PUT; 200: the page)."""
    put_status = request.param

    class Portal(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def answer(self, status: int) -> None:
            data = PAGE.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.answer(200)

        def do_PUT(self):
            self.answer(put_status)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_client_calls_it_unavailable(portal):
    with pytest.raises(MetadataUnavailable) as info:
        MetadataService(portal, ServiceLimits(deadline=5)).fetch_tree()
    assert info.value.exit_code == 5
    assert info.value.message.startswith(f"metadata service {portal}/latest/")
    assert "answered a web page" in info.value.message


def test_validate_exits_5_with_one_line(portal, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("")
    config.chmod(0o600)
    cp = subprocess.run([sys.executable, "-m", "eni_agent", "validate", "--config", str(config),
                         "--metadata", portal], cwd=REPO, capture_output=True, text=True,
                        timeout=60)
    assert cp.returncode == 5, cp
    assert cp.stderr.count("\n") == 1 and cp.stderr.startswith("eni-agent: metadata service "), \
        cp.stderr
    assert cp.stdout == ""


@pytest.mark.parametrize("body, markup", [
    (PAGE, True),
    ("\ufeff  <html><body>Access denied</body></html>", True),
    ("<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>", True),
    ('{"mac": "00:16:3e:00:00:01"}', False),
    ("00:16:3e:00:01:01/\n00:16:3e:00:02:01/\n", False),
    ('["10.0.1.10","10.0.1.11"]', False),
    ("[2001:db8::10,2001:db8::11]", False),
    ("10.0.1.253", False),
    ("", False),
])
def test_what_counts_as_a_web_page(body, markup):
    assert _is_markup(body) is markup
