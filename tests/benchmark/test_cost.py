"""Unit tier: the cost model's arithmetic, recommendation and chart data."""

from __future__ import annotations

import math

import pytest

from benchmark import cost

CPU = cost.Option("cpu u2net", images_per_second=1.0, p95_ms=1500, price_per_month=300)
GPU = cost.Option("gpu u2net", images_per_second=20.0, p95_ms=300, price_per_month=1800, measured=False)


def test_formula_by_hand() -> None:
    row = cost.cost(CPU, volume_per_day=10_000, hours_per_day=8, latency_target_ms=2000)
    assert row.capacity_per_day == 28_800  # 1 image/s x 3600 x 8
    assert row.machines == 1
    assert row.monthly_cost == 300
    assert row.cost_per_image == pytest.approx(300 / (10_000 * 30))
    assert row.cost_per_1000 == pytest.approx(1.0, abs=1e-4)
    assert row.meets_latency


def test_machines_scale_with_volume() -> None:
    row = cost.cost(CPU, volume_per_day=100_000, hours_per_day=8, latency_target_ms=2000)
    assert row.machines == math.ceil(100_000 / 28_800) == 4
    assert row.monthly_cost == 1200


def test_recommends_cheapest_meeting_target() -> None:
    low = cost.compare([CPU, GPU], volume_per_day=10_000, hours_per_day=8, latency_target_ms=2000)
    assert low["recommendation"] == "cpu u2net"
    strict = cost.compare([CPU, GPU], volume_per_day=10_000, hours_per_day=8, latency_target_ms=500)
    assert strict["recommendation"] == "gpu u2net"
    big = cost.compare([CPU, GPU], volume_per_day=1_000_000, hours_per_day=8, latency_target_ms=2000)
    assert big["recommendation"] == "gpu u2net"  # 35 CPU machines cost more than 2 GPU machines
    none = cost.compare([CPU], volume_per_day=10, hours_per_day=8, latency_target_ms=10)
    assert none["recommendation"] is None and "no option" in none["why"]
    assert "ceil" in low["formula"]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        cost.cost(cost.Option("x", 0, 1, 1), 10, 8, 1)
    with pytest.raises(ValueError):
        cost.cost(CPU, 10, 25, 1)


def test_curve_and_markdown() -> None:
    points = cost.curve([CPU, GPU], hours_per_day=8)
    assert {p["option"] for p in points} == {"cpu u2net", "gpu u2net"}
    cpu = [p["cost_per_1000"] for p in points if p["option"] == "cpu u2net"]
    assert cpu[0] > cpu[1]  # one machine's price spread over more images
    text = cost.markdown(cost.compare([CPU, GPU], 10_000, 8, 2000), "¥")
    assert "Recommendation" in text and "¥300.00" in text


def test_options_from_report_picks_best_concurrency() -> None:
    report = {
        "machine": {"cpu": "Test CPU", "gpu": None},
        "throughput": [
            {"provider": "cpu", "model": "u2net", "clients": 1, "images_per_second": 1.0, "latency_ms": {"p95": 900}},
            {"provider": "cpu", "model": "u2net", "clients": 2, "images_per_second": 1.2, "latency_ms": {"p95": 1700}},
            {"provider": "cuda", "model": "u2net", "clients": 4, "images_per_second": 30, "latency_ms": {"p95": 150}},
        ],
    }
    options = cost.options_from_report(report, cpu_price=300, gpu_price=1800, measured_here=False)
    by_name = {o.name: o for o in options}
    # A row is priced as the machine it was measured on: this machine ran cuda, so it has
    # a GPU, and its CPU row costs the GPU machine's price too.
    assert by_name["cpu u2net (2 clients) on Test CPU"].price_per_month == 1800
    assert by_name["cuda u2net (4 clients) on Test CPU"].price_per_month == 1800
    assert all(not o.measured and "Test CPU" in o.source for o in options)


def test_a_cpu_machines_rows_cost_the_cpu_price_and_gpu_reports_name_the_gpu() -> None:
    cpu_only = {
        "machine": {"cpu": "EPYC", "physical_cores": 2, "gpu": None},
        "throughput": [
            {"provider": "cpu", "model": "u2net", "clients": 1, "images_per_second": 1.3, "latency_ms": {"p95": 800}}
        ],
    }
    [row] = cost.options_from_report(cpu_only, cpu_price=300, gpu_price=1800)
    assert row.price_per_month == 300 and row.name == "cpu u2net (1 clients)" and row.source == "measured here"
    h200 = {
        "machine": {"cpu": "Xeon", "physical_cores": 16, "gpu": "NVIDIA H200, 143771 MiB"},
        "throughput": [
            {"provider": "cpu", "model": "u2net", "clients": 2, "images_per_second": 4.7, "latency_ms": {"p95": 490}}
        ],
    }
    [gpu_machine_cpu_row] = cost.options_from_report(h200, cpu_price=300, gpu_price=9000, measured_here=False)
    assert gpu_machine_cpu_row.price_per_month == 9000
    assert gpu_machine_cpu_row.source == "saved benchmark from NVIDIA H200 with 16 cores"


def test_a_cpu_machine_is_priced_at_fast_beside_exact() -> None:
    report = {
        "machine": {"cpu": "Test CPU", "gpu": None},
        "throughput": [
            {"provider": "cpu", "model": "u2net", "clients": 1, "images_per_second": 0.5, "latency_ms": {"p95": 2100}},
            {
                "provider": "cpu", "model": "u2net", "clients": 1, "precision": "fast",
                "images_per_second": 1.5, "latency_ms": {"p95": 700},
            },
        ],
    }  # fmt: skip
    by_name = {o.name: o for o in cost.options_from_report(report, cpu_price=300, gpu_price=1800)}
    assert set(by_name) == {"cpu u2net (1 clients)", "cpu u2net fast (1 clients)"}
    assert by_name["cpu u2net fast (1 clients)"].images_per_second == 1.5
    assert by_name["cpu u2net (1 clients)"].images_per_second == 0.5
    result = cost.compare(list(by_name.values()), volume_per_day=30_000, hours_per_day=8, latency_target_ms=3000)
    costs = {o["name"]: o["monthly_cost"] for o in result["options"]}
    assert costs["cpu u2net fast (1 clients)"] < costs["cpu u2net (1 clients)"]
    assert result["recommendation"] == "cpu u2net fast (1 clients)"
