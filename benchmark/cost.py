"""The cost model: from measured throughput and latency to cost per image, per option.

Pure arithmetic, shown with its formula so an operator can check it:

    capacity/day  = throughput (images/s) x 3600 x hours per day
    machines      = ceil(daily volume / capacity per day)
    monthly cost  = machines x price per month
    cost/image    = monthly cost / (daily volume x days per month)

An option meets the latency target when its p95 latency is at or under it; the
recommendation is the cheapest option that meets the target for the volume.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from base.providers import GPU_PROVIDERS

DAYS_PER_MONTH = 30
#: Daily volumes the cost chart spans: 100 to 1,000,000 images, log-spaced.
CHART_VOLUMES = [round(10**e) for e in (2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6)]
FORMULA = (
    "capacity/day = images/s x 3600 x hours/day; machines = ceil(volume/day / capacity/day); "
    "monthly = machines x price/month; cost/image = monthly / (volume/day x 30)"
)


@dataclass(frozen=True)
class Option:
    """One way to serve: a machine kind with a provider and model, and what it achieved."""

    name: str
    images_per_second: float
    p95_ms: float
    price_per_month: float
    measured: bool = True  # False: entered by the user or from another machine's benchmark
    source: str = "measured here"


@dataclass(frozen=True)
class Costed:
    name: str
    capacity_per_day: float
    machines: int
    monthly_cost: float
    cost_per_image: float
    cost_per_1000: float
    p95_ms: float
    meets_latency: bool
    measured: bool
    source: str


def cost(option: Option, volume_per_day: float, hours_per_day: float, latency_target_ms: float) -> Costed:
    if option.images_per_second <= 0:
        raise ValueError(f"{option.name}: throughput must be positive")
    if volume_per_day <= 0 or not 0 < hours_per_day <= 24:
        raise ValueError("volume must be positive and hours per day between 0 and 24")
    capacity = option.images_per_second * 3600 * hours_per_day
    machines = max(1, math.ceil(volume_per_day / capacity))
    monthly = machines * option.price_per_month
    per_image = monthly / (volume_per_day * DAYS_PER_MONTH)
    return Costed(
        name=option.name,
        capacity_per_day=round(capacity),
        machines=machines,
        monthly_cost=round(monthly, 2),
        cost_per_image=per_image,
        cost_per_1000=round(per_image * 1000, 4),
        p95_ms=option.p95_ms,
        meets_latency=option.p95_ms <= latency_target_ms,
        measured=option.measured,
        source=option.source,
    )


def compare(
    options: list[Option], volume_per_day: float, hours_per_day: float, latency_target_ms: float
) -> dict[str, Any]:
    """Every option costed, and the cheapest one that meets the latency target."""
    rows = [cost(o, volume_per_day, hours_per_day, latency_target_ms) for o in options]
    eligible = [r for r in rows if r.meets_latency]
    best = min(eligible, key=lambda r: (r.monthly_cost, r.p95_ms)) if eligible else None
    if best is None:
        why = f"no option has p95 <= {latency_target_ms:.0f} ms; relax the target or add faster hardware"
    else:
        why = (
            f"{best.name}: {best.machines} machine(s) serve {volume_per_day:,.0f} images/day within "
            f"p95 {best.p95_ms:.0f} ms <= {latency_target_ms:.0f} ms for {best.monthly_cost:,.2f}/month "
            f"({best.cost_per_1000:.4f} per 1,000 images)"
        )
    return {
        "inputs": {
            "volume_per_day": volume_per_day,
            "hours_per_day": hours_per_day,
            "latency_target_ms": latency_target_ms,
        },
        "formula": FORMULA,
        "options": [asdict(r) for r in rows],
        "recommendation": best.name if best else None,
        "why": why,
    }


def curve(options: list[Option], hours_per_day: float, volumes: list[int] = CHART_VOLUMES) -> list[dict[str, Any]]:
    """Cost per 1,000 images against daily volume, per option (for the chart)."""
    return [
        {"option": o.name, "volume_per_day": v, "cost_per_1000": cost(o, v, hours_per_day, math.inf).cost_per_1000}
        for o in options
        for v in volumes
    ]


def options_from_report(
    report: dict[str, Any], cpu_price: float, gpu_price: float, measured_here: bool = True
) -> list[Option]:
    """One option per (provider, model, precision) of a benchmark report, at its best concurrency.

    A CPU machine is priced at ``precision=fast`` beside ``exact`` where the report has both
    (``fast``: the fastest build that passed the quality gate there, ``python -m models tune``).

    A row is priced as the machine it was measured on: every row of a report from a
    machine with a GPU (its CPU rows too) at the GPU machine's price, every row of a
    machine without one at the CPU machine's. Reports of ``python -m benchmark`` and
    of ``python -m benchmark gpu`` both carry ``throughput`` rows.
    """
    best: dict[tuple[str, str, str], dict[str, Any]] = {}
    for t in report.get("throughput", []):
        key = (t["provider"], t["model"], t.get("precision", "exact"))
        if key not in best or t["images_per_second"] > best[key]["images_per_second"]:
            best[key] = t
    machine = report.get("machine", {})
    on_gpu_machine = bool(machine.get("gpu")) or any(p in GPU_PROVIDERS for p, _, _ in best)
    where = machine_label(machine)
    options = []
    for (provider, model, precision), t in best.items():
        fast = " fast" if precision == "fast" else ""
        options.append(
            Option(
                name=f"{provider} {model}{fast} ({t['clients']} clients)" + ("" if measured_here else f" on {where}"),
                images_per_second=t["images_per_second"],
                p95_ms=t["latency_ms"]["p95"],
                price_per_month=gpu_price if on_gpu_machine else cpu_price,
                measured=measured_here,
                source="measured here" if measured_here else f"saved benchmark from {where}",
            )
        )
    return options


def machine_label(machine: dict[str, Any]) -> str:
    """A short name of the machine a report was measured on: its GPU, else its CPU and cores."""
    gpu = str(machine.get("gpu") or "").split(",")[0].strip()
    cores = machine.get("physical_cores")
    cpu = f"{machine.get('cpu', 'another machine')}" + (f", {cores} cores" if cores else "")
    return f"{gpu} with {cores} cores" if gpu and cores else gpu or cpu


def markdown(result: dict[str, Any], currency: str) -> str:
    """The result of ``compare`` as a Markdown table with the formula and the recommendation."""
    c = currency
    lines = [
        f"Formula: {result['formula']}",
        "",
        "| option | capacity/day | machines | per month | per image | per 1,000 | p95 ms | meets target | source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in result["options"]:
        lines.append(
            f"| {o['name']} | {o['capacity_per_day']:,.0f} | {o['machines']} | {c}{o['monthly_cost']:,.2f} | "
            f"{c}{o['cost_per_image']:.5f} | {c}{o['cost_per_1000']:.3f} | {o['p95_ms']:.0f} | "
            f"{'yes' if o['meets_latency'] else 'no'} | {o['source']} |"
        )
    lines += ["", f"Recommendation: {result['why']}"]
    return "\n".join(lines)
