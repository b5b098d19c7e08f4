"""The tests' harness: small single-purpose helpers, imported by every test
file that needs them (test files never import each other). See docs/testing.md.

Network-namespace integration tests (need root):
  commands          run a command, in a namespace, ``ip``; sysctls; kernel counters
  namespaces        create/delete/sweep ``eni-t-*`` namespaces; in_netns (setns)
  enis              Eni, make_eni, primary_eni; the host's and router's addresses
  router            the router namespace: forwarding, strict reverse-path checks
  topology          Topology (guest / router / host), ipv6_topology
  metadata          metadata documents built from a topology, and writing them
  by_hand           configuring an ENI by hand (the baselines)
  kernel            the one kernel reader (ip -j, pyroute2 for IFA_PROTO); PROTOCOL
  expect            what a converged ENI looks like; eni_problems, ipv6_problems
  prober            the one TCP prober: inbound/outbound handshakes
  prefixes          a prefix delegated to eth1
  agent             Agent: one-shot commands in the guest
  daemon            DaemonProc: ``eni-agent daemon`` as a process, sd_notify
  metadata_service  serve_metadata: metadata_server.py in the router namespace
  metadata_server   the stand-in ECS metadata service (a program)

Unit tests (no root, no host):
  documents         example metadata documents and variations
  observed          configs, links, the agent's state for the example
  fake_netlink      FakeNetlink: an in-memory netlink adapter
  netlink_messages  kernel messages built with pyroute2's classes
"""
