# make install    - system-wide install (see scripts/install.sh); then: systemctl enable --now eni-agent
# make uninstall  - stop, remove eni-agent's kernel state (cleanup), remove its files
# make test       - what CI runs: every tier (bash .ci/run)
# make test-unit, test-integration, test-vm, test-py39, test-packaging
#                 - one tier each (docs/ci-tiers.md)
.PHONY: install uninstall test test-unit test-integration test-vm test-py39 test-packaging demo
install:
	bash scripts/install.sh
uninstall:
	bash scripts/uninstall.sh
test:
	bash .ci/run
test-unit test-integration test-vm test-py39 test-packaging:
	bash .ci/run $(@:test-%=%)
demo:
	bash examples/demo.sh
