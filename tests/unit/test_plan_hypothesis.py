"""Property tests of plan() over random observed and desired sets."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eni_agent.desired import Desired
from eni_agent.plan import Action, Change, plan
from eni_agent.state import Address, Link, Observed, Route, Rule

BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])

INDEXES = [3, 4, 5]
# Both families, so sorting across them is exercised too.
IPS = [IPv4Address(f"10.0.1.{i}") for i in (10, 11, 12)] + [IPv6Address("2001:db8:1::10")]
NETS = [IPv4Network("10.0.1.0/24"), IPv4Network("10.0.0.0/16"), IPv4Network("0.0.0.0/0"),
        IPv6Network("2001:db8:1::/64"), IPv6Network("fe80::/64"), IPv6Network("::/0")]
GATEWAYS = [None, IPv4Address("10.0.1.253"), IPv6Address("fe80::1")]
TABLES = [10003, 10004, 10005]

# Every object the strategies draw from, built once: sampling them is cheap.
ADDRESSES = [Address(i, ip, p) for i in INDEXES for ip in IPS
             for p in ((16, 24) if ip.version == 4 else (64,))]
ROUTES = [Route(t, net, i, gw) for t in TABLES for net in NETS for i in INDEXES for gw in GATEWAYS
          if gw is None or gw.version == net.version]
RULES = [Rule(prio, ip, t) for prio in (500, 10000) for ip in IPS for t in TABLES]
LINKS = {i: [Link(i, f"eth{i}", "02:00:00:00:00:01", up, None, keep)
             for up in (True, False) for keep in (True, False)] for i in INDEXES}


# Strategies are built once, not per draw: building them is what costs.
some_addresses = st.lists(st.sampled_from(ADDRESSES), max_size=5)
some_routes = st.lists(st.sampled_from(ROUTES), max_size=5)
some_rules = st.lists(st.sampled_from(RULES), max_size=5)
link_at = {i: st.sampled_from(LINKS[i]) for i in INDEXES}
link_indexes = st.lists(st.sampled_from(INDEXES), unique=True)


def unique_keys(items: list[Route]) -> frozenset[Route]:
    """At most one route per (table, dst), as the kernel holds them (no metrics)."""
    return frozenset({route.key: route for route in items}.values())


def table_of(index: int) -> int:
    return 10000 + index  # TABLES are table_base 10000 + an index of INDEXES


@st.composite
def states(draw):
    link_list = [draw(link_at[i]) for i in sorted(draw(link_indexes))]
    observed = Observed(
        links=tuple(link_list),
        addresses=frozenset(draw(some_addresses)),
        routes=unique_keys(draw(some_routes)),
        rules=frozenset(draw(some_rules)),
        foreign_addresses=frozenset(draw(some_addresses)),
    )
    # Links of ENIs that need an operator (ambiguous, conflict): what the agent
    # owns there is frozen, chosen as desired_state's _left_alone chooses it,
    # and nothing desired lives on those links or in their tables.
    frozen_at = set(draw(st.lists(st.sampled_from(INDEXES), unique=True, max_size=2)))
    frozen_addresses = {a for a in observed.addresses if a.index in frozen_at}
    frozen_routes = {r for r in observed.routes if r.oif in frozen_at}
    frozen_tables = {r.table for r in frozen_routes} | {table_of(i) for i in frozen_at}
    frozen_rules = {r for r in observed.rules if r.table in frozen_tables}
    up = [draw(st.booleans()) for _ in link_list]
    desired = Desired(
        addresses=frozenset(a for a in draw(some_addresses) if a.index not in frozen_at),
        routes=unique_keys([r for r in draw(some_routes)
                            if r.oif not in frozen_at and r.table not in frozen_tables]),
        rules=frozenset(r for r in draw(some_rules) if r.table not in frozen_tables),
        up_links=frozenset(link for link, u in zip(link_list, up)
                           if u and link.index not in frozen_at),
        frozen=frozenset(frozen_addresses | frozen_routes | frozen_rules),
    )
    return desired, observed


def simulate(observed: Observed, changes: list[Change]) -> Observed:
    """What the kernel would hold after applying `changes`, on the owned sets."""
    links = {link.index: link for link in observed.links}
    addrs, rts, rls = set(observed.addresses), set(observed.routes), set(observed.rules)
    for change in changes:
        target, action = change.target, change.action
        if action is Action.LINK_UP:
            links[target.index] = links[target.index]._replace(up=True)
        elif action is Action.KEEP_SECONDARIES:
            links[target.index] = links[target.index]._replace(promote_secondaries=True)
        else:
            pool = {Address: addrs, Route: rts, Rule: rls}[type(target)]
            if action is Action.REMOVE:
                assert target in pool
                pool.discard(target)
            elif action is Action.REPLACE:
                assert any(r.key == target.key for r in pool)
                pool.difference_update({r for r in pool if r.key == target.key})
                pool.add(target)
            else:
                assert target not in pool, f"{target} added twice"
                if isinstance(target, Route):
                    assert all(r.key != target.key for r in pool), f"{target}: EEXIST"
                pool.add(target)
    return observed._replace(links=tuple(sorted(links.values())), addresses=frozenset(addrs),
                   routes=frozenset(rts), rules=frozenset(rls))


def reobserved(desired: Desired, observed: Observed) -> Desired:
    """desired_state picks its up_links from the observed links; do the same."""
    by_index = {link.index: link for link in observed.links}
    return desired._replace(up_links=frozenset(by_index[link.index] for link in desired.up_links))


def rank(change: Change) -> int:
    order = {Action.KEEP_SECONDARIES: 0, Action.LINK_UP: 4}
    if change.action in order:
        return order[change.action]
    kind = {Rule: 0, Route: 1, Address: 2}[type(change.target)]
    if change.action is Action.REMOVE:
        return 1 + kind  # rules, routes, addresses
    return 7 - kind  # addresses, routes, rules


@BOUNDED
@given(states())
def test_plan_properties(state):
    desired, observed = state
    changes = plan(desired, observed)

    # Only owned objects are ever removed, and never a desired one.
    owned = observed.addresses | observed.routes | observed.rules
    wanted = desired.addresses | desired.routes | desired.rules
    for change in changes:
        if change.action is Action.REMOVE:
            assert change.target in owned and change.target not in wanted, change

    # What an ENI that needs an operator holds is neither removed nor replaced.
    for change in changes:
        assert change.target not in desired.frozen, change

    # An address someone else holds on the link is never added again.
    held = {(a.index, a.ip) for a in observed.foreign_addresses}
    for change in changes:
        if isinstance(change.target, Address) and change.action is Action.ADD:
            assert (change.target.index, change.target.ip) not in held, change

    # promote_secondaries is set before an IPv4 address leaves a link without it.
    for change in changes:
        if change.action is Action.REMOVE and isinstance(change.target, Address) \
                and change.target.version == 4:
            link = next((x for x in observed.links if x.index == change.target.index), None)
            if link is not None and not link.promote_secondaries:
                assert Change(Action.KEEP_SECONDARIES, link) in changes

    # No change twice; removals before additions; rules last; subnet before default.
    assert len(changes) == len(set(changes))
    ranks = [rank(c) for c in changes]
    assert ranks == sorted(ranks), [str(c) for c in changes]
    added_routes = [c.target for c in changes
                    if isinstance(c.target, Route) and c.action is not Action.REMOVE]
    for a, b in zip(added_routes, added_routes[1:]):
        if (a.table, a.version) == (b.table, b.version):
            assert a.dst.prefixlen >= b.dst.prefixlen


@BOUNDED
@given(states())
def test_applying_the_plan_converges(state):
    desired, observed = state
    after = simulate(observed, plan(desired, observed))

    assert plan(reobserved(desired, after), after) == []
    # What is desired and not held by someone else is now owned; nothing else is.
    # What is frozen stays as it was.
    held = {(a.index, a.ip) for a in observed.foreign_addresses}
    assert after.addresses == {a for a in desired.addresses
                               if (a.index, a.ip) not in held or a in observed.addresses} \
        | (observed.addresses & desired.frozen)
    assert after.routes == desired.routes | (observed.routes & desired.frozen)
    assert after.rules == desired.rules | (observed.rules & desired.frozen)
    assert after.foreign_addresses == observed.foreign_addresses
    up_now = {link.index for link in after.links if link.up}
    assert up_now >= {link.index for link in desired.up_links}
