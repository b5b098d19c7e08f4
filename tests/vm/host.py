#!/usr/bin/env python3
"""The host half of the eni-agent VM test: network, qemu, hot-add, probes, verdict.

    client ns                 router ns (ip_forward, strict rp_filter)         the VM (qemu, TCG)
    eth0 192.168.100.2 ------ rc 192.168.100.1
                              tapN  <gateway>.253 noprefixroute  ==========  virtio-net, MAC of ENI N
                              <each private IP>/32 dev tapN

qemu runs inside the router namespace (it opens its taps by name there). Like a
VPC, the router routes each private IP of an ENI to that ENI's tap only, so a
reply leaving the guest through another NIC is dropped by rp_filter: a TCP
handshake from the client namespace to an ENI address succeeds only if the
guest answers through the right NIC.

The guest half (guest/eni-vm-test.py) reports on its second serial port, which
qemu writes to a file here; this script drives the run through QMP (qemu's
machine-readable monitor) and judges. Usage (as root; run.sh builds the image):

    python3 tests/vm/host.py IMAGE_DIR WORK_DIR
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import ipaddress
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from tests.harness.commands import ip, netstat_counter, run, set_sysctls  # noqa: E402
from tests.harness.namespaces import in_netns  # noqa: E402

GUEST = HERE / "guest"
CLIENT_IP, ROUTER_CLIENT_IP = "192.168.100.2", "192.168.100.1"
PROTOCOL, TABLE_BASE, RULE_PRIORITY = "eni-agent", 10000, 10000
HOTPLUG_LIMIT = 15.0  # seconds from device_add to a TCP handshake with the new ENI
PROBE_TIMEOUT = 3.0
PR_SET_PDEATHSIG = 1


class TestFailure(Exception):
    pass


@dataclasses.dataclass
class Nic:
    mac: str
    eni_id: str
    ips: list[str]
    gateway: str
    prefixlen: int
    tap: str
    hot: bool
    primary: bool

    @property
    def netdev(self) -> str:
        return "net" + self.mac.replace(":", "")[-4:]


def load_nics(tag: str) -> tuple[list[Nic], dict]:
    metadata = json.loads((GUEST / "metadata.json").read_text())
    plan = json.loads((GUEST / "plan.json").read_text())
    macs = metadata["network"]["interfaces"]["macs"]
    order = [metadata["mac"]] + sorted(m for m in macs if m != metadata["mac"])
    nics = []
    for i, mac in enumerate(order):
        m = macs[mac]
        nics.append(Nic(mac=mac, eni_id=m["network-interface-id"], ips=list(m["private-ipv4s"]),
                        gateway=m["gateway"],
                        prefixlen=ipaddress.ip_network(m["vswitch-cidr-block"]).prefixlen,
                        tap=f"evm{tag}t{i}", hot=mac in plan["hotplug_macs"],
                        primary=mac == plan["primary_mac"]))
    return nics, plan


# -- the host side of the network ----------------------------------------------

class Network:
    """The router and client namespaces, and a tap per guest NIC in the router."""

    def __init__(self, tag: str, nics: list[Nic]):
        self.router, self.client = f"eni-vm-{tag}-router", f"eni-vm-{tag}-client"
        self.nics = nics

    def create(self) -> None:
        for ns in (self.router, self.client):
            run(["ip", "netns", "add", ns])
            ip(ns, "link", "set", "lo", "up")
        set_sysctls(self.router, {"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.rp_filter": 1,
                                  "net.ipv4.conf.default.rp_filter": 1})
        ip(self.router, "link", "add", "rc", "type", "veth", "peer", "name", "eth0",
           "netns", self.client)
        ip(self.router, "addr", "add", f"{ROUTER_CLIENT_IP}/24", "dev", "rc")
        ip(self.router, "link", "set", "rc", "up")
        ip(self.client, "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        ip(self.client, "link", "set", "eth0", "up")
        ip(self.client, "route", "add", "default", "via", ROUTER_CLIENT_IP)
        # Every tap exists from the start (the ENI exists in the VPC before it is
        # attached); the guest sees a NIC only once qemu has a device on it.
        for nic in self.nics:
            ip(self.router, "tuntap", "add", "dev", nic.tap, "mode", "tap")
            set_sysctls(self.router, {f"net.ipv4.conf.{nic.tap}.rp_filter": 1})
            ip(self.router, "addr", "add", f"{nic.gateway}/{nic.prefixlen}", "dev", nic.tap,
               "noprefixroute")
            ip(self.router, "link", "set", nic.tap, "up")
            for addr in nic.ips:
                ip(self.router, "route", "add", f"{addr}/32", "dev", nic.tap, "src", nic.gateway)

    def rp_filter_drops(self) -> int:
        return netstat_counter(self.router, "IPReversePathFilter")

    def destroy(self) -> None:
        for ns in (self.client, self.router):
            run(["ip", "netns", "delete", ns], check=False)


# -- qemu and QMP ---------------------------------------------------------------

def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Vm:
    # A variant (failover.py) overrides these and the methods below `start`.
    name, smp = "eni-vm", 2
    reboot = False  # a guest reboot ends qemu (-no-reboot) unless a variant reboots it

    def __init__(self, image_dir: Path, work: Path, net: Network):
        self.image_dir, self.work, self.net = image_dir, work, net
        self.qmp_path = work / "qmp.sock"
        self.report_path = work / "report.txt"
        self.console_path = work / "console.txt"
        self.proc: subprocess.Popen | None = None
        self.qmp: Qmp | None = None

    def start(self) -> None:
        for p in (self.qmp_path, self.report_path, self.console_path):
            p.unlink(missing_ok=True)
        self.report_path.touch()
        argv = ["ip", "netns", "exec", self.net.router, "nice", "-n", "10",
                "qemu-system-x86_64", "-name", self.name, "-accel", "tcg,thread=multi",
                "-cpu", "max", "-smp", str(self.smp), "-m", "1024", "-machine", "q35",
                "-nodefaults", *([] if self.reboot else ["-no-reboot"]), "-display", "none",
                "-kernel", str(self.image_dir / "vmlinuz"),
                "-initrd", str(self.image_dir / "initrd.img"),
                "-append", "root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=1"
                + self.kernel_args(),
                "-drive", f"file={self.image_dir / 'vm.img'},format=raw,if=virtio,cache=unsafe",
                "-serial", f"file:{self.console_path}", "-serial", f"file:{self.report_path}",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-pidfile", str(self.work / "qemu.pid"),
                # a PCIe root port to hot-add the ENI into (q35's root bus has no hotplug)
                "-device", "pcie-root-port,id=hotplug0,chassis=1,slot=1"]
        for nic in self.boot_nics():
            argv += ["-netdev", f"tap,id={nic.netdev},ifname={nic.tap},script=no,downscript=no",
                     "-device", f"virtio-net-pci,netdev={nic.netdev},mac={nic.mac}"]
        argv += self.extra_args()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=open(self.work / "qemu.log", "wb"),
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 30
        while not self.qmp_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise TestFailure(f"qemu did not start: {(self.work / 'qemu.log').read_text()}")
            time.sleep(0.05)
        self.qmp = Qmp(self.qmp_path)

    def boot_nics(self) -> list[Nic]:
        return [nic for nic in self.net.nics if not nic.hot]

    def kernel_args(self) -> str:
        return ""

    def extra_args(self) -> list[str]:
        return []

    def hot_add(self, nic: Nic) -> None:
        self.qmp.execute("netdev_add", type="tap", id=nic.netdev, ifname=nic.tap,
                         script="no", downscript="no")
        self.qmp.execute("device_add", driver="virtio-net-pci", netdev=nic.netdev, mac=nic.mac,
                         id=f"dev-{nic.netdev}", bus="hotplug0")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def power_off(self) -> None:
        """The guest powers itself off after DONE; otherwise QMP `quit`."""
        if self.alive():
            try:
                self.qmp.execute("quit")
            except (OSError, TestFailure):
                pass
            self.wait_exit(10)

    def kill(self) -> None:
        if self.qmp:
            self.qmp.close()
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Qmp:
    def __init__(self, path: Path):
        # qemu creates the socket file before it listens on it: on a loaded
        # machine a connect can fall in between.
        deadline = time.monotonic() + 10
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(30)
            try:
                self.sock.connect(str(path))
                break
            except ConnectionRefusedError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rwb")
        self._read()  # the greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        while True:
            line = self.file.readline()
            if not line:
                raise TestFailure("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def execute(self, command: str, **arguments) -> object:
        msg = {"execute": command, **({"arguments": arguments} if arguments else {})}
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        reply = self._read()
        if "error" in reply:
            raise TestFailure(f"QMP {command}: {reply['error']}")
        return reply.get("return")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Report:
    """The guest's report (its /dev/ttyS1), read as it grows: `TAG payload` lines."""

    def __init__(self, vm: Vm):
        self.vm = vm
        self.file = open(vm.report_path, "rb")
        self.buffer = b""
        self.lines: list[tuple[float, str, str]] = []  # (host monotonic, tag, payload)

    def _pump(self) -> None:
        self.buffer += self.file.read()
        *complete, self.buffer = self.buffer.split(b"\n")
        for raw in complete:
            text = raw.decode("utf-8", "replace").strip("\r\x00 ")
            if text:
                tag, _, payload = text.partition(" ")
                self.lines.append((time.monotonic(), tag, payload))

    def wait_for(self, tag: str, timeout: float) -> tuple[float, str]:
        """(host time it arrived, payload) of the first `tag` line; DONE ends other waits."""
        deadline = time.monotonic() + timeout
        while True:
            self._pump()
            for at, t, payload in self.lines:
                if t == tag:
                    return at, payload
            if tag != "DONE" and any(t == "DONE" for _, t, _ in self.lines):
                raise TestFailure(f"the guest finished without reporting {tag}")
            if not self.vm.alive():
                raise TestFailure(f"qemu exited before the guest reported {tag}")
            if time.monotonic() > deadline:
                raise TestFailure(f"no {tag} from the guest within {timeout:.0f} s")
            time.sleep(0.05)

    def json(self, tag: str) -> dict:
        return json.loads(self.wait_for(tag, 0)[1])

    def all(self, tag: str) -> list[str]:
        self._pump()
        return [payload for _, t, payload in self.lines if t == tag]


