"""The Prometheus alert rules: valid for promtool, and naming only metrics that /metrics really exports."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

RULES = Path(__file__).resolve().parents[2] / "ops" / "prometheus" / "alerts.yml"
REQUIRED_ALERTS = {
    "UsersServiceHighErrorRatio",
    "UsersServiceHighLatencyP99",
    "UsersServiceDependencyDown",
    "UsersServiceLoginFailureSpike",
    "UsersServiceRateLimitSpike",
}
# Prometheus' own series (scrape health), not exported by the service.
PROMETHEUS_SERIES = {"up"}
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "histogram_quantile", "abs", "vector",
    "inf", "nan",
}  # fmt: skip


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """Return the series names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range durations
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"\boffset\s+\w+", "", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[match.end() :].lstrip()
        if match[0] not in PROMQL_WORDS and not rest.startswith("("):
            names.add(match[0])
    return names


def test_metric_name_extraction_finds_each_selected_series():
    assert metric_names('sum by (le) (rate(a_bucket{route!~"/x|/y"}[5m])) > 3 * b offset 1d') == {"a_bucket", "b"}
    assert metric_names("min by (instance, dependency) (dependency_up) == 0") == {"dependency_up"}


def test_every_required_alert_is_defined_with_severity_and_summary():
    by_name = {rule["alert"]: rule for rule in rules()}

    assert REQUIRED_ALERTS <= set(by_name)
    for rule in by_name.values():
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_series() -> set[str]:
    """Return every series name /metrics declares, labelled ones included before their first sample."""
    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return {
        family.name + suffix
        for family in text_string_to_metric_families(response.content.decode())
        for suffix in SUFFIXES.get(family.type, ("",))
    }


@pytest.mark.django_db
def test_every_expression_names_only_metrics_the_service_exports():
    exported = exported_series()

    for rule in rules():
        unknown = metric_names(rule["expr"]) - exported - PROMETHEUS_SERIES
        assert not unknown, f"{rule['alert']} names metrics /metrics does not export: {unknown}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian package prometheus)")
def test_promtool_accepts_the_rules():
    result = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian package prometheus)")
def test_alerts_fire_on_the_series_they_watch_and_not_before():
    tests = RULES.with_name("alerts_test.yml")

    result = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
