"""The WebUI's read-outs as HTML: the last request's stages, p50/p95 since start, recent requests, models.

Plain HTML and inline SVG built here from the engine's request log, so that they
render the same in every browser, need no plotting library and read without
JavaScript. Every value that comes from outside (model names, errors) is escaped.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from base.settings import Settings
from core import Engine, available_providers
from core.catalog import model_facts
from core.pipeline import STAGES
from models import fetch, measured
from models.registry import MODELS

STAGE_COLOURS = {
    "decode": "#94a3b8",
    "preprocess": "#38bdf8",
    "inference": "#6366f1",
    "postprocess": "#f59e0b",
    "encode": "#10b981",
}
PROVIDER_COLOURS = {"cpu": "#6366f1", "cuda": "#16a34a", "tensorrt": "#ea580c", "openvino": "#0891b2"}
OTHER_COLOUR = "#64748b"
#: Results of ``python -m benchmark`` on this machine, where it has been run (``benchmark.__main__.DEFAULT_OUT``).
BENCHMARK_JSON = Path(__file__).resolve().parent.parent / "benchmark" / "results" / "benchmark.json"
#: Requests the recent-requests chart shows.
CHART_REQUESTS = 60


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def ms(value: float) -> str:
    """A duration for people: 840 ms, 1.2 s, 63 s."""
    if not math.isfinite(value):
        return "–"
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.1f} s" if value < 10_000 else f"{value / 1000:.0f} s"


def provider_colour(provider: str) -> str:
    return PROVIDER_COLOURS.get(provider, OTHER_COLOUR)


# --- the last request ---------------------------------------------------------------------


def last_request_html(report: Mapping[str, Any] | None) -> str:
    """A stacked bar of the stage times of one request, with what ran it."""
    if not report:
        return '<div class="readout-empty">The stages of your next request show here.</div>'
    timings: dict[str, float] = report.get("timings_ms", {})
    total = timings.get("total", 0.0) or 1.0
    segments = "".join(
        f'<span class="seg" style="flex-grow:{max(timings.get(s, 0.0), 0.0):.1f};background:{STAGE_COLOURS[s]}" '
        f'title="{s} {ms(timings.get(s, 0.0))}"></span>'
        for s in STAGES
    )
    legend = "".join(
        f'<li><i style="background:{STAGE_COLOURS[s]}"></i>{s} <b>{ms(timings.get(s, 0.0))}</b></li>' for s in STAGES
    )
    provider = str(report.get("provider", ""))
    size = f"{report.get('width')}×{report.get('height')}"
    ran_on = report.get("ran_on")  # --ray-address: the Ray Serve replica and node that ran it
    where = (
        f'<div class="ran-on">on the Ray cluster: replica <code>{esc(ran_on.get("replica", ""))}</code>, '
        f"node <code>{esc(str(ran_on.get('node', ''))[:12])}</code></div>"
        if isinstance(ran_on, Mapping)
        else ""
    )
    return (
        f'<div class="last-request" data-provider="{esc(provider)}" data-total="{total:.1f}">'
        f'<div class="last-title"><span class="chip" style="background:{provider_colour(provider)}">'
        f"{esc(provider.upper())}</span> <b>{esc(report.get('model', ''))}</b> · {esc(size)} · "
        f"{esc(report.get('format', ''))} · {report.get('bytes', 0) / 1024:,.0f} KB · total <b>{ms(total)}</b></div>"
        f'<div class="stagebar" role="img" aria-label="{esc(_stages_text(timings))}">{segments}</div>'
        f'<ul class="legend">{legend}</ul>{where}</div>'
    )


def _stages_text(timings: Mapping[str, float]) -> str:
    return "; ".join(f"{s} {ms(timings.get(s, 0.0))}" for s in STAGES)


# --- p50/p95 since start ----------------------------------------------------------------------


def history_html(engine: Engine) -> str:
    """p50/p95 of the total time per provider, over every request since the server started."""
    histograms = engine.requests.since_start("provider")
    if not histograms:
        return '<div class="readout-empty">No requests since the server started.</div>'
    rows = "".join(
        f'<tr><td><span class="dot" style="background:{provider_colour(p)}"></span>{esc(p)}</td>'
        f"<td>{h.total}</td><td>{ms(h.percentile(50))}</td><td>{ms(h.percentile(95))}</td></tr>"
        for p, h in histograms.items()
    )
    return (
        '<table class="history"><caption>Since the server started (all users)</caption>'
        "<thead><tr><th>provider</th><th>requests</th><th>p50</th><th>p95</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


# --- recent requests ------------------------------------------------------------------------------


def recent_chart_html(engine: Engine) -> str:
    """The last requests as bars of their total time, coloured by provider, legend on top."""
    samples = engine.requests.samples()[-CHART_REQUESTS:]
    if not samples:
        return '<div class="readout-empty">Recent requests show here.</div>'
    width, height, top, bottom, left = 360, 150, 22, 18, 40
    peak = max(s.total_ms for s in samples) or 1.0
    step = (width - left) / max(len(samples), 12)
    bars = []
    for i, s in enumerate(samples):
        h = (height - top - bottom) * s.total_ms / peak
        bars.append(
            f'<rect x="{left + i * step + 1:.1f}" y="{height - bottom - h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{max(h, 1):.1f}" fill="{provider_colour(s.provider)}">'
            f"<title>{esc(s.model)} on {esc(s.provider)}: {ms(s.total_ms)}</title></rect>"
        )
    providers = sorted({s.provider for s in samples})
    legend = "".join(
        f'<rect x="{width - 70 * (len(providers) - i)}" y="4" width="10" height="10" fill="{provider_colour(p)}"/>'
        f'<text x="{width - 70 * (len(providers) - i) + 14}" y="13">{esc(p)}</text>'
        for i, p in enumerate(providers)
    )
    axis = (
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{ms(peak)}</text>'
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end">0</text>'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}"/>'
        f'<text x="{left}" y="{height - 4}">older</text>'
        f'<text x="{width}" y="{height - 4}" text-anchor="end">newest</text>'
    )
    return (
        f'<figure class="recent"><figcaption>Last {len(samples)} requests, total time</figcaption>'
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="recent requests by provider">'
        f'<g class="axis">{axis}</g><g class="bars">{"".join(bars)}</g><g class="chart-legend">{legend}</g>'
        "</svg></figure>"
    )


# --- providers ------------------------------------------------------------------------------------


def provider_choices() -> tuple[list[tuple[str, str]], str]:
    """The Run-on radio's choices (those that can run) and a disclosure of those that cannot, with why."""
    infos = available_providers()
    choices = [("Auto", "auto")] + [(p.name.upper(), p.name) for p in infos if p.available]
    missing = [p for p in infos if not p.available]
    if not missing:
        return choices, ""
    names = " · ".join(esc(p.name.upper()) for p in missing)
    reasons = "".join(f"<li><b>{esc(p.name.upper())}</b>: {esc(p.reason)}</li>" for p in missing)
    return choices, (
        f'<details class="unavailable"><summary><span class="long">{names} <span>(unavailable: why)</span></span>'
        f'<span class="short">{len(missing)} unavailable: why</span></summary><ul>{reasons}</ul></details>'
    )


