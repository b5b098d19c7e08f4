"""Turning reports into text for people or JSON for scripts."""

from __future__ import annotations

import json

from eni_agent.engine import Report
from eni_agent.model import Metadata


def report_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, sort_keys=False)


def report_text(report: Report) -> str:
    lines = []
    for eni in report.enis:
        where = " ".join(
            part for part in (eni.link, f"table {eni.table}" if eni.table else None) if part
        )
        head = f"{eni.label}{' ' + where if where else ''}: {eni.state}"
        if eni.reason and eni.state not in ("in-sync", "configured", "out-of-sync", "failed"):
            head += f" ({eni.reason})"
        lines.append(head)
        verb = "would " if report.dry_run else ("needs: " if report.command == "status" else "")
        lines.extend(f"  {verb}{change}" for change in eni.changes)
        lines.extend(f"  error: {error}" for error in eni.errors)
        lines.extend(f"  warning: {warning}" for warning in eni.warnings)
    if report.other_changes:
        lines.append("everything eni-agent owns:" if report.command == "cleanup"
                     else "state of ENIs no longer attached or listed:")
        prefix = "would " if report.dry_run else ("needs: " if report.command == "status" else "")
        lines.extend(f"  {prefix}{change}" for change in report.other_changes)
    lines.extend(f"error: {error}" for error in report.errors)
    lines.append(_summary(report))
    return "\n".join(lines)


def _summary(report: Report) -> str:
    parts = report.tally()
    if report.command == "status":
        verdict = "in sync" if report.converged else "NOT in sync"
    elif report.dry_run:
        verdict = "dry run, nothing changed"
    else:
        verdict = "converged" if report.converged else "NOT converged"
    return f"{report.command}: {verdict}: {parts}"


def metadata_text(metadata: Metadata, source: str) -> str:
    lines = [f"{source}: valid, primary NIC {metadata.primary_mac}, "
             f"{len(metadata.secondary_enis)} secondary ENI(s)"]
    for eni in metadata.secondary_enis:
        ips = ", ".join(str(ip) for ip in eni.ips)
        lines.append(f"  {eni.name}: {ips} in {eni.cidr} via {eni.gateway}")
        if eni.ipv6s:
            ips = ", ".join(str(ip) for ip in eni.ipv6s)
            lines.append(f"  {' ' * len(eni.name)}  {ips} in {eni.ipv6_cidr} via {eni.ipv6_gateway}")
    return "\n".join(lines)


def metadata_json(metadata: Metadata, source: str) -> str:
    return json.dumps({
        "source": source,
        "valid": True,
        "primary_mac": metadata.primary_mac,
        "enis": [
            {"mac": e.mac, "eni_id": e.eni_id, "primary": e.mac == metadata.primary_mac,
             "ips": [str(ip) for ip in e.ips], "vswitch_cidr": str(e.cidr),
             "gateway": str(e.gateway), "ipv6s": [str(ip) for ip in e.ipv6s],
             "vswitch_ipv6_cidr": str(e.ipv6_cidr) if e.ipv6_cidr else None,
             "ipv6_gateway": str(e.ipv6_gateway) if e.ipv6_gateway else None}
            for e in metadata.enis
        ],
    }, indent=2)
