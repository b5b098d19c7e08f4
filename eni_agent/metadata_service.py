"""Reading the ECS metadata service into the same tree a metadata file holds.

  GET /latest/meta-data/mac                              the primary NIC's MAC
  GET /latest/meta-data/network/interfaces/macs/         one "<mac>/" per line
  GET /latest/meta-data/network/interfaces/macs/<mac>/<field>

Hardened mode: PUT /latest/api/token (X-aliyun-ecs-metadata-token-ttl-seconds)
returns a token, sent as X-aliyun-ecs-metadata-token on every GET; it is
cached, renewed before it expires and on a 401.

Anything short of a complete, consistent answer raises `MetadataUnavailable`:
a timeout, a 5xx or 429 after bounded retries, a truncated or oversized body,
an ENI vanishing mid-fetch. It is never read as "no ENIs" or "no addresses".
Standard library only (http.client): a dozen small GETs over one keep-alive
connection need nothing more, and the import stays cheap.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
import urllib.parse
from dataclasses import dataclass, field

from eni_agent.errors import InvalidInput, MetadataUnavailable, one_line
from eni_agent.model import normalize_mac

DEFAULT_SERVICE = "http://100.100.100.200"
META = "/latest/meta-data"
TOKEN_PATH = "/latest/api/token"
TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aliyun-ecs-metadata-token"
# Fields read per ENI; each may answer 404 (absent), e.g. ipv6s without IPv6.
ENI_FIELDS = ("network-interface-id", "primary-ip-address", "private-ipv4s", "netmask",
              "gateway", "vswitch-cidr-block", "vpc-cidr-block", "vswitch-id", "vpc-id",
              "ipv6s", "ipv6-gateway", "vswitch-ipv6-cidr-block")
LIST_FIELDS = ("private-ipv4s", "ipv6s")
# The service always serves these for an attached ENI: a 404 means the answer
# is incomplete (or the ENI is detaching), not that the ENI has no address.
REQUIRED_FIELDS = ("primary-ip-address", "private-ipv4s", "gateway", "vswitch-cidr-block")
IPV6_FIELDS = ("ipv6s", "vswitch-ipv6-cidr-block", "ipv6-gateway")


@dataclass
class ServiceLimits:
    connect_timeout: float = 1.0
    read_timeout: float = 2.0
    deadline: float = 10.0  # for one whole fetch, retries included
    attempts: int = 4  # per request, on 429/5xx/timeouts/connection errors
    max_body: int = 64 * 1024
    token_ttl: int = 21600


class _Retry(Exception):
    """A transient failure of one request: try again if time allows."""


@dataclass
class MetadataService:
    """A client for one service address; keep it to reuse the token."""

    base_url: str = DEFAULT_SERVICE
    limits: ServiceLimits = field(default_factory=ServiceLimits)
    token: str | None = None
    token_expires: float = 0.0
    tokens_supported: bool = True
    _conn: http.client.HTTPConnection | None = None

    def __post_init__(self) -> None:
        url = urllib.parse.urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise InvalidInput(f"metadata source {self.base_url}: not an http(s)://HOST[:PORT] URL")
        if url.path not in ("", "/") or url.query or url.fragment:
            raise InvalidInput(f"metadata source {self.base_url}: give only http://HOST[:PORT]")
        try:
            self.host, self.port, self.https = url.hostname, url.port, url.scheme == "https"
        except ValueError:
            raise InvalidInput(f"metadata source {self.base_url}: invalid port") from None

    # -- the tree ------------------------------------------------------------

    def fetch_tree(self) -> dict:
        """The metadata tree in the JSON-file layout, or MetadataUnavailable."""
        deadline = time.monotonic() + self.limits.deadline
        try:
            primary = self._get(f"{META}/mac", deadline)
            if primary is None:
                raise MetadataUnavailable(f"metadata service {self.base_url}: {META}/mac not found")
            listing = self._get(f"{META}/network/interfaces/macs/", deadline)
            if listing is None:
                raise MetadataUnavailable(f"metadata service {self.base_url}: no ENI listing")
            macs: dict[str, dict] = {}
            for line in listing.splitlines():
                mac = normalize_mac(line.strip().rstrip("/"))
                if line.strip() and mac is None:
                    raise MetadataUnavailable(
                        f"metadata service {self.base_url}: unexpected ENI listing line {line!r:.60}")
                if mac:
                    macs[mac] = self._eni(mac, deadline)
            return {"mac": primary.strip(), "network": {"interfaces": {"macs": macs}}}
        finally:
            self.close()

    def _eni(self, mac: str, deadline: float) -> dict:
        fields: dict = {}
        for name in ENI_FIELDS:
            value = self._get(f"{META}/network/interfaces/macs/{mac}/{name}", deadline)
            if value is None:
                if name in REQUIRED_FIELDS:
                    # Listed a moment ago, incomplete now: a detach raced the fetch,
                    # or the service is having a moment. Either way: not usable.
                    raise MetadataUnavailable(f"metadata service {self.base_url}: ENI {mac} "
                                              f"{name} answered 404; the answer is incomplete")
                continue
            fields[name] = parse_list(value, name, mac) if name in LIST_FIELDS else value.strip()
        ipv6 = [name for name in IPV6_FIELDS if name in fields]
        if ipv6 == ["vswitch-ipv6-cidr-block", "ipv6-gateway"]:
            # By the service's format this is "no IPv6 address on this ENI", and
            # it would remove the ENI's IPv6: ask once more, so a one-request 404
            # cannot. (An IPv4-only ENI in an IPv6 vswitch always looks like this:
            # one extra small GET, no waiting.)
            again = self._get(f"{META}/network/interfaces/macs/{mac}/ipv6s", deadline)
            if again is not None:
                fields["ipv6s"] = parse_list(again, "ipv6s", mac)
                ipv6.insert(0, "ipv6s")
        if "ipv6s" in ipv6 and len(ipv6) < len(IPV6_FIELDS):
            # Addresses served without their CIDR or gateway: a 404 mid-answer.
            raise MetadataUnavailable(f"metadata service {self.base_url}: ENI {mac} serves "
                                      "ipv6s without all of vswitch-ipv6-cidr-block and "
                                      "ipv6-gateway; the answer is incomplete")
        return fields

    # -- HTTP ------------------------------------------------------------------

    def _get(self, path: str, deadline: float) -> str | None:
        """The body of a GET, None for 404; retries transient failures."""
        delay = 0.1
        last = "no attempt"
        for attempt in range(self.limits.attempts):
            if time.monotonic() >= deadline:
                break
            try:
                headers = {}
                token = self._token(deadline)
                if token:
                    headers[TOKEN_HEADER] = token
                status, body = self._request("GET", path, headers, deadline)
                if status == 200:
                    return body
                if status == 404:
                    return None
                if status == 401 and self.tokens_supported:
                    self.token = None  # expired or revoked: fetch a new one
                    raise _Retry("401 Unauthorized")
                if status == 429 or status >= 500:
                    raise _Retry(f"HTTP {status}")
                raise MetadataUnavailable(f"metadata service {self.base_url}{path}: HTTP {status}")
            except _Retry as e:
                last = str(e)
                self.close()
            if attempt + 1 < self.limits.attempts:
                pause = min(delay * random.uniform(0.5, 1.5), max(0.0, deadline - time.monotonic()))
                time.sleep(pause)
                delay *= 2
        raise MetadataUnavailable(f"metadata service {self.base_url}{path}: {last} "
                                  f"(gave up after {attempt + 1} attempt(s))")

    def _token(self, deadline: float) -> str | None:
        if not self.tokens_supported:
            return None
        now = time.monotonic()
        if self.token and now < self.token_expires:
            return self.token
        ttl = self.limits.token_ttl
        status, body = self._request("PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: str(ttl)}, deadline)
        if status == 200 and body.strip():
            self.token = body.strip()
            self.token_expires = now + ttl * 0.8  # renew well before it expires
            return self.token
        if status in (403, 404, 405):
            self.tokens_supported = False  # normal (non-hardened) mode only
            return None
        if status == 429 or status >= 500:
            raise _Retry(f"token: HTTP {status}")
        raise MetadataUnavailable(f"metadata service {self.base_url}: token request answered "
                                  f"HTTP {status}")

    def _request(self, method: str, path: str, headers: dict, deadline: float) -> tuple[int, str]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Retry("deadline reached")
        try:
            conn = self._connection(min(self.limits.connect_timeout, remaining))
            conn.request(method, path, headers=headers)
            conn.sock.settimeout(min(self.limits.read_timeout, remaining))
            response = conn.getresponse()
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > self.limits.max_body:
                raise MetadataUnavailable(f"metadata service {self.base_url}{path}: answer of "
                                          f"{length} bytes exceeds {self.limits.max_body}")
            body = response.read(self.limits.max_body + 1)
            if len(body) > self.limits.max_body:
                raise MetadataUnavailable(f"metadata service {self.base_url}{path}: answer "
                                          f"exceeds {self.limits.max_body} bytes")
            if length is not None and length.isdigit() and len(body) < int(length):
                # read(amt) returns what arrived before the peer closed: a listing
                # cut at a line end, or 10.0.1.253 cut to 10.0.1.25, would parse.
                raise _Retry(f"truncated answer ({len(body)} of {length} bytes)")
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, body.decode("utf-8", "replace")
        except (http.client.IncompleteRead, http.client.RemoteDisconnected) as e:
            raise _Retry(f"truncated answer ({type(e).__name__})") from None
        except (TimeoutError, socket.timeout):
            raise _Retry("timed out") from None
        except (OSError, http.client.HTTPException) as e:
            raise _Retry(one_line(e) or type(e).__name__) from None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def parse_list(value: str, name: str, mac: str) -> list:
    """`private-ipv4s` is a JSON array; `ipv6s` looks like `[a,b]` but is not
    JSON (no quotes). Anything else is an incomplete answer."""
    text = value.strip()
    try:
        parsed = json.loads(text)
        if isinstance(parsed, list):
            return parsed
    except ValueError:
        pass
    if text.startswith("[") and text.endswith("]"):
        return [item.strip().strip('"') for item in text[1:-1].split(",") if item.strip()]
    raise MetadataUnavailable(f"metadata service: ENI {mac} {name}: unexpected value "
                              f"{json.dumps(text)[:60]}")