# -- probes from the client namespace ------------------------------------------

class Prober:
    """TCP handshakes (plus a ping/pong exchange) from the client namespace."""

    def __init__(self, net: Network, port: int):
        self.net, self.port = net, port

    def socket(self) -> socket.socket:
        return in_netns(self.net.client, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))

    def probe(self, addr: str, timeout: float = PROBE_TIMEOUT) -> str | None:
        """None if `addr` answered "pong <addr>"; else why not."""
        sock = self.socket()
        try:
            sock.settimeout(timeout)
            sock.connect((addr, self.port))
            sock.sendall(b"ping\n")
            answer = sock.makefile("rb").readline(64).decode(errors="replace").strip()
            return None if answer == f"pong {addr}" else f"answered {answer!r}"
        except OSError as e:
            return f"{type(e).__name__}: {e}"
        finally:
            sock.close()

    def first_handshake(self, addr: str, timeout: float, interval: float = 0.05) -> float | None:
        """Start a handshake with `addr` every `interval` s, several in flight;
        the monotonic time the first one completed (then checked with a probe)."""
        sel = selectors.DefaultSelector()
        start = next_try = time.monotonic()
        try:
            while time.monotonic() < start + timeout:
                if time.monotonic() >= next_try:
                    sock = self.socket()
                    sock.setblocking(False)
                    sock.connect_ex((addr, self.port))
                    sel.register(sock, selectors.EVENT_WRITE, time.monotonic())
                    next_try += interval
                for key, _ in sel.select(max(0.0, next_try - time.monotonic())):
                    sel.unregister(key.fileobj)
                    ok = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                    key.fileobj.close()
                    if ok:
                        done = time.monotonic()
                        return done if self.probe(addr) is None else None
                for key in list(sel.get_map().values()):  # give up on stale attempts
                    if time.monotonic() - key.data > 2.0:
                        sel.unregister(key.fileobj)
                        key.fileobj.close()
            return None
        finally:
            for key in list(sel.get_map().values()):
                key.fileobj.close()
            sel.close()


