"""Keeping other network managers off the ENIs eni-agent configures.

NetworkManager, left alone, runs DHCP on every new NIC and may take a
secondary ENI over (oci-utils has the same fix): with `networkmanager_unmanaged
= true`, eni-agent keeps a conf.d file that marks the listed ENIs' MACs
unmanaged, and asks NetworkManager to reload its config when it changes.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile

log = logging.getLogger("eni_agent.coexist")

NM_CONF_DIR = "/etc/NetworkManager/conf.d"
NM_CONF_NAME = "90-eni-agent-unmanaged.conf"


def nm_unmanaged_text(macs: list[str]) -> str:
    lines = ["# Written by eni-agent (networkmanager_unmanaged = true): the secondary ENIs",
             "# are configured by eni-agent; NetworkManager must not run DHCP on them.",
             "[keyfile]"]
    if macs:
        lines.append("unmanaged-devices+=" + ";".join(f"mac:{mac}" for mac in sorted(macs)))
    return "\n".join(lines) + "\n"


def ensure_nm_unmanaged(macs: list[str], conf_dir: str = NM_CONF_DIR) -> bool:
    """Write the conf.d file if its content changed; True if it did."""
    if not os.path.isdir(conf_dir):
        return False  # NetworkManager is not installed
    path = os.path.join(conf_dir, NM_CONF_NAME)
    text = nm_unmanaged_text(macs)
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=conf_dir, prefix=".eni-agent-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    log.info("wrote %s (%d ENI MAC(s) unmanaged by NetworkManager)", path, len(macs))
    nmcli = shutil.which("nmcli")
    if nmcli:
        result = subprocess.run([nmcli, "general", "reload", "conf"], capture_output=True,
                                text=True, timeout=10, check=False)
        if result.returncode != 0:
            log.warning("nmcli general reload conf failed: %s", result.stderr.strip()[:200])
    return True


def keep_others_off(config, metadata) -> None:
    """Apply the coexistence options of `config` for `metadata`'s ENIs; a
    failure here is logged, never fatal (the routing matters more)."""
    if not config.networkmanager_unmanaged:
        return
    try:
        ensure_nm_unmanaged([eni.mac for eni in metadata.secondary_enis])
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("cannot keep NetworkManager off the ENIs: %s", e)
