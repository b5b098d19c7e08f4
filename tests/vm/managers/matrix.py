#!/usr/bin/env python3
"""eni-agent beside the images' own network managers, in a real VM (qemu, TCG).

One image (tests/vm/build-image.sh + managers/customize.sh) holds
NetworkManager, systemd-networkd and ifupdown + isc-dhclient; each scenario
boots it from a pristine copy-on-write disk (`snapshot=on`) with the manager
named on the kernel command line:

    nm                 NetworkManager, default config (takes every NIC)
    networkd-catchall  systemd-networkd, `Name=en* eth*` + `DHCP=yes`
    networkd-primary   systemd-networkd, a .network for the primary's MAC only
    ifupdown           `auto eth0` + `allow-hotplug eth1`/`eth3`, all `inet dhcp`
    cloudinit          cloud-init 22.4 (AliYun datasource: SMBIOS product "Alibaba Cloud
                       ECS", the metadata stand-in at 100.100.100.200, which eni-agent
                       reads too) rendering netplan for systemd-networkd; judged also by
                       the DHCP server: no lease on any ENI from power-on
    cloudinit-late     the same, the package installed on the running instance after
                       cloud-init rendered DHCP for the ENIs at the first boot; judged:
                       networkd lets go of them at the install, no probe of the primary
                       lost, `netplan apply` (the file still names the ENIs) harmless;
                       then a reboot (cloud-init renders again before networkd starts,
                       honouring the package's drop-in), and no lease on any ENI from
                       its power-on
    networkd-reboot    networkd-catchall booted, then rebooted: the daemon's runtime
                       files are gone and networkd starts before the agent; no lease on
                       any ENI from the reboot's power-on (the boot guard, which writes
                       them again for the ENIs the last run remembered; its control
                       removes that list at the reboot)

Every other scenario boots with `cloud-init=disabled`.

The network is the lab's (tests/vm/lab/network.py: a router namespace with strict rp_filter,
a tap per NIC, a /32 route per ENI address), plus dnsmasq on the taps
answering like the VPC: each MAC gets its ENI's primary IP and the vswitch
gateway. The host drives the guest through a virtio-serial command port and
probes every address (the primary's too) with TCP from the client namespace:
after boot, across a hot-add (QMP device_add) and across the manager's own
restart/reload, counting lost probes (goal 0) and checking that the main
table's only default route is the primary's.

Usage (root; run.sh builds the image): matrix.py IMAGE_DIR WORK_DIR [SCENARIO...]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))
from tests.vm.lab import TestFailure  # noqa: E402
from tests.vm.lab.channel import Guest  # noqa: E402
from tests.vm.lab.network import Network, Nic, load_nics  # noqa: E402
from tests.vm.lab.probes import ContinuousProbe, Prober  # noqa: E402
from tests.vm.lab.qemu import Vm  # noqa: E402
from tests.vm.lab.verdict import Verdict  # noqa: E402

PRIMARY_IF = "eth0"  # net.ifnames=0: the primary is the first PCI NIC
BOOT_TIMEOUT = 300.0
SETTLE = 4.0  # seconds of probing after each action

# What each scenario does to its manager once the ENIs answer (guest shell),
# and the NICs the operator takes down on the way (`ifdown`): eni-agent leaves
# those down until they are brought up again, so their addresses may miss
# probes in that step, and must answer once it is over.
ACTIONS: dict[str, list[tuple]] = {
    "nm": [
        ("systemctl restart NetworkManager", "systemctl restart NetworkManager"),
        ("nmcli connection up (primary)",
         'nmcli connection up "$(nmcli -g GENERAL.CONNECTION device show eth0)"'),
        ("nmcli general reload", "nmcli general reload"),
    ],
    "networkd-catchall": [
        ("networkctl reconfigure (all)", "networkctl reconfigure eth0 eth1 eth2 eth3"),
        ("networkctl reload", "networkctl reload"),
        ("systemctl restart systemd-networkd", "systemctl restart systemd-networkd"),
    ],
    "ifupdown": [
        ("ifdown eth1; ifup eth1", "ifdown eth1; ifup eth1", "eth1"),
        ("ifdown eth3; ifup eth3", "ifdown eth3; ifup eth3", "eth3"),
    ],
}
ACTIONS["networkd-primary"] = ACTIONS["networkd-catchall"]
ACTIONS["cloudinit"] = [
    ("netplan apply", "netplan apply"),
    ("systemctl restart systemd-networkd", "systemctl restart systemd-networkd"),
]
SCENARIOS = list(ACTIONS) + ["cloudinit-late", "networkd-reboot", "sync-retry", "upgrade"]
REPO = HERE.parents[2]
STAND_IN = REPO / "tests" / "harness" / "metadata_server.py"
METADATA_ADDRESS = "100.100.100.200"


class ManagerVm(Vm):
    """The lab's VM (tests/vm/lab/qemu.py), booted from a pristine snapshot with a manager on
    the kernel command line and a virtio-serial command port."""

    def __init__(self, image_dir: Path, work: Path, net: Network, manager: str,
                 control: bool = False):
        super().__init__(image_dir, work, net)
        self.manager, self.control = manager, control
        # cloud-init's scenarios reboot (it runs again; the qemu process stays)
        self.reboot = manager.startswith("cloudinit") or manager == "networkd-reboot"
        self.cmd_path = work / "cmd.sock"

    def kernel_args(self) -> str:
        cloud_init = "" if self.manager.startswith("cloudinit") else " cloud-init=disabled"
        if self.manager == "cloudinit-late":
            return (" net.ifnames=0 eni_vm.manager=cloudinit eni_vm.late=1"
                    + (" eni_vm.control=1" if self.control else ""))
        if self.manager == "networkd-reboot":
            return (" net.ifnames=0 eni_vm.manager=networkd-catchall eni_vm.reboot=1"
                    + (" eni_vm.control=guard" if self.control else "") + cloud_init)
        if self.manager == "sync-retry":
            return " net.ifnames=0 eni_vm.manager=networkd-primary eni_vm.sync=1" + cloud_init
        if self.manager == "upgrade":
            return " net.ifnames=0 eni_vm.manager=networkd-primary" + cloud_init
        return (f" net.ifnames=0 eni_vm.manager={self.manager}"
                + (" eni_vm.control=1" if self.control else "") + cloud_init)

    def extra_args(self) -> list[str]:
        self.cmd_path.unlink(missing_ok=True)
        # cloud-init's AliYun datasource knows ECS by its SMBIOS product name
        smbios = (["-smbios", "type=1,manufacturer=Alibaba Cloud,product=Alibaba Cloud ECS"]
                  if self.manager.startswith("cloudinit") else [])
        return smbios + ["-snapshot", "-device", "virtio-serial-pci",
                "-chardev", f"socket,id=cmd,path={self.cmd_path},server=on,wait=off",
                "-device", "virtserialport,chardev=cmd,name=eni-vm-cmd"]


def dnsmasq_conf(nics: list[Nic], lease_dir: Path) -> str:
    """One static range per ENI segment, one host per MAC: like the VPC's DHCP."""
    lines = ["port=0", "bind-dynamic", "dhcp-authoritative", "log-dhcp",
             f"dhcp-leasefile={lease_dir / 'leases'}"]
    for nic in nics:
        network = ".".join(nic.gateway.split(".")[:3]) + ".0"
        lines += [f"interface={nic.tap}", f"dhcp-range={network},static,255.255.255.0,2m",
                  f"dhcp-host={nic.mac},{nic.ips[0]}"]
    return "\n".join(lines) + "\n"


