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
from core import Engine, RemovalError, available_providers
from core.catalog import model_facts, precision_facts
from core.pipeline import STAGES
from core.providers import resolve
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


#: What each stage is, in words, for the readout's sentence ("most of it was the model").
STAGE_WORDS = {
    "decode": "reading the image",
    "preprocess": "preparing the image",
    "inference": "the model",
    "postprocess": "finishing the edges",
    "encode": "saving the result",
}


def provider_words(provider: str) -> str:
    """``the CPU``, ``the GPU (CUDA)``: what ran a request, for a sentence."""
    return "the CPU" if provider == "cpu" else f"the GPU ({provider.upper()})" if provider else "this server"


def summary_sentence(report: Mapping[str, Any]) -> str:
    """One sentence for people: "Done in 0.7 s on the CPU; most of it was the model"."""
    timings: Mapping[str, float] = report.get("timings_ms", {})
    total = timings.get("total", 0.0)
    slowest = max(STAGES, key=lambda s: timings.get(s, 0.0))
    sentence = f"Done in {ms(total)} on {provider_words(str(report.get('provider', '')))}"
    if total > 0 and timings.get(slowest, 0.0) >= total / 2:
        sentence += f"; most of it was {STAGE_WORDS[slowest]}"
    return sentence + "."


def last_request_html(report: Mapping[str, Any] | None) -> str:
    """One sentence, a stacked bar of the stage times, and the details (model, size, each stage) behind a disclosure."""
    if not report:
        return '<div class="readout-empty">How long your next image takes shows here.</div>'
    timings: dict[str, float] = report.get("timings_ms", {})
    total = timings.get("total", 0.0) or 1.0
    segments = "".join(
        f'<span class="seg" style="flex-grow:{max(timings.get(s, 0.0), 0.0):.1f};background:{STAGE_COLOURS[s]}" '
        f'title="{STAGE_WORDS[s]} ({s}) {ms(timings.get(s, 0.0))}"></span>'
        for s in STAGES
    )
    legend = "".join(
        f'<li><i style="background:{STAGE_COLOURS[s]}"></i>{STAGE_WORDS[s]} ({s}) <b>{ms(timings.get(s, 0.0))}</b></li>'
        for s in STAGES
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
        f'<p class="last-sentence">{esc(summary_sentence(report))}</p>'
        f'<div class="stagebar" role="img" aria-label="{esc(_stages_text(timings))}">{segments}</div>'
        '<details class="last-details"><summary>Details</summary>'
        f'<div class="last-title"><span class="chip" style="background:{provider_colour(provider)}">'
        f"{esc(provider.upper())}</span> <b>{esc(report.get('model', ''))}</b> · {esc(size)} · "
        f"{esc(report.get('format', ''))} · {report.get('bytes', 0) / 1024:,.0f} KB · total <b>{ms(total)}</b></div>"
        f'<ul class="legend">{legend}</ul></details>{where}</div>'
    )


def _stages_text(timings: Mapping[str, float]) -> str:
    return "Time by step: " + "; ".join(f"{STAGE_WORDS[s]} {ms(timings.get(s, 0.0))}" for s in STAGES)


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
    # "typical" is the median (p50) and "slow" the 95th percentile: their names stay in the cells' titles.
    return (
        '<details class="history-box"><summary>Statistics since the server started (all users)</summary>'
        '<table class="history">'
        '<thead><tr><th>ran on</th><th>images</th><th title="p50, the median">typical</th>'
        '<th title="p95: 1 in 20 took longer">slow</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></details>"
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
        f'<details class="recent-box"><summary>The last {len(samples)} images, the time each took</summary>'
        f'<figure class="recent"><svg viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="The time each of the last {len(samples)} images took, by what ran it">'
        f'<g class="axis">{axis}</g><g class="bars">{"".join(bars)}</g><g class="chart-legend">{legend}</g>'
        "</svg></figure></details>"
    )


# --- providers ------------------------------------------------------------------------------------


def runs_on_words() -> str:
    """The header's line: "Runs on this server's CPU" (where "Auto" sends a request)."""
    try:
        where = resolve("auto")[0]
    except RemovalError:
        where = "cpu"
    return f"Runs on this server's {'CPU' if where == 'cpu' else f'GPU ({where.upper()})'}; your images stay here"


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
        '<details class="unavailable"><summary>'
        f'<span class="long">{names} <span>(not available here: why)</span></span>'
        f'<span class="short">{len(missing)} more, not available here: why</span></summary><ul>{reasons}</ul></details>'
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


def closeness_words(mae: float) -> str:
    """How close a mask is to the reference's, in words, from their mean alpha difference (0-255)."""
    return "looks the same" if mae < 0.5 else "nearly the same" if mae < 2 else "rougher edges"


def precision_choices(settings: Settings, model: str) -> list[tuple[str, str]]:
    """The Precision control's choices in words: Exact, and Fast with how close its masks came and how
    much quicker it ran in ``python -m models tune`` on this machine (for ``model``, on the default provider)."""
    fast = precision_facts(settings, model, settings.default_provider).get("fast") or {}
    if fast.get("error") or fast.get("note") or not fast.get("speedup"):
        words = "Fast · the same as Exact here"  # nothing faster passed the gate here, or tune has not run
    else:
        mae = fast.get("mean_mae")
        look = f" · {closeness_words(mae)}" if mae is not None else ""
        words = f"Fast{look} · {fast['speedup']:.1f}x quicker"
    return [("Exact · the reference masks", "exact"), (words, "fast")]


