"""tests/vm: a real VM (qemu) and Vagrant. Slow; see tests/vm/NOTES.md.

ENI_AGENT_VM_TESTS=0 skips them; =1 runs them even where qemu or vagrant is not
installed yet (they install it); unset: they run where the tools are present.
"""


def pytest_configure(config):
    config.addinivalue_line("markers", "vm: boots a real VM or runs vagrant (tests/vm)")
