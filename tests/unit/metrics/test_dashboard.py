"""The shipped Grafana dashboard: one daemon at a time, and every line named."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.helpers import ROOT

DASHBOARD = ROOT / "etc" / "grafana" / "orderd-dashboard.json"
SELECTOR = re.compile(r"\b((?:orderd|process)_\w+)(\{[^}]*\})?")


def targets() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target for panel in dashboard["panels"] for target in panel["targets"]]


def test_an_instance_variable_from_orderd_targets() -> None:
    variables = json.loads(DASHBOARD.read_text())["templating"]["list"]
    instance = next(v for v in variables if v["name"] == "instance")
    assert instance["type"] == "query"
    assert "label_values(orderd_build_info, instance)" in json.dumps(instance["query"])


def test_every_query_selects_the_instance() -> None:
    for target in targets():
        selectors = SELECTOR.findall(target["expr"])
        assert selectors, target["expr"]
        for name, labels in selectors:
            assert 'instance=~"$instance"' in labels, f"{name} in {target['expr']}"


def test_every_target_has_a_legend() -> None:
    for target in targets():
        assert target.get("legendFormat", "").strip(), target["expr"]


def test_process_metrics_and_the_version_are_shown() -> None:
    exprs = " ".join(target["expr"] for target in targets())
    for name in ("orderd_build_info", "process_cpu_seconds_total",
                 "process_resident_memory_bytes", "process_start_time_seconds"):
        assert name in exprs