def model_words(facts: list[dict[str, Any]]) -> dict[str, str]:
    """model -> what a person chooses between, from the catalogue's facts alone: "Best quality",
    "Fast · looks the same", "Fastest · rougher edges". Speed is the model's time against the
    reference's, quality its alpha difference from the reference (``models.measured``); a model
    without figures says what its description says."""
    by_name = {f["name"]: f for f in facts}
    reference_ms = ((by_name.get(measured.REFERENCE) or {}).get("measured") or {}).get("inference_ms")
    timed = {
        f["name"]: f["measured"]["inference_ms"]
        for f in facts
        if f["name"] != measured.REFERENCE and f["measured"] and f["measured"].get("inference_ms")
    }
    fastest = min(timed, key=lambda n: timed[n]) if timed else None
    words: dict[str, str] = {}
    for f in facts:
        name, figures = f["name"], f["measured"] or {}
        if name == measured.REFERENCE:
            words[name] = "Best quality"
            continue
        mae, took = figures.get("alpha_mae"), figures.get("inference_ms")
        what = str(f["description"]).split(" (")[0]
        if not took or not reference_ms:
            words[name] = what
            continue
        speed = "Fastest" if name == fastest and took < reference_ms else "Fast" if took < reference_ms else "Slower"
        # How far a mask is from u2net's says how much a lighter build of it loses; another family's
        # network is not a rougher u2net but a different one, so it says what it is for instead.
        same_family = f["family"] == (by_name.get(measured.REFERENCE) or {}).get("family")
        words[name] = f"{speed} · {closeness_words(mae)}" if same_family and mae is not None else f"{speed} · {what}"
    # Models that share words: the fastest keeps them; the others say what they are for, when their
    # description says so briefly ("for GPUs"), else that they are another build of the same.
    took = {f["name"]: (f["measured"] or {}).get("inference_ms") or math.inf for f in facts}
    out: dict[str, str] = {}
    for name, text in words.items():
        same = sorted((n for n, t in words.items() if t == text), key=lambda n: (took[n], n))
        out[name] = text if same[0] == name else _told_apart(text, name, str(by_name[name]["description"]))
    if len(set(out.values())) < len(out):  # still two alike: the names tell them apart
        return {n: t if list(out.values()).count(t) == 1 else f"{t} ({n})" for n, t in out.items()}
    return out


def _told_apart(words: str, name: str, description: str) -> str:
    """Words another model has too, with what this one is for ("for GPUs"), from its description."""
    purpose = description.split(" (")[0].rsplit(", ", 1)[-1]
    if purpose.startswith("for ") and len(purpose) <= 16:
        return f"{words} · {purpose}"
    return f"{words} · another build"


def model_label(
    name: str, words: Mapping[str, str], settings: Settings, engine: Engine, benchmark: Mapping[str, tuple[str, float]]
) -> str:
    """``Fast · looks the same · 0.4 s here``: the model's words (``model_words``), then its time for one
    image, measured here, or by the benchmark, or by the build; the figures behind it are in ``more_models_html``."""
    parts = [words.get(name, name)]
    speed = engine.requests.model_speed(name)
    figures = measured.figures(settings.model_home, name)
    if speed is not None:
        parts.append(f"{ms(speed[1])} here")
    elif name in benchmark:
        parts.append(ms(benchmark[name][1]))
    elif name in MODELS and not fetch.status(MODELS[name], settings.model_home, settings.rembg_home).verified:
        parts.append("downloads on first use")
    elif figures and figures.get("inference_ms"):
        parts.append(ms(figures["inference_ms"]))
    return " · ".join(parts)


def model_choices(settings: Settings, engine: Engine) -> list[tuple[str, str]]:
    benchmark = _benchmark_speeds()
    words = model_words(model_facts(settings))
    return [(model_label(n, words, settings, engine, benchmark), n) for n in runnable_models(settings)]


def more_models_html(settings: Settings) -> str:
    """What the model menu's words stand for, with the figures measured here, and the models that are
    not here, each with the command that gets it; behind a disclosure."""
    here = runnable_models(settings)
    facts = model_facts(settings)
    words = model_words(facts)
    by_name = {f["name"]: f for f in facts}
    known = [
        f'<li data-model="{esc(n)}" data-words="{esc(words.get(n, n))}"><b>{esc(words.get(n, n))}</b> is '
        f"<b>{esc(n)}</b>: {esc(by_name[n]['description'])}. "
        f"Measured here: {esc(measured.describe(by_name[n]['measured']))}.</li>"
        for n in here
        if n in by_name
    ]
    rows = [
        f"<li><b>{esc(f['name'])}</b>: {esc(f['description'])}<br>"
        f"<code>{esc(f['get'])}</code>, or put {esc(', '.join(f['files']))} in {esc(f['folder'])} "
        f"from {esc(', '.join(f['urls']))}</li>"
        for f in facts
        if f["name"] not in here and f["get"]
    ]
    more = (
        f"<p>{len(rows)} more models (not on this server): fetch or build one on the server, then reload this page.</p>"
        f"<ul>{''.join(rows)}</ul>"
        if rows
        else ""
    )
    # Here, but built for the other kind of machine (core.catalog.offered): said, so that none goes missing.
    elsewhere = [
        f"<li><b>{esc(f['name'])}</b>: {esc(f['description'])}</li>"
        for f in facts
        if f["name"] not in here and f["ready"] and not f["offered"]
    ]
    if elsewhere:
        more += f"<p>On this server, built for another kind of machine:</p><ul>{''.join(elsewhere)}</ul>"
    title = "What the model choices mean" + (f", and {len(rows)} more models" if rows else "")
    return (
        f'<details class="more-models"><summary>{title}</summary>'
        "<p>Times are for one image; the difference is how far each model's mask is from the best one's "
        f"(mean alpha difference, 0-255, vs {measured.REFERENCE}).</p>"
        f'<ul class="known-models">{"".join(known)}</ul>{more}</details>'
    )