# --- models -----------------------------------------------------------------------------------------


def runnable_models(settings: Settings) -> list[str]:
    """Models whose weights are here and verified and that run on this machine's providers; the
    default model always (it is fetched on first use)."""
    present = [f["name"] for f in model_facts(settings) if f["ready"] and f["offered"]]
    if settings.default_model not in present:
        present.insert(0, settings.default_model)
    return present


def _benchmark_speeds() -> dict[str, tuple[str, float]]:
    """model -> (provider, p50 total ms of a 1080p PNG) from this machine's saved benchmark, if any."""
    try:
        report = json.loads(BENCHMARK_JSON.read_text())
        rows = report["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    out: dict[str, tuple[str, float]] = {}
    for row in rows if isinstance(rows, list) else []:
        try:
            if row["size"] == "1080p" and row["format"] == "png" and row["model"] not in out:
                out[row["model"]] = (row["provider"], float(row["stages_ms"]["total"]["p50"]))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def model_label(name: str, settings: Settings, engine: Engine, benchmark: Mapping[str, tuple[str, float]]) -> str:
    """``u2netp · 0.4 s CPU``: the model's speed measured here (or by the benchmark), and its closeness to u2net."""
    parts = [name]
    speed = engine.requests.model_speed(name)
    if speed is not None:
        provider, p50, _ = speed
        parts.append(f"{ms(p50)} {provider.upper()}")
    elif name in benchmark:
        provider, p50 = benchmark[name]
        parts.append(f"{ms(p50)} {provider.upper()} (benchmark, 1080p)")
    elif name in MODELS and not fetch.status(MODELS[name], settings.model_home, settings.rembg_home).verified:
        parts.append("fetched on first use")
    figures = measured.figures(settings.model_home, name)
    if figures and figures.get("alpha_mae") is not None:
        parts.append(f"alpha MAE {figures['alpha_mae']:.2f} vs {measured.REFERENCE}")
    return " · ".join(parts)


def model_choices(settings: Settings, engine: Engine) -> list[tuple[str, str]]:
    benchmark = _benchmark_speeds()
    return [(model_label(n, settings, engine, benchmark), n) for n in runnable_models(settings)]


def more_models_html(settings: Settings) -> str:
    """The models that are not here, behind a disclosure, each with the command that gets it."""
    here = set(runnable_models(settings))
    rows = [
        f"<li><b>{esc(f['name'])}</b>: {esc(f['description'])}<br>"
        + (
            esc(f"not run by this server: {f['not_here']}")
            if f["not_here"]
            else f"<code>{esc(f['get'])}</code>, or put {esc(', '.join(f['files']))} in {esc(f['folder'])} "
            f"from {esc(', '.join(f['urls']))}"
        )
        + "</li>"
        for f in model_facts(settings)
        if f["name"] not in here and (f["get"] or f["not_here"])
    ]
    if not rows:
        return ""
    return (
        f'<details class="more-models"><summary>{len(rows)} more models (not on this server)</summary>'
        f"<p>Fetch or build one on the server, then reload this page:</p><ul>{''.join(rows)}</ul></details>"
    )
