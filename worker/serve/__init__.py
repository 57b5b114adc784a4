"""The `radraft serve` process: its components started in order (`process`), and the hooks it
wires between them: an order's change re-runs the rules and prefetches priors (`orders`), a
rules load audits rules moving between shadow and live (`rule_modes`)."""

from radraft.worker.serve.process import Component, build_components, rules_watcher, serve

__all__ = ["Component", "build_components", "rules_watcher", "serve"]
