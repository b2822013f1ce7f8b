"""The Grafana dashboard in the chart only queries metrics Estuary actually exports.

Metric names are parsed out of every PromQL expression (panel targets and template variables) and
checked against what the operator registry and the agent registry expose, so renaming a metric
without fixing the dashboard fails here instead of showing an empty panel in production.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from estuary.agent.exporter import build_registry
from estuary.agent.report import DeviceReport, NodeReport
from estuary.metrics import OperatorMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "charts" / "estuary" / "dashboards" / "estuary.json"

_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (Grafana variables allowed)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables outside matchers
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = m.group(0)
        if word in _KEYWORDS or re.match(r"\s*\(", text[m.end() :]):
            continue  # a keyword, or a function / aggregation call
        names.add(word)
    return names


def counted_names(expr: str) -> set[str]:
    """Names passed straight to rate(), irate() or increase()."""
    text = re.sub(r"\{[^}]*\}", "", expr)
    return set(re.findall(r"\b(?:rate|irate|increase)\(\s*([A-Za-z_:][A-Za-z0-9_:]*)", text))


def exported(registry: CollectorRegistry) -> dict[str, str]:
    """Series name -> family type, as they appear on /metrics."""
    names: dict[str, str] = {}
    for family in registry.collect():
        if family.type == "counter":
            names[f"{family.name}_total"] = "counter"
        elif family.type == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names[family.name + suffix] = "histogram"
        else:
            names[family.name] = family.type
    return names


@pytest.fixture(scope="module")
def series() -> dict[str, str]:
    agent, collector = build_registry("n1", "nvidia")
    device = DeviceReport(index=0, uuid="GPU-0", model="NVIDIA H800", healthy=True)
    collector.update(NodeReport("nvidia", (device,)), datetime(2025, 3, 1, tzinfo=UTC))
    return exported(OperatorMetrics().registry) | exported(agent)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            yield f"variable {var['name']}", query


def test_the_name_parser_finds_metrics_and_skips_functions_labels_and_variables() -> None:
    expr = (
        "histogram_quantile(0.9, sum by (le, tenant) (rate(estuary_queue_wait_seconds_bucket"
        '{pool=~"$pool", tenant!="a b"}[$__rate_interval])))'
    )
    assert metric_names(expr) == {"estuary_queue_wait_seconds_bucket"}
    assert metric_names("count(up == 0) or vector(0)") == {"up"}
    assert metric_names("time() - max by (node) (last_poll) / on (node) group_left () other") == {
        "last_poll",
        "other",
    }
    assert metric_names("label_values(estuary_pool_accelerators, pool)") == {
        "estuary_pool_accelerators",
        "pool",
    }


def test_every_queried_metric_is_exported(dashboard: dict[str, Any], series: dict[str, str]) -> None:
    unknown = {
        (where, name)
        for where, expr in expressions(dashboard)
        for name in metric_names(expr)
        if name not in series and not where.startswith("variable")
    }
    assert unknown == set()


def test_template_variables_read_labels_of_exported_metrics(
    dashboard: dict[str, Any], series: dict[str, str]
) -> None:
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", var["query"]["query"])
            assert match, var["name"]
            assert match.group(1) in series


def test_rates_are_only_taken_of_counters_and_histograms(
    dashboard: dict[str, Any], series: dict[str, str]
) -> None:
    for where, expr in expressions(dashboard):
        for name in counted_names(expr):
            assert series.get(name) in {"counter", "histogram"}, (where, name)


def test_every_exported_metric_has_a_panel(dashboard: dict[str, Any], series: dict[str, str]) -> None:
    used = {name for _, expr in expressions(dashboard) for name in metric_names(expr)}
    families = {re.sub(r"_(bucket|sum|count)$", "", n) if series[n] == "histogram" else n for n in series}
    # The standard process and platform collectors' series (process_*, python_info) need no panel
    # each: the Operator replicas row shows memory and CPU.
    families = {f for f in families if not f.startswith(("process_", "python_"))}
    missing = {f for f in families if not any(u == f or u.startswith(f + "_") for u in used)}
    assert missing == set()


def test_panel_ids_are_unique_and_panels_fit_the_grid(dashboard: dict[str, Any]) -> None:
    panels = list(all_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        pos = p["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, p["title"]


def test_every_query_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    [var] = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
    assert (var["type"], var["query"]) == ("datasource", "prometheus")
    for panel in all_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
