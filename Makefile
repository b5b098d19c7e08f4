# make install    - system-wide install (see scripts/install.sh); then: systemctl enable --now eni-agent
# make uninstall  - stop, remove eni-agent's kernel state (cleanup), remove its files
# make test       - what CI runs
.PHONY: install uninstall test demo
install:
	bash scripts/install.sh
uninstall:
	bash scripts/uninstall.sh
test:
	bash .ci/run
demo:
	bash examples/demo.sh
