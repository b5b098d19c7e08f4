#!/usr/bin/python3
"""The in-guest half of the VM test (eni-vm-test.service, After=eni-agent.service).

It gathers facts and performs the guest-side steps on a fixed schedule; the
host (tests/vm/basic/host.py) judges. One line per fact on /dev/ttyS1, which lands
in a file on the host: `TAG <single-line payload>`. The schedule:

  READY-STATE   kernel state when this unit started, i.e. right after READY=1
  AGENT, STATUS, EXPOSURE, BOOT-DONE
                (the host now probes every address, then hot-adds a NIC)
  HOTPLUG-SEEN  the hot-added NIC is configured (addresses + rules), and
  HOTPLUG-TIMELINE  when the kernel saw the device, udev renamed it and
                eni-agent logged its changes (guest monotonic seconds)
  RESTARTING / RESTARTED, STOPPING / STOPPED, PROBE-END
                (the host probes continuously from the hot-add to PROBE-END)
  CONTROL-BROKEN  a rule removed by hand while the agent is stopped: the
                host must now see that address fail (strict rp_filter)
  CONTROL-REPAIRED  the agent, started again, put it back
  JOURNAL lines (journalctl -u eni-agent), DONE, then it powers the guest off
Failures of guest-side steps are reported as `FAIL <what>`; the host fails
the test on any of them.

Other scenarios read the same facts through the command channel (tests/vm/lab/state.py):
`eni-vm-test.py state` prints kernel_state(), `eni-vm-test.py timeline MAC IFNAME
SINCE` hotplug_timeline(), as JSON.
"""

import json
import os
import subprocess
import sys
import termios
import time
import traceback
import tty

PLAN = "/etc/eni-vm/plan.json"
METADATA = "/etc/eni-agent/metadata.json"
REPORT = "/dev/ttyS1"


class Report:
    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
        tty.setraw(self.fd)  # no \n -> \r\n, no echo
        termios.tcflush(self.fd, termios.TCIOFLUSH)
        self.failed = False

    def line(self, tag: str, payload="") -> None:
        if not isinstance(payload, str):
            payload = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        text = f"{tag} {payload}".rstrip().replace("\n", " ") + "\n"
        os.write(self.fd, text.encode("utf-8", "replace"))
        print(text, end="", flush=True)

    def fail(self, what: str) -> None:
        self.failed = True
        self.line("FAIL", what)


