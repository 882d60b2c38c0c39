"""Ansible's linear strategy over Mitogen's persistent connections.

Mitogen (pinned in requirements/toolchain.txt) keeps one Python interpreter
open on each host for the whole run and sends modules to it, instead of
starting a `docker exec` or SSH session and a fresh interpreter for every
task. On the lab that halves an idempotent site.yml (bench/deploy.py).
Mitogen documents enabling it by pointing `strategy_plugins` at its package;
ansible.cfg cannot name a path inside the venv, so this file re-exports the
strategy from the installed package. Opt out per run with
ANSIBLE_STRATEGY=linear.
"""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