class ContinuousProbe(threading.Thread):
    """Probe the targets round-robin, one every `interval` s, until stopped."""

    def __init__(self, prober: Prober, targets: list[str], interval: float = 0.05):
        super().__init__(name="continuous-probe", daemon=True)
        self.prober, self.interval = prober, interval
        self.targets = list(targets)
        self.results: list[tuple[float, str, str | None]] = []  # (monotonic, addr, failure)
        self.lock = threading.Lock()
        self.halt = threading.Event()

    def add(self, addr: str) -> None:
        with self.lock:
            self.targets.append(addr)

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            with self.lock:
                addr = self.targets[i % len(self.targets)]
            i += 1
            failure = self.prober.probe(addr)
            self.results.append((time.monotonic(), addr, failure))
            self.halt.wait(self.interval)

    def stop(self) -> None:
        self.halt.set()
        self.join()


# -- judging the guest's state ----------------------------------------------------

def check_state(state: dict, nics: list[Nic], when: str) -> list[str]:
    """What is wrong in a kernel state the guest reported, for the NICs it should have."""
    problems = []
    links = {l["address"].lower(): l for l in state["links"]}
    ours = [r for r in state["rules"] if r.get("protocol") == PROTOCOL]
    for nic in nics:
        link = links.get(nic.mac)
        if link is None:
            problems.append(f"{when}: no link with MAC {nic.mac} ({nic.eni_id})")
            continue
        name = link["ifname"]
        have = {(a["local"], a["prefixlen"]) for a in state["addrs"] if a["ifname"] == name}
        for addr in nic.ips:
            if (addr, nic.prefixlen) not in have:
                problems.append(f"{when}: {name} ({nic.eni_id}) lacks {addr}/{nic.prefixlen}")
        if nic.primary:
            default = [r for r in state["routes"] if r.get("dst") == "default"
                       and r.get("table", "main") == "main"]
            if not any(r.get("gateway") == nic.gateway and r.get("dev") == name for r in default):
                problems.append(f"{when}: the main table's default route is not via "
                                f"{nic.gateway} dev {name}: {default}")
            if any(r.get("src") in nic.ips for r in ours):
                problems.append(f"{when}: eni-agent put a rule on the primary NIC")
            continue
        table = TABLE_BASE + link["ifindex"]
        for addr in nic.ips:
            if not any(r.get("src") == addr and r.get("table") == str(table)
                       and r.get("priority") == RULE_PRIORITY for r in ours):
                problems.append(f"{when}: no rule {RULE_PRIORITY}: from {addr} lookup {table}")
        routes = [r for r in state["routes"] if r.get("table") == str(table)]
        if not any(r.get("dst") == "default" and r.get("gateway") == nic.gateway
                   and r.get("dev") == name for r in routes):
            problems.append(f"{when}: table {table} has no default via {nic.gateway} dev {name}")
        cidr = str(ipaddress.ip_network(f"{nic.ips[0]}/{nic.prefixlen}", strict=False))
        if not any(r.get("dst") == cidr and r.get("dev") == name for r in routes):
            problems.append(f"{when}: table {table} has no {cidr} dev {name}")
        # In main, the ENI's vswitch may only be the agent's own route (subnet_routes, on by
        # default: connections the host opens to it leave by the ENI, from its address); one
        # a network manager or DHCP client put there would send replies astray.
        in_main = [r for r in state["routes"]
                   if r.get("dst") == cidr and r.get("table", "main") == "main"]
        if any(not (r.get("protocol") == PROTOCOL and r.get("dev") == name
                    and r.get("prefsrc") == nic.ips[0]) for r in in_main):
            problems.append(f"{when}: the ENI subnet {cidr} is in the main table, not as "
                            f"eni-agent's dev {name} src {nic.ips[0]}: {in_main}")
    return problems


