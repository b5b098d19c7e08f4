"""eni-agent's tests: tests/harness (the helpers), unit, integration, vm."""
