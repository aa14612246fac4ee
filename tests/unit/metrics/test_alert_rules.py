"""The shipped Prometheus rules: promtool's unit tests, and what an on-call person reads."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.helpers import ROOT

RULES = ROOT / "etc" / "prometheus" / "orderd-rules.yml"
RULE_TESTS = ROOT / "tests" / "prometheus" / "orderd-rules.test.yml"
OPERATIONS = ROOT / "docs" / "operations.md"


def rules() -> dict[str, str]:
    """Each alerting rule's name and its text, up to the next rule."""
    text = RULES.read_text()
    starts = list(re.finditer(r"^\s*- alert: (\w+)$", text, re.M))
    ends = [m.start() for m in starts[1:]] + [len(text)]
    return {m.group(1): text[m.start():end] for m, end in zip(starts, ends, strict=True)}


def anchors(markdown: str) -> set[str]:
    """The anchors a Markdown renderer gives the headings (GitHub's rule)."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_promtool_unit_tests_of_every_rule_pass() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (CI installs Debian's prometheus package)")
    done = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_is_tested_firing_and_quiet() -> None:
    cases = re.findall(r"alertname: (\w+)\n\s+exp_alerts:(.*)", RULE_TESTS.read_text())
    firing = {name for name, rest in cases if rest.strip() != "[]"}
    quiet = {name for name, rest in cases if rest.strip() == "[]"}
    names = set(rules())
    assert len(names) >= 12
    assert names - firing == set(), "rules never tested firing"
    assert names - quiet == set(), "rules never tested staying quiet"


def test_every_rule_has_a_severity_a_summary_and_a_runbook_section() -> None:
    sections = anchors(OPERATIONS.read_text())
    for name, text in rules().items():
        assert re.search(r"severity: (critical|warning|info)\n", text), name
        assert re.search(r"summary: \S", text), name
        runbook = re.search(r"runbook_url: docs/operations\.md#([\w-]+)\n", text)
        assert runbook is not None, name
        assert runbook.group(1) in sections, f"{name}: no section #{runbook.group(1)}"


def test_an_operators_halt_is_info_and_the_daemons_own_pages() -> None:
    found = rules()
    assert 'orderd_daemon_halted{by="operator"}' in found["OrderdHaltedByOperator"]
    assert "severity: info" in found["OrderdHaltedByOperator"]
    assert 'orderd_daemon_halted{by="automatic"}' in found["OrderdHalted"]
    assert "severity: critical" in found["OrderdHalted"]
