"""Charts of a benchmark report and of the cost model, as PNG files (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; there is no display
import matplotlib.pyplot as plt


def latency_throughput(report: dict[str, Any], path: Path) -> Path:
    """Left: total p50/p95 per provider/model/size (PNG out). Right: images/s against clients."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    rows = [r for r in report["rows"] if r["format"] == "png"] or report["rows"]
    labels = [
        f"{r['provider']}\n{r['model']}\n{r['size']}" + (f"\n{r['precision']}" if r.get("asked") == "fast" else "")
        for r in rows
    ]
    p50 = [r["stages_ms"]["total"]["p50"] for r in rows]
    p95 = [r["stages_ms"]["total"]["p95"] for r in rows]
    x = range(len(rows))
    left.bar([i - 0.2 for i in x], p50, width=0.4, label="p50")
    left.bar([i + 0.2 for i in x], p95, width=0.4, label="p95")
    for b in report.get("rembg_baseline", []):
        left.axhline(b["total_ms"]["p50"], linestyle="--", linewidth=1, color="grey")
    left.set_xticks(list(x), labels, fontsize=7)
    left.set_ylabel("ms per image (dashed: rembg + PNG save)")
    left.set_title("Latency")
    left.legend()
    series: dict[str, tuple[list[int], list[float]]] = {}
    for t in report["throughput"]:
        clients, ips = series.setdefault(f"{t['provider']} {t['model']}", ([], []))
        clients.append(t["clients"])
        ips.append(t["images_per_second"])
    for name, (clients, ips) in series.items():
        right.plot(clients, ips, marker="o", label=name)
    right.set_xlabel("concurrent clients")
    right.set_ylabel("images / s")
    right.set_title("Throughput")
    right.legend(fontsize=8)
    fig.suptitle(f"{report['machine']['cpu']} · {report['measured_at']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cost_curve(points: list[dict[str, Any]], currency: str, path: Path) -> Path:
    """Cost per 1,000 images against daily volume, one line per option (log-log)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(p["option"] for p in points):
        mine = [p for p in points if p["option"] == name]
        ax.plot([p["volume_per_day"] for p in mine], [p["cost_per_1000"] for p in mine], label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("images per day")
    ax.set_ylabel(f"cost per 1,000 images ({currency})")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
