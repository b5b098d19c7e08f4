"""Reading the ECS metadata service into the same tree a metadata file holds.

  GET /latest/meta-data/all                              the whole tree, one JSON
                                                         document (where served)
  GET /latest/meta-data/mac                              the primary NIC's MAC
  GET /latest/meta-data/network/interfaces/macs/         one "<mac>/" per line
  GET /latest/meta-data/network/interfaces/macs/<mac>/<field>

`all` is asked first. Its values keep the service's text forms (`"ipv6s":
"[a,b]"`, `private-ipv4s` as text), and its entries may be thin (recorded:
only `vpc-cidr-block` and `netmask` for an ENI): an ENI's entry is used only
when complete, otherwise that ENI's missing fields come from the per-field
tree. Where `all` answers 404, the tree is read instead (and `all` asked again
only every ALL_RECHECK seconds).

Request budget per fetch (the token, valid 6 h, is reused):
  - `all` serving complete entries: 1 GET, whatever the number of ENIs;
  - over the tree: the listing, plus per ENI its addresses and prefixes:
    `private-ipv4s` and `ipv4-prefixes` (2 GETs), and in a vswitch with IPv6
    `ipv6s` and `ipv6-prefixes` too (4 GETs; 5 for an ENI there without IPv6
    addresses, whose 404 on `ipv6s` is asked twice). What cannot change while
    an ENI is attached (its id, primary IP, gateway, CIDRs) is read the first
    time the ENI is seen (6 GETs more, 7 without `vswitch-cidr-block`) and
    again every STATIC_TTL seconds (so IPv6 enabled on a vswitch later is
    seen within that time). The primary's MAC is read once; of the primary,
    for its secondary IPs (primary_secondary_ips), read after the ENIs: its
    fixed fields as an ENI's, and `private-ipv4s` (and `ipv6s` in a vswitch
    with IPv6) at each fetch. A primary the service does not answer whole
    is left out (as a file's thin entry: it says nothing, and the agent keeps
    what it holds on the primary), and asked again PRIMARY_RECHECK seconds
    later; the ENIs' answer stands.
  - `all` with thin entries: 1 GET plus, per thin ENI, the tree's share.

Hardened mode: PUT /latest/api/token (X-aliyun-ecs-metadata-token-ttl-seconds)
returns a token, sent as X-aliyun-ecs-metadata-token on every GET; it is
cached, renewed before it expires and on a 401. A refused token request
(403/404/405: normal mode) is asked again at a later fetch, and at once when
a GET without a token answers 403 (the instance switched to hardened-only
mode). Anything that is not a plausible token is an unavailable answer.

ONE deadline bounds a whole fetch, retries included: a timer shuts the
connection (metadata_http.py) down when it passes, so a server dripping
headers or a body one byte at a time cannot hold a fetch past it.

Anything short of a complete, consistent answer raises `MetadataUnavailable`:
a timeout, a 5xx or 429 after bounded retries, a truncated or oversized body,
an ENI vanishing mid-fetch, a web page where a fetch starts (a captive portal
or a proxy answering every request with 200 and HTML). It is never read as
"no ENIs" or "no addresses".
Values go to the model as the service wrote them (text stripped): it reads
the text forms of lists, and refuses a value that cannot be what it claims
as invalid (exit 4, naming the source, the ENI and the field).
Standard library only (http.client): a few small GETs over one connection
need nothing more, and the import stays cheap.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from eni_agent.errors import InvalidInput, MetadataUnavailable, one_line
from eni_agent.metadata_http import Retry, ServiceConnection
from eni_agent.model import normalize_mac

DEFAULT_SERVICE = "http://100.100.100.200"
META = "/latest/meta-data"
ALL_PATH = f"{META}/all"
MAC_PATH = f"{META}/mac"
LISTING_PATH = f"{META}/network/interfaces/macs/"
TOKEN_PATH = "/latest/api/token"
TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aliyun-ecs-metadata-token"
# What can change while an ENI stays attached: re-read at every fetch.
CHANGING_FIELDS = ("private-ipv4s", "ipv6s", "ipv4-prefixes", "ipv6-prefixes")
# Fixed for the life of an attachment: read when the ENI is first seen.
STATIC_FIELDS = ("network-interface-id", "primary-ip-address", "gateway",
                 "vswitch-cidr-block", "vswitch-ipv6-cidr-block", "ipv6-gateway")
ENI_FIELDS = STATIC_FIELDS + ("netmask",) + CHANGING_FIELDS
# Of the primary, only its addresses (its secondary IPs go on the primary NIC).
PRIMARY_CHANGING_FIELDS = ("private-ipv4s", "ipv6s")
IPV6_ONLY = ("ipv6s", "ipv6-prefixes")  # assignable only in a vswitch with IPv6
# The service always serves these for an attached ENI: a 404 means the answer
# is incomplete (or the ENI is detaching), not that the ENI has no address.
REQUIRED_FIELDS = ("primary-ip-address", "private-ipv4s", "gateway")
IPV6_FIELDS = ("ipv6s", "vswitch-ipv6-cidr-block", "ipv6-gateway")
STATIC_TTL = 600.0  # seconds before the fixed fields of an ENI are read again
PRIMARY_RECHECK = 60.0  # seconds before asking again for a primary not answered whole
ALL_RECHECK = 600.0  # seconds before asking `all` again after a 404
TOKEN_RECHECK = 300.0  # seconds before asking for a token again after a refusal
# A token is printable ASCII without spaces or markup, and short.
_TOKEN_RE = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]{1,256}")


def _listed_macs(base_url: str, listing: str) -> list[str]:
    """The MACs of an ENI listing (`<mac>/` per line), as listed: their URLs
    are built from them exactly."""
    macs = []
    for line in listing.splitlines():
        mac = line.strip().rstrip("/")
        if line.strip() and normalize_mac(mac) is None:
            raise MetadataUnavailable(
                f"metadata service {base_url}: unexpected ENI listing line {line!r:.60}")
        if mac:
            macs.append(mac)
    return macs


def _missing_required(fields: dict) -> str | None:
    """What the service always serves for an attached ENI, and did not now."""
    missing = [name for name in REQUIRED_FIELDS if name not in fields]
    if "vswitch-cidr-block" not in fields and "netmask" not in fields:
        missing.append("vswitch-cidr-block")
    return f"{missing[0]} answered 404" if missing else None


def _ipv6_gap(fields: dict) -> str | None:
    """IPv6 addresses served without their CIDR or gateway: a 404 mid-answer."""
    ipv6 = [name for name in IPV6_FIELDS if name in fields]
    if ("ipv6s" in ipv6 or len(ipv6) == 1) and len(ipv6) < len(IPV6_FIELDS):
        absent = [name for name in IPV6_FIELDS[1:] if name not in ipv6]
        return f"serves {' and '.join(ipv6)} without {absent[0]}"
    return None


@dataclass
class ServiceLimits:
    connect_timeout: float = 1.0
    read_timeout: float = 2.0
    deadline: float = 10.0  # for one whole fetch, retries included
    attempts: int = 4  # per request, on 429/5xx/timeouts/connection errors
    max_body: int = 64 * 1024
    max_all_body: int = 1 << 20  # `all` holds the whole tree
    token_ttl: int = 21600


def token_wanted(now: float, refused_at: float | None) -> bool:
    """Whether to ask for a token: unless one was refused (normal mode) less
    than TOKEN_RECHECK seconds ago."""
    return refused_at is None or now - refused_at >= TOKEN_RECHECK


@dataclass
class MetadataService:
    """A client for one service address; keep it to reuse the token and what
    does not change between fetches."""

    base_url: str = DEFAULT_SERVICE
    limits: ServiceLimits = field(default_factory=ServiceLimits)
    token: str | None = None
    token_expires: float = 0.0
    token_refused_at: float | None = None  # when the service last refused a token
    all_missing_at: float | None = None  # when `all` last answered 404
    primary_mac: str | None = None  # as the service lists it; fixed for the instance
    primary_unanswered_at: float | None = None  # when the primary's entry was last incomplete
    # listed MAC -> (when read, the fields that do not change while attached)
    static: dict = field(default_factory=dict)

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
        self._http = ServiceConnection(self.base_url, self.host, self.port, self.https)

    # -- the tree ------------------------------------------------------------

    def fetch_tree(self) -> dict:
        """The metadata tree in the JSON-file layout, or MetadataUnavailable /
        InvalidInput (an `all` document that is not a JSON object)."""
        deadline = time.monotonic() + self.limits.deadline
        self._http.expired = False
        timer = threading.Timer(self.limits.deadline, self._http.expire)
        timer.daemon = True
        timer.start()
        try:
            return self._fetch(deadline)
        finally:
            timer.cancel()
            self.close()

    def _fetch(self, deadline: float) -> dict:
        doc = self._all(deadline)
        primary = doc.get("mac") if isinstance(doc.get("mac"), str) else None
        if primary is None:
            primary = self.primary_mac
        if primary is None:
            body = self._get(MAC_PATH, deadline)
            if body is None:
                raise MetadataUnavailable(f"metadata service {self.base_url}: {MAC_PATH} not found")
            _refuse_a_page(self.base_url, MAC_PATH, body)
            primary = self.primary_mac = body.strip()
        listed = _macs_of(doc)
        if listed is None:
            listed = {mac: {} for mac in self._listing(deadline)}
        primary_key = normalize_mac(primary)
        macs: dict[str, dict] = {}
        primary_listed = None
        for mac, entry in listed.items():
            entry = entry if isinstance(entry, dict) else {}
            if normalize_mac(mac) == primary_key:
                primary_listed = (mac, entry)  # read last: the ENIs come first
                continue
            if normalize_mac(mac) is None:
                macs[mac] = entry  # not a MAC: no URL to build; the model refuses it
                continue
            macs[mac] = self._eni(mac, entry, deadline)
        if primary_listed is not None:
            mac, entry = primary_listed
            fields = self._primary(mac, entry, deadline)
            if fields is not None:
                macs[mac] = fields
        for gone in set(self.static) - set(listed):
            del self.static[gone]  # detached: read it afresh if it comes back
        return {"mac": primary, "network": {"interfaces": {"macs": macs}}}

    def _primary(self, mac: str, entry: dict, deadline: float) -> dict | None:
        """The primary's entry as complete as an ENI's, for its secondary IPs;
        None where the service does not answer it whole (it then says nothing)."""
        now = time.monotonic()
        if self.primary_unanswered_at is not None \
                and now - self.primary_unanswered_at < PRIMARY_RECHECK:
            return None
        try:
            fields = self._eni(mac, entry, deadline, changing=PRIMARY_CHANGING_FIELDS)
        except MetadataUnavailable:
            self.primary_unanswered_at = now
            return None
        self.primary_unanswered_at = None
        return fields

    def _all(self, deadline: float) -> dict:
        """The `all` document, or {} where the service does not serve it."""
        now = time.monotonic()
        if self.all_missing_at is not None and now - self.all_missing_at < ALL_RECHECK:
            return {}
        body = self._get(ALL_PATH, deadline, self.limits.max_all_body)
        if body is None:
            self.all_missing_at = now
            return {}
        self.all_missing_at = None
        _refuse_a_page(self.base_url, ALL_PATH, body)
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise InvalidInput(f"invalid metadata {self.base_url}{ALL_PATH}: not valid JSON: "
                               f"{one_line(e)}") from None
        if not isinstance(doc, dict):
            raise InvalidInput(f"invalid metadata {self.base_url}{ALL_PATH}: not a JSON object")
        return doc

    def _listing(self, deadline: float) -> list[str]:
        listing = self._get(LISTING_PATH, deadline)
        if listing is None:
            raise MetadataUnavailable(f"metadata service {self.base_url}: no ENI listing")
        _refuse_a_page(self.base_url, LISTING_PATH, body=listing)
        return _listed_macs(self.base_url, listing)

    def _eni(self, mac: str, entry: dict, deadline: float,
             changing: tuple[str, ...] = CHANGING_FIELDS) -> dict:
        fields = {name: _value(value) for name, value in entry.items()}
        if _complete(fields):
            return fields
        base = f"{META}/network/interfaces/macs/{mac}/"
        read_at, static = self.static.get(mac, (float("-inf"), None))
        if static is None or time.monotonic() - read_at > STATIC_TTL:
            static = {}
            for name in STATIC_FIELDS:
                if name not in fields:
                    static[name] = self._get(base + name, deadline)
            if "vswitch-cidr-block" not in fields and static.get("vswitch-cidr-block") is None \
                    and "netmask" not in fields:
                static["netmask"] = self._get(base + "netmask", deadline)
            self.static[mac] = (time.monotonic(), static)
        for name, value in static.items():
            if value is not None and name not in fields:
                fields[name] = _value(value)
        for name in changing:
            if name in IPV6_ONLY and not ("vswitch-ipv6-cidr-block" in fields
                                          or "ipv6-gateway" in fields):
                continue  # no IPv6 in its vswitch: no IPv6 address or prefix to assign
            if name not in fields:
                value = self._get(base + name, deadline)
                if value is not None:
                    fields[name] = _value(value)
        gap = _missing_required(fields)
        if gap is None and "ipv6s" not in entry \
                and [n for n in IPV6_FIELDS if n in fields] == list(IPV6_FIELDS[1:]):
            # By the service's format this is "no IPv6 address on this ENI", and
            # it would remove the ENI's IPv6: ask once more, so a one-request 404
            # cannot. (An IPv4-only ENI in an IPv6 vswitch always looks like this:
            # one extra small GET, no waiting.)
            again = self._get(base + "ipv6s", deadline)
            if again is not None:
                fields["ipv6s"] = _value(again)
        gap = gap or _ipv6_gap(fields)
        if gap:
            # Listed a moment ago, incomplete now: a detach raced the fetch, or
            # the service is having a moment. Either way: not usable.
            self.static.pop(mac, None)
            raise MetadataUnavailable(f"metadata service {self.base_url}: ENI {mac} {gap}; "
                                      "the answer is incomplete")
        return fields

    # -- HTTP ------------------------------------------------------------------

    def _get(self, path: str, deadline: float, max_body: int | None = None) -> str | None:
        """The body of a GET, None for 404; retries transient failures."""
        delay = 0.1
        last = "no attempt"
        attempt = 0
        token_asked = False
        for attempt in range(self.limits.attempts):
            if time.monotonic() >= deadline or self._http.expired:
                last = (f"no complete answer within the fetch's {self.limits.deadline:g}s "
                        f"deadline (last: {last})")
                break
            try:
                headers = {}
                token = self._token(deadline)
                if token:
                    headers[TOKEN_HEADER] = token
                status, body = self._request("GET", path, headers, deadline,
                                             max_body or self.limits.max_body)
                if status == 200:
                    return body
                if status == 404:
                    return None
                if status == 401 and token:
                    self.token = None  # expired or revoked: fetch a new one
                    raise Retry("401 Unauthorized")
                if status == 403 and not token and not token_asked:
                    # Switched to hardened-only mode since a token was refused?
                    token_asked = True
                    self.token_refused_at = None
                    if self._token(deadline):
                        continue
                if status == 429 or status >= 500:
                    raise Retry(f"HTTP {status}")
                raise MetadataUnavailable(f"metadata service {self.base_url}{path}: HTTP {status}")
            except Retry as e:
                last = str(e)
                self.close()
            if attempt + 1 < self.limits.attempts:
                pause = min(delay * random.uniform(0.5, 1.5), max(0.0, deadline - time.monotonic()))
                time.sleep(pause)
                delay *= 2
        raise MetadataUnavailable(f"metadata service {self.base_url}{path}: {last} "
                                  f"(gave up after {attempt + 1} attempt(s))")

    def _token(self, deadline: float) -> str | None:
        now = time.monotonic()
        if self.token and now < self.token_expires:
            return self.token
        if not token_wanted(now, self.token_refused_at):
            return None  # normal mode: GETs need no token
        ttl = self.limits.token_ttl
        status, body = self._request("PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: str(ttl)}, deadline,
                                     self.limits.max_body)
        if status == 200:
            _refuse_a_page(self.base_url, TOKEN_PATH, body)
            token = body.strip()
            if not _TOKEN_RE.fullmatch(token):
                raise MetadataUnavailable(
                    f"metadata service {self.base_url}{TOKEN_PATH}: the answer is not a token "
                    f"({len(body)} bytes starting {json.dumps(body[:20])})")
            self.token = token
            self.token_expires = now + ttl * 0.8  # renew well before it expires
            self.token_refused_at = None
            return self.token
        if status in (403, 404, 405):
            self.token_refused_at = now  # normal (non-hardened) mode: ask again later
            return None
        if status == 429 or status >= 500:
            raise Retry(f"token: HTTP {status}")
        raise MetadataUnavailable(f"metadata service {self.base_url}: token request answered "
                                  f"HTTP {status}")

    def _request(self, method: str, path: str, headers: dict, deadline: float,
                 max_body: int) -> tuple[int, str]:
        return self._http.request(method, path, headers, deadline, max_body,
                                  connect_timeout=self.limits.connect_timeout,
                                  read_timeout=self.limits.read_timeout)

    def close(self) -> None:
        self._http.close()


def _refuse_a_page(base_url: str, path: str, body: str) -> None:
    """A captive portal or a proxy answers every request with its web page:
    the service is not reachable (try again later), not wrong. Asked of the
    answers every fetch starts with (the token, `all`, the MAC, the listing);
    one ENI's field that is markup is that ENI's invalid value."""
    if _is_markup(body):
        raise MetadataUnavailable(
            f"metadata service {base_url}{path}: answered a web page, not metadata "
            f"({len(body)} bytes starting {json.dumps(body.strip()[:20])}): a captive "
            "portal or a proxy in the way?")


def _is_markup(body: str) -> bool:
    """An HTML or XML page. No metadata answer starts with `<`: a value is an
    address, a MAC, an id or a CIDR, a listing names MACs, `all` is JSON."""
    return body.lstrip("\ufeff \t\r\n").startswith("<")


def _macs_of(doc: dict) -> dict | None:
    """`network.interfaces.macs` of an `all` document, if it has one."""
    node: object = doc
    for key in ("network", "interfaces", "macs"):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, dict) else None


def _complete(fields: dict) -> bool:
    """An `all` entry holding everything an ENI needs, IPv6 consistent."""
    if any(name not in fields for name in REQUIRED_FIELDS):
        return False
    if "vswitch-cidr-block" not in fields and "netmask" not in fields:
        return False
    return "ipv6s" not in fields or all(name in fields for name in IPV6_FIELDS)


def _value(value: object) -> object:
    """A field as the model reads it: the service's text stripped. Its text
    forms of lists (`private-ipv4s` JSON text, `ipv6s` as `[a,b]`) are the
    model's to read, as in a file saved from `meta-data/all`; a value that is
    none of them is refused there as invalid, naming the ENI and the field."""
    return value.strip() if isinstance(value, str) else value