class Scenario(Verdict):
    def __init__(self, image_dir: Path, work: Path, tag: str, manager: str,
                 control: bool = False):
        super().__init__(label=manager)
        self.manager, self.control = manager, control
        self.nics, self.plan = load_nics(tag)
        self.net = Network(tag, self.nics)
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.vm = ManagerVm(image_dir, work, self.net, manager, control)
        self.guest = Guest(self.vm)
        self.dnsmasq: subprocess.Popen | None = None
        self.stand_in: subprocess.Popen | None = None
        # while a manager reconfigures the primary, its secondary IPs may be
        # gone for a moment (measured and reported, not judged)
        self.manager_windows: list[tuple[float, float]] = []

    def run(self) -> dict:
        self.t0 = time.monotonic()
        try:
            self.net.create()
            self.start_dnsmasq()
            if self.manager.startswith("cloudinit"):
                self.start_stand_in()
            self.vm.start()
            self.scenario()
        except TestFailure as e:
            self.expect(False, str(e))
        except KeyboardInterrupt:
            self.expect(False, "interrupted")
            raise
        finally:
            self.finish()
        name = self.manager + (" (control)" if self.control else "")
        if self.control:
            # eni-agent could not write its files: the manager must have taken
            # an ENI over, visibly (the main table, lost probes, rp_filter drops)
            caught = [p for p in self.problems if "main has default routes via ENIs" in p
                      or "failed" in p or "rp_filter" in p or "never answered" in p
                      or "DHCP leases on ENIs" in p or "cloud-init rendered" in p
                      or "DHCP leases to ENIs" in p]
            self.figures["control: problems seen (expected)"] = len(caught)
            problems = [] if caught else ["control: the manager took no ENI over, visibly: "
                                          "the scenario would not catch eni-agent failing"]
            return {"scenario": name, "problems": problems, "figures": self.figures}
        return {"scenario": name, "problems": self.problems, "figures": self.figures}

    def start_dnsmasq(self) -> None:
        conf = self.work / "dnsmasq.conf"
        conf.write_text(dnsmasq_conf(self.nics, self.work))
        self.dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", self.net.router, "dnsmasq", "--keep-in-foreground",
             f"--conf-file={conf}", "--user=root", "--pid-file=", f"--log-facility={self.work / 'dnsmasq.log'}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.work / "dnsmasq.err", "wb"))

    def start_stand_in(self) -> None:
        """The metadata service at 100.100.100.200 in the router namespace,
        serving the guest's metadata document to cloud-init and eni-agent."""
        subprocess.run(["ip", "-n", self.net.router, "addr", "add", f"{METADATA_ADDRESS}/32",
                        "dev", "lo"], check=True)
        control = self.work / "stand-in.json"
        control.write_text("{}\n")
        self.stand_in = subprocess.Popen(
            ["ip", "netns", "exec", self.net.router, sys.executable, str(STAND_IN),
             "--document", str(REPO / "tests" / "vm" / "guest" / "metadata.json"),
             "--control", str(control), "--address", METADATA_ADDRESS, "--port", "80"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.work / "stand-in.err", "wb"))

    def eni_leases(self) -> list[str]:
        """The DHCP server's ACKs to any ENI's MAC since power-on (dnsmasq's log)."""
        enis = {n.mac for n in self.nics if not n.primary}
        log = self.work / "dnsmasq.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return [line.split(": ", 1)[-1] for line in lines
                if "DHCPACK" in line and any(mac in line for mac in enis)]

    # -- the primary's secondary IPs (primary_secondary_ips) ----------------------

    @property
    def primary_secondaries(self) -> list[str]:
        return [a for n in self.nics if n.primary for a in n.ips[1:]]

    def watch_primary_addresses(self) -> None:
        """The kernel's address events on the primary NIC, time-stamped, to a
        file in the guest (a manager that reconfigures the primary removes
        addresses it did not configure; eni-agent puts them back)."""
        self.guest.run(f"setsid sh -c 'exec ip -ts -4 monitor address dev {PRIMARY_IF}' "
                       ">/run/eni-vm-primary-addresses.log 2>&1 </dev/null &")

    def guest_clock(self) -> datetime.datetime:
        out = self.guest.run("date +%Y-%m-%dT%H:%M:%S.%6N")["out"].strip()
        return datetime.datetime.fromisoformat(out)

    def primary_address_gaps(self, since: datetime.datetime,
                             until: datetime.datetime) -> list[float]:
        """For each removal of one of the primary's secondary IPs between
        `since` and `until` (guest clock), how long (ms) until it was back;
        inf when it did not come back."""
        log = self.guest.run("cat /run/eni-vm-primary-addresses.log")["out"]
        events = re.findall(r"^\[([0-9T:.-]+)\] (Deleted )?\d+: \S+\s+inet ([0-9.]+)/", log, re.M)
        removed: dict[str, datetime.datetime] = {}
        gaps = []
        for stamp, deleted, addr in events:
            if addr not in self.primary_secondaries:
                continue
            at = datetime.datetime.fromisoformat(stamp)
            if deleted and since <= at <= until:
                removed[addr] = at
            elif not deleted and addr in removed:
                gaps.append((at - removed.pop(addr)).total_seconds() * 1000)
        return gaps + [float("inf")] * len(removed)

    def check_udev_marks(self, nic: Nic) -> None:
        """The hot-added ENI carries eni-agent's udev properties from its `add`
        event (its runtime rule, written by the daemon under its sandbox):
        networkd >= 255 and NetworkManager leave it alone before reading any file."""
        marks = self.guest.run(
            "for d in /sys/class/net/*; do [ \"$(cat $d/address)\" = " + nic.mac + " ] && "
            "udevadm info -q property $d; done | grep -E '^(ID_NET_MANAGED_BY|NM_UNMANAGED)='")
        found = sorted(marks["out"].split())
        self.figures[f"hot-added {nic.eni_id}: udev properties"] = " ".join(found)
        self.expect(found == ["ID_NET_MANAGED_BY=eni-agent", "NM_UNMANAGED=1"],
                    f"the hot-added {nic.eni_id} lacks eni-agent's udev properties: {found}")

    def check_remembered(self, nics: list[Nic]) -> None:
        """The ENIs are in the list the boot guard reads at the next boot."""
        remembered = self.guest.run("cat /var/lib/eni-agent/kept-off-macs")["out"]
        self.expect(all(n.mac in remembered for n in nics if not n.primary),
                    f"the boot guard's list lacks an ENI: {remembered!r}")

    def rendered_netplan(self) -> list[str]:
        """The NICs cloud-init's netplan file names."""
        rendered = self.guest.run("cat /etc/netplan/50-cloud-init.yaml")["out"]
        return sorted(set(re.findall(r"^\s+(eth\d+):\s*$", rendered, re.M)))

    def check_cloud_init(self) -> None:
        """What cloud-init rendered, and that no manager ever held an ENI lease."""
        names = self.rendered_netplan()
        self.figures["cloud-init rendered netplan for"] = " ".join(names)
        status = self.guest.run("cloud-init status --wait --long", timeout=120)["out"]
        self.figures["cloud-init status"] = " ".join(status.split())[:160]
        requests = (self.work / "stand-in.json.log")
        self.figures["stand-in requests (cloud-init and eni-agent)"] = (
            len(requests.read_text().splitlines()) if requests.exists() else 0)
        self.expect(names == [PRIMARY_IF], f"cloud-init rendered netplan for {names}, "
                    "not the primary alone")
        leases = self.eni_leases()
        self.figures["DHCP leases acknowledged to ENIs since power-on"] = len(leases)
        self.expect(not leases, f"DHCP leases on ENIs since power-on: {leases[:4]}")

    def reboot_guest(self, prober: Prober, nics: list[Nic], leases_before: int | None = None) -> None:
        """Reboot (the hot-added NIC stays attached, cloud-init runs again):
        every address of `nics` answers again, and still no manager took an
        ENI lease (since power-on; with `leases_before`, since the reboot)."""
        boot_id = self.guest.run("cat /proc/sys/kernel/random/boot_id")["out"].strip()
        self.step("guest: reboot")
        start = time.monotonic()
        self.guest.run("systemctl --no-block reboot", timeout=10)
        deadline = start + BOOT_TIMEOUT
        new_id = boot_id
        while new_id == boot_id and time.monotonic() < deadline:
            time.sleep(2)
            try:
                new_id = self.guest.run("cat /proc/sys/kernel/random/boot_id",
                                        timeout=3)["out"].strip() or boot_id
            except TestFailure:
                pass
        if new_id == boot_id:
            raise TestFailure(f"the guest did not come back within {BOOT_TIMEOUT:.0f} s of a reboot")
        self.figures["reboot: to the command port (s)"] = round(time.monotonic() - start, 1)
        silent = self.wait_answering(prober, nics, BOOT_TIMEOUT - (time.monotonic() - start))
        self.expect(not silent, f"after the reboot: {', '.join(silent)} never answered")
        self.figures["reboot: to every address answering (s)"] = round(time.monotonic() - start, 1)
        if self.manager.startswith("cloudinit"):
            self.guest.run("cloud-init status --wait", timeout=120)
            ran = self.guest.run("grep -c \"running 'init'\" /var/log/cloud-init.log || true")
            boots = int((ran["out"].strip() or "0").splitlines()[-1])
            self.figures["reboot: boots cloud-init's network stage ran"] = boots
            self.expect(boots >= 2, f"cloud-init's network stage ran {boots} time(s), not at the "
                        "reboot")
        self.check_routes("after the reboot")
        self.probe_all(prober, nics, "after the reboot")
        if leases_before is None:
            self.check_cloud_init()
            return
        guard = self.guest.run("systemctl show -p ActiveState,Result eni-agent-guard; "
                               "journalctl -b -o cat -u eni-agent-guard | grep -v '^Start\\|^Finish'")
        self.figures["reboot: eni-agent-guard"] = " ".join(guard["out"].split())[:200]
        if self.manager.startswith("cloudinit"):
            self.figures["reboot: cloud-init rendered netplan for"] = " ".join(self.rendered_netplan())
        leases = self.eni_leases()[leases_before:]
        self.figures["reboot: DHCP leases acknowledged to ENIs since its power-on"] = len(leases)
        self.expect(not leases, f"after the reboot: DHCP leases to ENIs since its power-on: "
                    f"{leases[:4]}")

    # -- checks ---------------------------------------------------------------

    def main_defaults(self) -> list[dict]:
        return self.guest.json("ip -j -4 route show table main default")

    def check_routes(self, when: str) -> None:
        defaults = self.main_defaults()
        primary = [r for r in defaults if r.get("dev") == PRIMARY_IF]
        others = [f"via {r.get('gateway')} dev {r.get('dev')}" for r in defaults
                  if r.get("dev") != PRIMARY_IF]
        self.expect(len(primary) >= 1, f"{when}: no default route via the primary in main: "
                    f"{defaults}")
        self.expect(not others, f"{when}: main has default routes via ENIs: {others}")

    def probe_all(self, prober: Prober, nics: list[Nic], when: str) -> None:
        for nic in nics:
            for addr in nic.ips:
                failure = prober.probe(addr)
                self.expect(failure is None, f"{when}: TCP to {addr} ({nic.eni_id}) failed: "
                            f"{failure}")

    def wait_answering(self, prober: Prober, nics: list[Nic], timeout: float) -> list[str]:
        """Wait until every address of `nics` has answered once; those that did not."""
        deadline = time.monotonic() + timeout
        pending = [a for n in nics for a in n.ips]
        while pending and time.monotonic() < deadline:
            pending = [a for a in pending if prober.probe(a, timeout=1.0) is not None]
            if pending:
                time.sleep(0.2)
        return pending

    # -- the scenario ----------------------------------------------------------

    def sync_retry(self) -> None:
        """eni-agent-sync.service with no metadata at boot: it retries (the unit
        stays activating), then configures the ENIs once the file appears."""
        boot_nics = [n for n in self.nics if not n.hot]
        prober = Prober(self.net, self.plan["listen_port"])
        self.guest.connect(BOOT_TIMEOUT)
        show = "systemctl show eni-agent-sync -p ActiveState,SubState,NRestarts,Result"

        def unit() -> dict:
            out = self.guest.run(show)["out"]
            return dict(line.split("=", 1) for line in out.split() if "=" in line)

        deadline = time.monotonic() + 90
        state = unit()
        while int(state.get("NRestarts", 0)) < 1 and time.monotonic() < deadline:
            time.sleep(1)
            state = unit()
        self.step(f"eni-agent-sync without metadata: {state}")
        self.expect(int(state.get("NRestarts", 0)) >= 1 and state.get("ActiveState") == "activating",
                    f"eni-agent-sync is not retrying without metadata: {state}")
        self.guest.run("mv /etc/eni-agent/metadata.json.later /etc/eni-agent/metadata.json")
        placed = time.monotonic()
        while state.get("ActiveState") != "active" and time.monotonic() < placed + 60:
            time.sleep(1)
            state = unit()
        self.figures["sync-retry: tries before the metadata appeared"] = int(state.get("NRestarts", 0))
        self.figures["sync-retry: metadata placed to unit active (s)"] = round(time.monotonic() - placed, 1)
        self.step(f"after the metadata appeared: {state}")
        self.expect(state.get("ActiveState") == "active" and state.get("Result") == "success",
                    f"eni-agent-sync did not succeed once the metadata appeared: {state}")
        self.probe_all(prober, boot_nics, "after eni-agent-sync")
        self.check_routes("after eni-agent-sync")
        # One-shot mode does not repair: recorded, not judged (docs/network-managers.md says so).
        self.guest.run("systemctl restart systemd-networkd", timeout=60)
        time.sleep(SETTLE)
        lost = sum(1 for n in boot_nics if not n.primary for a in n.ips if prober.probe(a) is not None)
        self.figures["sync-retry: ENI addresses not answering after a networkd restart"] = lost

    def upgrade(self) -> None:
        """The package of an earlier commit (lower version) upgraded to this
        one while every address, the primary's included, is probed: no probe
        lost, the daemon running the new code, systemd-networkd not restarted
        (its drop-in did not change)."""
        boot_nics = [n for n in self.nics if not n.hot]
        prober = Prober(self.net, self.plan["listen_port"])
        self.guest.connect(BOOT_TIMEOUT)
        self.guest.run("systemctl is-system-running --wait", timeout=120)
        down = self.guest.run("dpkg -i /var/cache/eni-vm/eni-agent-old.deb", timeout=180)
        self.expect(down["rc"] == 0, f"installing the earlier package: {down['err'][-300:]}")
        silent = self.wait_answering(prober, boot_nics, 120)
        self.expect(not silent, f"with the earlier package: {silent} never answered")

        def show(what: str) -> str:
            return self.guest.run(what)["out"].strip()
        old = show("dpkg-query -W -f='${Version}' eni-agent")
        daemon = "systemctl show -p MainPID --value eni-agent"
        networkd = "systemctl show -p ExecMainStartTimestampMonotonic --value systemd-networkd"
        before = (show(daemon), show(networkd))
        continuous = ContinuousProbe(prober, [a for n in boot_nics for a in n.ips])
        continuous.start()
        try:
            time.sleep(SETTLE)
            start = time.monotonic()
            self.step(f"guest: dpkg -i the current package over {old}")
            up = self.guest.run("dpkg -i /var/cache/eni-vm/eni-agent-new.deb", timeout=180)
            self.figures["upgrade: dpkg -i took (s)"] = up["seconds"]
            self.expect(up["rc"] == 0, f"the upgrade: {up['err'][-300:]}")
            self.guest.run("for i in $(seq 60); do systemctl is-active -q eni-agent && break; "
                           "sleep 0.5; done", timeout=60)
            time.sleep(SETTLE)
            windows = [("upgrade", start, time.monotonic(), 0)]
        finally:
            continuous.stop()
        new = show("dpkg-query -W -f='${Version}' eni-agent")
        after = (show(daemon), show(networkd))
        self.figures["upgrade: versions"] = f"{old} -> {new}"
        self.expect(new != old and not new.startswith("0.0.1"), f"still {new} after the upgrade")
        self.expect(after[0] not in ("", "0", before[0]),
                    f"the daemon was not restarted (pid {before[0]} -> {after[0]})")
        self.expect(after[1] == before[1], "systemd-networkd was restarted by the upgrade "
                    "(its drop-in did not change)")
        self.judge(continuous, windows)
        self.check_routes("after the upgrade")
        self.probe_all(prober, boot_nics, "after the upgrade")

    def late_install(self) -> None:
        """The package installed on an instance where cloud-init already
        rendered DHCP for the ENIs (the first boot ran without eni-agent):
        networkd lets go of the ENIs at the install while the primary loses no
        probe, `netplan apply` (cloud-init's file still names the ENIs) changes
        nothing, and from the reboot's power-on no manager takes a lease on an
        ENI (cloud-init renders again before networkd starts, honouring the
        package's drop-in; the boot guard is there too)."""
        boot_nics = [n for n in self.nics if not n.hot]
        # the primary's own address (its secondary IPs come with the agent)
        primary = [dataclasses.replace(n, ips=n.ips[:1]) for n in boot_nics if n.primary]
        prober = Prober(self.net, self.plan["listen_port"])
        up = self.guest.connect(BOOT_TIMEOUT)
        self.figures["boot: qemu start to the command port (s)"] = round(up - self.t0, 1)
        self.guest.run("cloud-init status --wait", timeout=180)
        self.guest.run("systemctl is-system-running --wait", timeout=120)
        status = self.guest.run("dpkg-query -W -f='${Status}' eni-agent")["out"]
        self.expect("ok installed" not in status, f"eni-agent installed at the first boot: {status}")
        rendered = self.rendered_netplan()
        self.figures["first boot: cloud-init rendered netplan for"] = " ".join(rendered)
        self.expect(rendered != [PRIMARY_IF], "first boot: cloud-init rendered the primary only: "
                    "the starting point (ENIs rendered before the install) did not happen")
        self.figures["first boot: DHCP leases acknowledged to ENIs (no eni-agent yet)"] = \
            len(self.eni_leases())
        self.figures["first boot: main's default routes via ENIs"] = " ".join(
            r.get("dev", "?") for r in self.main_defaults() if r.get("dev") != PRIMARY_IF)
        silent = self.wait_answering(prober, primary, 120)
        if silent:
            raise TestFailure(f"first boot: the primary ({silent}) never answered")
        continuous = ContinuousProbe(prober, primary[0].ips)
        continuous.start()
        try:
            time.sleep(SETTLE)
            start = time.monotonic()
            self.step("guest: dpkg -i eni-agent on the running instance")
            reply = self.guest.run("dpkg -i /var/cache/eni-vm/eni-agent-new.deb", timeout=180)
            self.figures["install: dpkg -i took (s)"] = reply["seconds"]
            self.expect(reply["rc"] == 0, f"dpkg -i: {reply['err'][-300:]}")
            silent = self.wait_answering(prober, boot_nics, 120)
            self.expect(not silent, f"after the install: {', '.join(silent)} never answered")
            self.figures["install: dpkg -i to every address answering (s)"] = \
                round(time.monotonic() - start, 1)
            time.sleep(SETTLE)
            windows = [("install", start, time.monotonic(), 0)]
        finally:
            continuous.stop()
        self.judge(continuous, windows)
        self.check_routes("after the install")
        links = self.guest.run("networkctl list --no-legend --no-pager")["out"]
        held = [line.split()[1] for line in links.splitlines() if len(line.split()) > 4
                and line.split()[1] != PRIMARY_IF and line.split()[1].startswith("eth")
                and line.split()[4] != "unmanaged"]
        self.figures["install: networkd's view"] = " ".join(
            f"{line.split()[1]}:{line.split()[4]}" for line in links.splitlines()
            if len(line.split()) > 4)
        self.expect(not held, f"after the install: networkd still manages {held}")
        said = self.guest.run("eni-agent status | grep \"cloud-init's network config names\" "
                              "| head -n 1")["out"]
        self.figures["install: eni-agent status on cloud-init's file"] = " ".join(said.split())[:240]
        self.expect(bool(said.strip()), "after the install: eni-agent status does not say that "
                    "cloud-init's network config names the ENIs")
        self.probe_all(prober, boot_nics, "after the install")
        self.step("guest: netplan apply (cloud-init's file still names the ENIs)")
        reply = self.guest.run("netplan apply", timeout=90)
        self.figures["netplan apply: took (s)"] = reply["seconds"]
        time.sleep(SETTLE)
        self.check_routes("after netplan apply")
        self.probe_all(prober, boot_nics, "after netplan apply")
        self.check_remembered(boot_nics)
        self.reboot_guest(prober, boot_nics, leases_before=len(self.eni_leases()))

    def reboot_with_a_catchall(self) -> None:
        """The boot guard. A catch-all networkd .network (`Name=en* eth*`,
        DHCP) is the image's: at the first boot networkd takes DHCP on the ENIs
        until the daemon's runtime files make it let go. Those files are gone
        after a reboot, and networkd starts before the agent; the guard writes
        them again for the MACs the last run remembered before networkd starts,
        so from the reboot's power-on no manager takes a lease on an ENI (its
        control: the remembered list removed at the reboot)."""
        boot_nics = [n for n in self.nics if not n.hot]
        prober = Prober(self.net, self.plan["listen_port"])
        up = self.guest.connect(BOOT_TIMEOUT)
        self.figures["boot: qemu start to the command port (s)"] = round(up - self.t0, 1)
        silent = self.wait_answering(prober, boot_nics, BOOT_TIMEOUT - (up - self.t0))
        if silent:
            raise TestFailure(f"after boot: {', '.join(silent)} never answered")
        self.guest.run("systemctl is-system-running --wait", timeout=120)
        self.check_routes("after boot")
        leases = len(self.eni_leases())
        self.figures["first boot: DHCP leases to ENIs before the agent's files (no list yet)"] = leases
        self.check_remembered(boot_nics)
        self.reboot_guest(prober, boot_nics, leases_before=leases)

    def scenario(self) -> None:
        own_course = {"sync-retry": self.sync_retry, "upgrade": self.upgrade,
                      "cloudinit-late": self.late_install,
                      "networkd-reboot": self.reboot_with_a_catchall}.get(self.manager)
        if own_course is not None:
            own_course()
            return
        boot_nics = [n for n in self.nics if not n.hot]
        hot_nics = [n for n in self.nics if n.hot]
        prober = Prober(self.net, self.plan["listen_port"])
        drops_at_boot = self.net.rp_filter_drops()
        self.step(f"qemu started (eni_vm.manager={self.manager}); waiting for the guest")
        up = self.guest.connect(BOOT_TIMEOUT)
        self.figures["boot: qemu start to the command port (s)"] = round(up - self.t0, 1)
        # eni-agent is up within seconds of the command port; a control run
        # (eni-agent kept from its files) may never answer on some address
        wait = 120.0 if self.control else BOOT_TIMEOUT - (up - self.t0)
        silent = self.wait_answering(prober, boot_nics, wait)
        if silent:
            self.expect(False, f"after boot: {', '.join(silent)} never answered in {wait:.0f} s")
            self.check_routes("after boot")
            raise TestFailure("not every boot-time address answered after boot")
        answered = time.monotonic()
        self.figures["boot: qemu start to every address answering (s)"] = round(answered - self.t0, 1)
        # while the guest boots, the probes above reach ENI addresses before
        # the agent has routed them: only drops from here on are judged
        drops_at_start = self.net.rp_filter_drops()
        self.figures["router rp_filter drops while booting (probes before the agent)"] = \
            drops_at_start - drops_at_boot
        # the manager's DHCP on the primary and the agent are done by now
        self.guest.run("systemctl is-system-running --wait", timeout=120)
        self.figures["boot: qemu start to system running (s)"] = round(time.monotonic() - self.t0, 1)
        self.step(f"booted: {self.figures}")
        manager_unit = {"nm": "NetworkManager", "ifupdown": "networking"}.get(
            self.manager, "systemd-networkd")
        active = self.guest.run(f"systemctl is-active eni-agent {manager_unit}")["out"].split()
        self.expect(active == ["active", "active"], f"eni-agent / {manager_unit}: {active}")
        time.sleep(SETTLE)
        view = {"nm": "nmcli -t -f DEVICE,STATE device",
                "ifupdown": "ls /run/network/ifstate.* | sed 's|.*ifstate.||'"}.get(
            self.manager, "networkctl list --no-legend --no-pager | awk '{print $2\":\"$5}'")
        self.figures["manager's view of the NICs after boot"] = \
            " ".join(self.guest.run(view)["out"].split())
        self.check_routes("after boot")
        self.probe_all(prober, boot_nics, "after boot")
        if self.manager == "cloudinit":
            self.check_cloud_init()
        if self.control:
            return  # the boot has shown what it had to

        continuous = ContinuousProbe(prober, [a for n in boot_nics for a in n.ips])
        self.watch_primary_addresses()
        continuous.start()
        windows: list[tuple[str, float, float]] = []
        operator_drops = 0
        try:
            time.sleep(SETTLE)
            windows.append(("steady after boot", continuous.results[0][0] if continuous.results
                            else time.monotonic(), time.monotonic(),
                            self.net.rp_filter_drops() - drops_at_start))
            for nic in hot_nics:
                self.step(f"hot-adding {nic.mac} ({nic.eni_id}) through QMP")
                start = time.monotonic()
                self.vm.hot_add(nic)
                reached = prober.first_handshake(nic.ips[0], timeout=60)
                if reached is None:
                    self.expect(False, f"hot-added {nic.eni_id} unreachable for 60 s")
                else:
                    self.figures[f"hot-add to first handshake with {nic.ips[0]} (s)"] = \
                        round(reached - start, 2)
                    for addr in nic.ips:
                        continuous.add(addr)
                self.check_udev_marks(nic)
                time.sleep(SETTLE)
                windows.append((f"hot-add {nic.eni_id}", start, time.monotonic(),
                                self.net.rp_filter_drops() - drops_at_start))
                self.check_routes("after the hot-add")
            for label, command, *downed in ACTIONS[self.manager]:
                self.step(f"guest: {command}")
                excused = set()
                drops_before = self.net.rp_filter_drops()
                for ifname in downed:
                    shown = self.guest.run(f"ip -4 -o addr show dev {ifname}", timeout=30)
                    excused |= set(re.findall(r"inet ([0-9.]+)/", shown.get("out", "")))
                clock = self.guest_clock()
                start = time.monotonic()
                reply = self.guest.run(command, timeout=90)
                self.figures[f"{label}: took (s)"] = reply["seconds"]
                if reply["rc"] != 0:
                    self.expect(False, f"{command}: rc {reply['rc']}: {reply['err'].strip()[-300:]}")
                time.sleep(SETTLE)
                gaps = self.primary_address_gaps(clock, self.guest_clock())
                self.figures[f"{label}: the primary's secondary IPs missing (ms)"] = \
                    [round(g, 1) for g in gaps] or "not removed"
                self.expect(float("inf") not in gaps, f"{label}: a secondary IP of the primary "
                            "was removed and not put back")
                self.manager_windows.append((start, time.monotonic()))
                windows.append((label, start, time.monotonic(),
                                self.net.rp_filter_drops() - drops_at_start, excused))
                if excused:
                    # While the operator has a NIC down, a stray retransmission
                    # from its addresses finds its table empty (the kernel
                    # dropped the routes) and leaves by `main`: theirs too.
                    operator_drops += self.net.rp_filter_drops() - drops_before
                for addr in sorted(excused):  # brought up again: configured again
                    failure = prober.probe(addr)
                    self.expect(failure is None, f"after {label}: TCP to {addr} failed: {failure}")
                self.check_routes(f"after {label}")
        finally:
            continuous.stop()
        self.judge(continuous, windows)
        self.probe_all(prober, self.nics, "at the end")
        if self.manager == "cloudinit":
            self.reboot_guest(prober, self.nics)
        drops = self.net.rp_filter_drops() - drops_at_start - operator_drops
        self.figures["router rp_filter drops while the operator had a NIC down"] = operator_drops
        self.figures["router rp_filter drops"] = drops
        self.expect(drops == 0, f"the router dropped {drops} packets by rp_filter "
                    "(replies through the wrong NIC)")

    def judge(self, continuous: ContinuousProbe, windows: list[tuple[str, float, float, int]]) -> None:
        results = continuous.results
        failures = [(t, a, f) for t, a, f in results if f is not None]
        windows = [w if len(w) == 5 else (*w, set()) for w in windows]
        # Probes of a NIC its operator had down (ifdown) in that step are theirs.
        excused = [(t, a, f) for t, a, f in results if f is not None and any(
            start <= t <= end and a in down for _, start, end, _, down in windows)]
        failures = [r for r in failures if r not in excused]
        reconfigured = [(t, a, f) for t, a, f in failures if a in self.primary_secondaries
                        and any(start <= t <= end for start, end in self.manager_windows)]
        failures = [r for r in failures if r not in reconfigured]
        self.figures["probes of the primary's secondary IPs lost while its manager "
                     "reconfigured it (measured)"] = len(reconfigured)
        lost = {}
        for label, start, end, drops, down in windows:
            lost[label] = sum(1 for t, a, f in results if start <= t <= end and f is not None
                              and a not in down)
        self.figures["probes of NICs set down by the operator, not answered"] = len(excused)
        self.figures["router rp_filter drops, cumulative after each step"] = {
            label: drops for label, _, _, drops, _ in windows}
        self.figures["probes (all / lost)"] = f"{len(results)} / {len(failures)}"
        self.figures["lost probes by step"] = lost
        for t, addr, failure in failures[:10]:
            self.expect(False, f"probe of {addr} at +{t - self.t0:.1f}s failed: {failure}")
        self.expect(len(results) >= 20, f"only {len(results)} continuous probes ran")

    def finish(self) -> None:
        if self.vm.alive() and self.guest.sock is not None:
            try:
                journal = self.guest.run("journalctl -b --no-pager -o short-monotonic "
                                         "-u eni-agent -u NetworkManager -u systemd-networkd "
                                         "-u networking -u 'ifup@*' -u eni-vm-manager "
                                         "-u 'cloud-init*' -u eni-agent-guard "
                                         "| tail -n 300; ip -4 rule; ip -4 route show table all "
                                         "| grep -v local; ip -4 addr; nmcli device status; "
                                         "networkctl list --no-pager; ls -l /run/systemd/network "
                                         "/etc/NetworkManager/conf.d /run/eni-agent; "
                                         "journalctl -b -o short-monotonic -u eni-agent "
                                         "--no-pager | grep -i 'coexist\\|wrote\\|warn'",
                                         timeout=60)
                (self.work / "guest.txt").write_text(journal["out"] + journal["err"])
            except Exception as e:  # diagnostics only
                print(f"   [{self.manager}] could not fetch the guest's log: {e!r}")
        self.vm.power_off()
        self.vm.kill()
        for server in (self.dnsmasq, self.stand_in):
            if server is not None:
                server.terminate()
                server.wait(10)
        self.net.destroy()
        self.figures["whole scenario (s)"] = round(time.monotonic() - self.t0, 1)
        verdict = ("control, problems expected" if self.control else
                   "FAILED" if self.problems else "passed")
        print(f"== [{self.manager}] {verdict}; figures: {json.dumps(self.figures)}", flush=True)
        if self.problems and (self.work / "guest.txt").exists():
            print(f"== [{self.manager}] guest log (tail):")
            print("\n".join((self.work / "guest.txt").read_text().splitlines()[-80:]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image_dir", type=Path)
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"some of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--tag", default=str(os.getpid()))
    parser.add_argument("--control", action="append", default=[], choices=SCENARIOS,
                        help="also run this scenario with eni-agent unable to write its files, "
                             "expecting the scenario to fail (proves it can)")
    args = parser.parse_args()
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt("SIGTERM")))
    # "m" in the tag: vm_runner (tests/vm/lib.sh) deletes eni-vm-<digits>-* namespaces whose
    # pid is gone, and <pid><index> is no live pid
    runs = [(m, False) for m in args.scenarios or SCENARIOS] + [(m, True) for m in args.control]
    results = []
    for i, (manager, control) in enumerate(runs):
        work = args.work_dir.resolve() / (manager + ("-control" if control else ""))
        results.append(Scenario(args.image_dir.resolve(), work, f"{args.tag}m{i}", manager,
                                control).run())
    (args.work_dir / "matrix.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n== network-manager matrix")
    for r in results:
        print(f"   {r['scenario']:18} {'FAILED' if r['problems'] else 'passed'}  "
              f"{json.dumps(r['figures'])}")
        for p in r["problems"]:
            print(f"      - {p}")
    return 1 if any(r["problems"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