def sh(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def ip_json(*args: str):
    out = sh("ip", "-j", *args).stdout.strip()
    return json.loads(out) if out else []


def kernel_state() -> dict:
    """Links (name, index, MAC, state), IPv4 addresses, rules and routes of all tables."""
    links = [{"ifname": l["ifname"], "ifindex": l["ifindex"], "address": l.get("address", ""),
              "operstate": l.get("operstate", "")} for l in ip_json("link", "show")]
    addrs = [{"ifname": a["ifname"], "local": i["local"], "prefixlen": i["prefixlen"],
              "protocol": i.get("protocol")}
             for a in ip_json("-4", "addr", "show") for i in a.get("addr_info", [])]
    return {"monotonic": round(time.monotonic(), 3), "links": links, "addrs": addrs,
            "rules": ip_json("-4", "rule", "show"),
            "routes": ip_json("-4", "route", "show", "table", "all")}


def unit_props(unit: str, *props: str) -> dict:
    out = sh("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def agent_facts() -> dict:
    props = unit_props("eni-agent.service", "ActiveState", "SubState", "MainPID", "NRestarts",
                       "StatusText", "ExecMainStartTimestampMonotonic",
                       "ActiveEnterTimestampMonotonic", "InactiveExitTimestampMonotonic")
    return {"is_active": sh("systemctl", "is-active", "eni-agent").stdout.strip(), **props}


def journal(*args: str) -> list[tuple[float, str]]:
    """(monotonic seconds, message) of `journalctl ARGS`."""
    out = sh("journalctl", "--no-pager", "-o", "short-monotonic", *args).stdout
    entries = []
    for line in out.splitlines():
        if line.startswith("[") and "]" in line:
            stamp, _, text = line[1:].partition("]")
            try:
                entries.append((float(stamp), text.strip()))
            except ValueError:
                pass
    return entries


def hotplug_timeline(mac: str, ifname: str, since: float) -> dict:
    """From the logs: the PCI device appearing, udev's rename, eni-agent's changes."""
    kernel = [(t, m) for t, m in journal("-k") if t >= since]
    agent = [(t, m) for t, m in journal("-u", "eni-agent") if t >= since and mac in m]
    udev = [m for t, m in journal("-u", "systemd-udevd") if t >= since]

    def first(*words: str) -> float | None:
        return next((t for t, m in kernel if all(w in m for w in words)), None)

    return {"pci_device": first("pci ", "type 00"), "renamed": first(f"{ifname}: renamed from"),
            "agent_first_change": agent[0][0] if agent else None,
            "agent_last_change": agent[-1][0] if agent else None,
            "agent_log": [m.split(": ", 1)[-1] for _, m in agent],
            "udev_errors": [m for m in udev if "rename" in m.lower() or "fail" in m.lower()]}


def configured(state: dict, mac: str, ips: list[str]) -> str | None:
    """The link name if the NIC with `mac` carries all `ips` and a rule for each."""
    link = next((l for l in state["links"] if l["address"].lower() == mac), None)
    if link is None:
        return None
    have = {a["local"] for a in state["addrs"] if a["ifname"] == link["ifname"]}
    ruled = {r.get("src") for r in state["rules"] if r.get("priority") == 10000}
    return link["ifname"] if set(ips) <= have and set(ips) <= ruled else None


STEP_TAGS = {"restart": ("RESTARTING", "RESTARTED"), "stop": ("STOPPING", "STOPPED"),
             "start": ("STARTING", "STARTED")}


def systemctl_step(report: Report, verb: str, expect_active: str) -> None:
    before, after = STEP_TAGS[verb]
    report.line(before, {"monotonic": round(time.monotonic(), 3)})
    start = time.monotonic()
    cp = sh("systemctl", verb, "eni-agent", timeout=180)
    took = round(time.monotonic() - start, 3)
    facts = agent_facts()
    report.line(after, {"rc": cp.returncode, "seconds": took, "stderr": cp.stderr.strip(),
                        "agent": facts, "state": kernel_state()})
    if cp.returncode != 0 or facts["is_active"] != expect_active:
        report.fail(f"systemctl {verb} eni-agent: rc {cp.returncode}, "
                    f"is-active {facts['is_active']} (expected {expect_active})")


def main(report: Report) -> None:
    # First, before anything else: what the kernel held when READY=1 let us start.
    report.line("READY-STATE", kernel_state())
    with open(PLAN) as f:
        plan = json.load(f)
    with open(METADATA) as f:
        macs = json.load(f)["network"]["interfaces"]["macs"]
    settle = plan["settle_seconds"]

    report.line("AGENT", agent_facts())
    # When the units before eni-agent got going (boot is not over: no critical-chain yet).
    units = ("systemd-udevd.service", "systemd-udev-trigger.service", "systemd-networkd.service",
             "sysinit.target", "basic.target", "eni-agent.service", "network-online.target")
    report.line("UNIT-TIMES", {u: int(unit_props(u, "ActiveEnterTimestampMonotonic")
                                      ["ActiveEnterTimestampMonotonic"]) / 1e6 for u in units})
    cp = sh("/usr/sbin/eni-agent", "status", "--json")  # the .deb's path
    report.line("STATUS", {"rc": cp.returncode, "stdout": cp.stdout.strip(),
                           "stderr": cp.stderr.strip()})
    cp = sh("systemd-analyze", "security", "--no-pager", "eni-agent.service")
    overall = [l for l in cp.stdout.splitlines() if "Overall exposure level" in l]
    report.line("EXPOSURE", overall[-1].strip() if overall else f"rc {cp.returncode}: "
                f"{cp.stderr.strip()[:300]}")
    report.line("BOOT-DONE", {"monotonic": round(time.monotonic(), 3)})

    # The host hot-adds the NICs of plan["hotplug_macs"] now.
    since = time.monotonic()
    for mac in plan["hotplug_macs"]:
        ips = macs[mac]["private-ipv4s"]
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            ifname = configured(kernel_state(), mac, ips)
            if ifname:
                report.line("HOTPLUG-SEEN", {"mac": mac, "ifname": ifname,
                                             "monotonic": round(time.monotonic(), 3)})
                report.line("HOTPLUG-TIMELINE", {"mac": mac, "ifname": ifname,
                                                 **hotplug_timeline(mac, ifname, since)})
                break
            time.sleep(0.05)
        else:
            report.fail(f"hot-added NIC {mac} not configured within 240 s")
            return
    report.line("HOTPLUG-STATE", kernel_state())

    # The host keeps probing every address through these steps.
    time.sleep(settle)
    systemctl_step(report, "restart", "active")
    time.sleep(settle)
    systemctl_step(report, "stop", "inactive")
    time.sleep(settle)
    report.line("PROBE-END", {"monotonic": round(time.monotonic(), 3)})

    # Control: with the agent stopped, remove the rule of one address by hand.
    # A reply from it now leaves through the primary NIC, which the router's
    # strict rp_filter must drop (the host checks). Starting the agent repairs it.
    control = plan["control_ip"]
    cp = sh("ip", "rule", "del", "from", control, "priority", "10000")
    report.line("CONTROL-BROKEN", {"ip": control, "rc": cp.returncode,
                                   "stderr": cp.stderr.strip()})
    if cp.returncode != 0:
        report.fail(f"ip rule del from {control}: {cp.stderr.strip()}")
    time.sleep(settle + 1)
    systemctl_step(report, "start", "active")
    report.line("CONTROL-REPAIRED", {"ip": control})
    time.sleep(settle)


def run_scheduled() -> None:
    report = Report(REPORT)
    try:
        main(report)
    except Exception:
        report.fail("guest test crashed: " + " | ".join(traceback.format_exc().splitlines()))
    agent_log = sh("journalctl", "-u", "eni-agent", "--no-pager", "-o", "short-monotonic").stdout
    for line in agent_log.splitlines():
        report.line("JOURNAL", line)
    report.line("DONE", "fail" if report.failed else "ok")
    sh("systemctl", "--no-block", "poweroff")
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["state"]:
        print(json.dumps(kernel_state()))
    elif sys.argv[1:2] == ["timeline"]:
        mac, ifname, since = sys.argv[2:5]
        print(json.dumps(hotplug_timeline(mac, ifname, float(since))))
    else:
        run_scheduled()