def exposure_score(line: str) -> float | None:
    # "→ Overall exposure level for eni-agent.service: 1.9 OK 🙂"
    try:
        return float(line.split(":", 1)[1].split()[0])
    except (IndexError, ValueError):
        return None


# -- the test ----------------------------------------------------------------------

class VmTest:
    def __init__(self, image_dir: Path, work: Path, tag: str):
        self.nics, self.plan = load_nics(tag)
        self.net = Network(tag, self.nics)
        self.vm = Vm(image_dir, work, self.net)
        self.work = work
        self.problems: list[str] = []
        self.figures: dict[str, object] = {}
        self.report: Report | None = None

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)
            print(f"   FAIL {problem}", flush=True)

    def step(self, text: str) -> None:
        print(f"-- [{time.monotonic() - self.t0:6.1f}s] {text}", flush=True)

    def run(self) -> int:
        self.t0 = time.monotonic()
        try:
            self.net.create()
            self.vm.start()
            self.report = Report(self.vm)
            self.scenario()
        except TestFailure as e:
            self.expect(False, str(e))
        finally:
            self.finish()
        return 1 if self.problems else 0

    def scenario(self) -> None:
        boot_nics = [n for n in self.nics if not n.hot]
        hot_nics = [n for n in self.nics if n.hot]
        prober = Prober(self.net, self.plan["listen_port"])
        self.step(f"qemu started in {self.net.router}; waiting for the guest (TCG: a minute or two)")
        drops_at_start = self.net.rp_filter_drops()

        at_ready, _ = self.report.wait_for("READY-STATE", 420)
        self.report.wait_for("BOOT-DONE", 120)
        ready_state = self.report.json("READY-STATE")
        agent = self.report.json("AGENT")
        self.figures["host: qemu start to the guest's first report (s)"] = round(at_ready - self.t0, 1)
        ready_us = int(agent.get("ActiveEnterTimestampMonotonic", 0))
        start_us = int(agent.get("ExecMainStartTimestampMonotonic", 0))
        self.figures["guest: kernel boot to READY=1 (s)"] = round(ready_us / 1e6, 2)
        self.figures["guest: eni-agent exec to READY=1 (s)"] = round((ready_us - start_us) / 1e6, 2)
        self.step(f"guest reported READY: {self.figures}")
        self.expect(agent.get("is_active") == "active",
                    f"eni-agent is {agent.get('is_active')} after boot, not active")
        self.expect(agent.get("StatusText", "").startswith("converged"),
                    f"eni-agent's status text after READY: {agent.get('StatusText')!r}")
        for problem in check_state(ready_state, boot_nics, "at READY=1"):
            self.expect(False, problem)
        self.check_status(boot_nics, hot_nics)
        self.step(f"guest units active at (s): {self.report.all('UNIT-TIMES')[0]}")
        exposure = self.report.all("EXPOSURE")[0]
        self.figures["systemd-analyze security exposure"] = exposure_score(exposure)
        self.step(f"exposure: {exposure}")
        self.expect(exposure_score(exposure) is not None, f"no exposure score: {exposure}")

        self.step("probing every boot-time address from the client namespace")
        boot_addrs = [a for n in boot_nics for a in n.ips]
        for addr in boot_addrs:
            failure = prober.probe(addr)
            self.expect(failure is None, f"TCP to {addr} after boot failed: {failure}")
        continuous = ContinuousProbe(prober, boot_addrs)
        continuous.start()
        try:
            for nic in hot_nics:
                self.hot_add(prober, continuous, nic)
            self.report.wait_for("HOTPLUG-STATE", 60)
            for problem in check_state(self.report.json("HOTPLUG-STATE"), self.nics,
                                       "after the hot-add"):
                self.expect(False, problem)
            self.step("guest: systemctl restart eni-agent, then stop (probing continuously)")
            self.report.wait_for("RESTARTED", 240)
            restarted = self.report.json("RESTARTED")
            self.figures["systemctl restart eni-agent (s)"] = restarted["seconds"]
            self.expect(restarted["agent"]["is_active"] == "active", "not active after restart")
            self.expect(restarted["agent"]["MainPID"] != agent["MainPID"],
                        "MainPID unchanged by the restart")
            for problem in check_state(restarted["state"], self.nics, "after restart"):
                self.expect(False, problem)
            self.report.wait_for("STOPPED", 120)
            stopped = self.report.json("STOPPED")
            self.figures["systemctl stop eni-agent (s)"] = stopped["seconds"]
            for problem in check_state(stopped["state"], self.nics, "after stop"):
                self.expect(False, problem)
            self.report.wait_for("PROBE-END", 60)
        finally:
            continuous.stop()
        self.judge_probes(continuous)
        drops = self.net.rp_filter_drops() - drops_at_start
        self.expect(drops == 0, f"the router dropped {drops} packets by rp_filter (replies "
                    "through the wrong NIC) while the agent was in charge")

        self.control(prober)
        _, verdict = self.report.wait_for("DONE", 120)
        self.expect(verdict == "ok", f"the guest's own steps failed (DONE {verdict})")

    def check_status(self, boot_nics: list[Nic], hot_nics: list[Nic]) -> None:
        status = self.report.json("STATUS")
        self.expect(status["rc"] == 0, f"eni-agent status --json: rc {status['rc']} "
                    f"{status['stderr']}")
        try:
            doc = json.loads(status["stdout"])
        except ValueError:
            self.expect(False, f"eni-agent status --json printed no JSON: {status['stdout'][:300]}")
            return
        states = {e["mac"]: e["state"] for e in doc.get("enis", [])}
        for nic in boot_nics:
            if not nic.primary:
                self.expect(states.get(nic.mac) == "in-sync",
                            f"status: {nic.eni_id} is {states.get(nic.mac)}, not in-sync")
        for nic in hot_nics:
            self.expect(states.get(nic.mac) == "pending",
                        f"status: {nic.eni_id} (not attached yet) is {states.get(nic.mac)}, "
                        "not pending")

    def hot_add(self, prober: Prober, continuous: ContinuousProbe, nic: Nic) -> None:
        self.step(f"hot-adding {nic.mac} ({nic.eni_id}) through QMP: netdev_add + device_add")
        self.vm.hot_add(nic)
        added = time.monotonic()
        reached = prober.first_handshake(nic.ips[0], timeout=60)
        if reached is None:
            self.expect(False, f"hot-added {nic.eni_id} ({nic.ips[0]}) unreachable for 60 s")
            return
        took = reached - added
        self.figures[f"hot-add to first TCP handshake with {nic.ips[0]} (s)"] = round(took, 2)
        self.step(f"{nic.ips[0]} answered {took:.2f} s after device_add")
        self.expect(took <= HOTPLUG_LIMIT, f"hot-added {nic.eni_id} took {took:.1f} s to answer "
                    f"(limit {HOTPLUG_LIMIT:.0f} s)")
        for addr in nic.ips:
            failure = prober.probe(addr)
            self.expect(failure is None, f"TCP to hot-added {addr} failed: {failure}")
            continuous.add(addr)
        self.report.wait_for("HOTPLUG-TIMELINE", 60)
        timeline = self.report.json("HOTPLUG-TIMELINE")
        self.step(f"guest timeline: {json.dumps(timeline)}")
        pci, renamed, done = (timeline["pci_device"], timeline["renamed"],
                              timeline["agent_last_change"])
        if pci is not None and done is not None:
            self.figures["guest: PCI device to eni-agent's log of its changes (s, journal)"] = \
                round(done - pci, 2)
        if pci is not None and renamed is not None:
            self.figures["guest: PCI device to udev's rename (s, journal)"] = round(renamed - pci, 2)
        # udev must still be able to name the NIC: on Linux < 6.2 a link that is
        # already UP cannot be renamed (EBUSY), so an agent that sets it up
        # before udev is done with it leaves it as ethN.
        self.expect(renamed is not None and not re.fullmatch(r"eth\d+", timeline["ifname"])
                    and not timeline["udev_errors"],
                    f"udev could not rename the hot-added NIC, it is {timeline['ifname']}: "
                    f"eni-agent brought it up before udev had named it "
                    f"(udev: {timeline['udev_errors']})")

    def judge_probes(self, continuous: ContinuousProbe) -> None:
        results = continuous.results
        failures = [(t, a, f) for t, a, f in results if f is not None]
        marks = {tag: self.report.wait_for(tag, 0)[0]
                 for tag in ("RESTARTING", "RESTARTED", "STOPPING", "STOPPED")}
        during = lambda a, b: sum(1 for t, _, f in results if marks[a] <= t <= marks[b])  # noqa
        self.figures["continuous probes (all / during restart / during stop)"] = \
            f"{len(results)} / {during('RESTARTING', 'RESTARTED')} / {during('STOPPING', 'STOPPED')}"
        self.step(f"continuous probes: {len(results)}, failed: {len(failures)}")
        for t, addr, failure in failures[:20]:
            self.expect(False, f"probe of {addr} at +{t - self.t0:.1f}s failed: {failure}")
        self.expect(len(results) >= 20, f"only {len(results)} continuous probes ran")

    def control(self, prober: Prober) -> None:
        """The harness catches a reply through the wrong NIC: one rule removed by hand."""
        addr = self.plan["control_ip"]
        self.report.wait_for("CONTROL-BROKEN", 60)
        before = self.net.rp_filter_drops()
        failure = prober.probe(addr, timeout=2)
        dropped = self.net.rp_filter_drops() - before
        self.step(f"control: {addr} without its rule: {failure or 'answered'}; "
                  f"router rp_filter drops +{dropped}")
        self.expect(failure is not None, f"control: {addr} answered without its rule: the "
                    "router does not catch replies through the wrong NIC")
        self.expect(dropped > 0, "control: the router's rp_filter dropped nothing")
        self.report.wait_for("CONTROL-REPAIRED", 120)
        failure = prober.probe(addr)
        self.expect(failure is None, f"control: {addr} not repaired by the agent: {failure}")

    def finish(self) -> None:
        if self.vm.alive():
            done = False
            if self.report is not None:
                try:
                    self.report.wait_for("DONE", 30)
                    done = True
                except TestFailure:
                    pass
            start = time.monotonic()
            if done and self.vm.wait_exit(60):
                self.step(f"the guest powered itself off in {time.monotonic() - start:.1f} s")
            else:
                self.step("stopping qemu (QMP quit)")
                self.vm.power_off()
        self.vm.kill()
        self.net.destroy()
        if self.report is not None:
            for failure in self.report.all("FAIL"):
                self.expect(False, f"guest: {failure}")
        self.figures["host: whole VM run (s)"] = round(time.monotonic() - self.t0, 1)
        (self.work / "figures.json").write_text(json.dumps(self.figures, indent=2) + "\n")
        print("\n== figures", flush=True)
        for key, value in self.figures.items():
            print(f"   {key}: {value}")
        if self.problems:
            self.dump_diagnostics()
            print(f"\n== VM TEST FAILED: {len(self.problems)} problem(s)")
            for problem in self.problems:
                print(f"   - {problem}")
        else:
            print("\n== VM TEST PASSED")

    def dump_diagnostics(self) -> None:
        journal = self.report.all("JOURNAL") if self.report else []
        print("\n== journalctl -u eni-agent (from the guest)")
        print("\n".join(journal) if journal else "   (none: the guest did not get that far; "
              "see the console below)")
        console = self.vm.console_path
        if console.exists():
            lines = console.read_text(errors="replace").splitlines()
            print(f"\n== the guest's console, last 60 lines ({console})")
            print("\n".join(lines[-60:]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image_dir", type=Path, help="vm.img, vmlinuz, initrd.img (build-image.sh)")
    parser.add_argument("work_dir", type=Path, help="qmp socket, report, console, figures")
    parser.add_argument("--tag", default=str(os.getpid()),
                        help="names the namespaces eni-vm-TAG-{router,client} and the taps")
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    # SIGTERM (a CI timeout) runs the same cleanup as a failure.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt("SIGTERM")))
    return VmTest(args.image_dir.resolve(), args.work_dir.resolve(), args.tag).run()


if __name__ == "__main__":
    sys.exit(main())
