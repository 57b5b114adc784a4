"""Routing rules: the admin's YAML, a safe declarative evaluator, and the facts it reads."""

from radraft.dicom_node.rules.facts import StudyFacts, facts_for_study, facts_from_folder
from radraft.dicom_node.rules.loader import load_rules
from radraft.dicom_node.rules.model import Rule, RuleOutcome, RuleSet
from radraft.dicom_node.rules.watch import RulesWatcher

__all__ = [
    "Rule",
    "RuleOutcome",
    "RuleSet",
    "RulesWatcher",
    "StudyFacts",
    "facts_for_study",
    "facts_from_folder",
    "load_rules",
]
