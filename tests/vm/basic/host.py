#!/usr/bin/env python3
"""The basic VM scenario, host half: one guest, its NICs, a hot-add, probes, verdict.

The network is the lab's (tests/vm/lab/network.py): qemu in the router
namespace, every private IP routed to its own ENI's tap through strict
rp_filter, so a TCP handshake from the client namespace to an ENI address
succeeds only if the guest answers through the right NIC.

The guest half (guest/eni-vm-test.py) reports on its second serial port, which
qemu writes to a file here; this script drives the run through QMP and judges.
Usage (as root; run.sh builds the image):

    python3 tests/vm/basic/host.py IMAGE_DIR WORK_DIR
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.vm.lab import TestFailure, scenario_args  # noqa: E402
from tests.vm.lab.network import Network, Nic, load_nics  # noqa: E402
from tests.vm.lab.probes import ContinuousProbe, Prober  # noqa: E402
from tests.vm.lab.qemu import Vm  # noqa: E402
from tests.vm.lab.state import check_state  # noqa: E402
from tests.vm.lab.verdict import Verdict  # noqa: E402

HOTPLUG_LIMIT = 15.0  # seconds from device_add to a TCP handshake with the new ENI


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


def exposure_score(line: str) -> float | None:
    # "→ Overall exposure level for eni-agent.service: 1.9 OK 🙂"
    try:
        return float(line.split(":", 1)[1].split()[0])
    except (IndexError, ValueError):
        return None


# -- the test ----------------------------------------------------------------------

class VmTest(Verdict):
    def __init__(self, image_dir: Path, work: Path, tag: str):
        super().__init__()
        self.nics, self.plan = load_nics(tag)
        self.net = Network(tag, self.nics)
        self.vm = Vm(image_dir, work, self.net)
        self.work = work
        self.report: Report | None = None

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
    args = scenario_args(__doc__, "qmp socket, report, console, figures")
    return VmTest(args.image_dir, args.work_dir, args.tag).run()


if __name__ == "__main__":
    sys.exit(main())
