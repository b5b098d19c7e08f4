# Sourced by .ci/run and examples/demo.sh: make a fresh Debian-like machine
# able to run eni-agent and its tests. Idempotent; prints what it installs.

bootstrap_system_packages() {
    local missing=()
    command -v ip >/dev/null || missing+=(iproute2)
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# What only the tests need: nftables (the IPv6 reverse-path check with nft's
# fib expression) and systemd-analyze (package systemd; the unit file checks,
# which need no running systemd). Best effort: a test that needs a missing one
# skips, which .ci/run counts as a failure (tests/conftest.py).
bootstrap_test_packages() {
    local missing=()
    command -v nft >/dev/null || missing+=(nftables)
    command -v systemd-analyze >/dev/null || missing+=(systemd)
    command -v keepalived >/dev/null || missing+=(keepalived)
    command -v man >/dev/null || missing+=(man-db)
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "== installing ${missing[*]} (tests)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; } ||
        echo "   (${missing[*]} unavailable; the tests needing them will skip)"
}

# bootstrap_venv SPEC: a venv in .venv with the package installed from this checkout.
bootstrap_venv() {
    if [ ! -x .venv/bin/python ]; then
        echo "== creating .venv"
        python3 -m venv .venv
    fi
    echo "== installing $1 (eni-agent) into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e "$1"
}
