"""Running eni-agent's one-shot commands (sync, status, validate, cleanup) in
a topology's guest namespace.

    agent = Agent(topo, tmp_path)
    agent.write()                       # build_metadata(topo) -> tmp_path/metadata.json
    res = agent.sync("--json")          # ip netns exec GUEST python -m eni_agent sync ...
    assert res.code == 0 and res.eni("eth1")["state"] == "configured"

Every run gets its own apply lock (``ENI_AGENT_LOCK`` under the test's
tmp_path), so tests never wait on a daemon or another test session, and an
empty ``--config`` unless the test passes its own, so a machine-wide
/etc/eni-agent/config.toml (scripts/install.sh) cannot change the results.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .commands import REPO, run_in
from .metadata import build_metadata, write_metadata
from .topology import Topology

COMMANDS = {"sync", "status", "validate", "cleanup"}


@dataclasses.dataclass
class Run:
    """One finished eni-agent command."""
    argv: list[str]
    cp: subprocess.CompletedProcess

    @property
    def code(self) -> int:
        return self.cp.returncode

    @property
    def stdout(self) -> str:
        return self.cp.stdout

    @property
    def stderr(self) -> str:
        return self.cp.stderr

    @functools.cached_property
    def json(self) -> dict[str, Any]:
        try:
            return json.loads(self.stdout)
        except ValueError as exc:
            raise AssertionError(f"not JSON: {exc}\n{self}") from None

    def eni(self, key: str) -> dict[str, Any]:
        """The JSON report entry of one ENI, by MAC (any case) or link name."""
        for entry in self.json["enis"]:
            if entry["mac"] == key.lower() or entry["link"] == key:
                return entry
        raise AssertionError(f"no ENI {key} in the report\n{self}")

    def states(self) -> dict[str, str]:
        """{link name or MAC: state} from the JSON report."""
        return {e["link"] or e["mac"]: e["state"] for e in self.json["enis"]}

    def __str__(self) -> str:
        return (f"$ eni-agent {' '.join(self.argv)}\n-> exit {self.code}\n"
                f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}")


class Agent:
    """eni-agent commands run as root inside ``topo.guest``."""

    def __init__(self, topo: Topology, workdir: Path) -> None:
        self.topo = topo
        self.workdir = Path(workdir)
        self.metadata = self.workdir / "metadata.json"
        self.env = {k: v for k, v in os.environ.items() if k != "ENI_AGENT_DEBUG"}
        self.env["ENI_AGENT_LOCK"] = str(self.workdir / "apply.lock")
        # Built-in defaults, but for the vswitch routes in main: the tests of
        # the ENI tables count what the agent owns; test_management_network.py
        # is about those routes (and runs with the defaults).
        self.no_config = write_config(self.workdir / "defaults.toml",
                                      "# integration tests\nsubnet_routes = false\n")

    def write(self, doc: dict[str, Any] | None = None) -> Path:
        """Write ``doc`` (default: build_metadata(topo)) as the metadata file, mode 0600."""
        return write_metadata(build_metadata(self.topo) if doc is None else doc, self.metadata)

    def run(self, *args: Any) -> Run:
        argv = [str(a) for a in args]
        if argv and argv[0] in COMMANDS and "--config" not in argv:
            argv[1:1] = ["--config", str(self.no_config)]
        cp = run_in(self.topo.guest, sys.executable, "-m", "eni_agent", *argv,
                    cwd=REPO, env=self.env, timeout=60)
        result = Run(argv, cp)
        assert "Traceback" not in cp.stderr, str(result)
        return result

    def sync(self, *args: Any, metadata: Path | str | None = None) -> Run:
        return self.run("sync", "--metadata", metadata or self.metadata, *args)

    def status(self, *args: Any, metadata: Path | str | None = None) -> Run:
        return self.run("status", "--metadata", metadata or self.metadata, *args)

    def validate(self, *args: Any, metadata: Path | str | None = None) -> Run:
        return self.run("validate", "--metadata", metadata or self.metadata, *args)

    def cleanup(self, *args: Any) -> Run:
        return self.run("cleanup", *args)

    def converge(self, *args: Any) -> Run:
        """``sync --json`` that must converge (exit 0)."""
        res = self.sync("--json", *args)
        assert res.code == 0, str(res)
        assert res.json["result"] == "converged", str(res)
        return res


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    """A config file (TOML) with ``mode``."""
    path.write_text(text)
    os.chmod(path, mode)
    return path


def assert_one_error_line(res: Run, code: int) -> str:
    """An expected failure: exit ``code``, nothing on stdout, exactly one
    ``eni-agent: `` line on stderr (returned)."""
    assert res.code == code, str(res)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eni-agent: "), str(res)
    assert res.stdout == "", str(res)
    return lines[0]
