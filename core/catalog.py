"""Which models can run here and what each costs and gives: the model menu, ``/healthz``, the fast choice.

Presence and verification come from the weights folder (``models.fetch``), the figures
from what this machine measured (``models.measured``: the build gates and the benchmark).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from base.errors import RemovalError
from base.providers import PROVIDERS
from base.settings import Settings
from core import custom
from core.precision import choice_for
from core.precision import describe as describe_choice
from core.providers import resolve
from models import measured, tuned
from models.fetch import BUILD_COMMAND, FETCH_COMMAND, status
from models.registry import MODELS, Url

#: The fast model everywhere; on a CPU, u2net-int8 replaces it where it is installed (it passed
#: its gate: closer to u2net than u2netp on every photo, and as fast).
FAST = "u2netp"
FAST_ON_CPU = "u2net-int8"
#: Built for CPUs: not offered on a GPU provider (the benchmark measures it there when asked).
CPU_ONLY = frozenset({"u2net-int8"})
#: Built for GPUs: not offered on a CPU, where they give u2net's masks more slowly (float16 is
#: emulated, a batch dimension gains nothing); the API still runs them where a caller names them.
GPU_ONLY = frozenset({"u2net-fp16", "u2net-dynamic"})


def offered(name: str, where: str) -> bool:
    """Whether the menus offer ``name`` on the provider ``where``: not a build for the other kind of machine."""
    return name not in (CPU_ONLY if PROVIDERS[where].gpu else GPU_ONLY)


def _where(settings: Settings, provider: str) -> str:
    """The provider a request for ``provider`` runs on (``auto`` resolved), or ``cpu``."""
    try:
        return resolve(provider)[0]
    except RemovalError:  # unavailable: its requests fail with the reason; the menu shows the CPU's view
        return "cpu"


def _figures(home: Path, model: str, where: str) -> dict[str, Any] | None:
    """What was measured of ``model`` on ``where``, else on the CPU (a GPU provider not measured yet)."""
    return measured.figures(home, model, where) or (measured.figures(home, model, "cpu") if where != "cpu" else None)


def fast_model(settings: Settings, provider: str) -> str:
    """The model to use where speed matters most (the webcam's live mode): u2net-int8 on the CPU
    where it is installed, else u2netp."""
    on_cpu = not PROVIDERS[_where(settings, provider)].gpu
    if on_cpu and status(MODELS[FAST_ON_CPU], settings.model_home).verified:
        return FAST_ON_CPU
    return FAST


def precision_facts(settings: Settings, model: str, provider: str = "auto") -> dict[str, Any]:
    """What ``precision=exact`` and ``precision=fast`` run for ``model`` here, and what tune measured of it."""
    rows = tuned.candidates(settings.model_home, model)
    out: dict[str, Any] = {"tuned": bool(rows)}
    for word in ("exact", "fast"):
        try:
            choice = choice_for(settings.model_home, model, provider, word)
        except RemovalError as exc:
            out[word] = {"error": exc.message}
            continue
        where = "cpu" if choice.provider == "auto" else choice.provider
        row = next(
            (
                r
                for r in rows
                if (r.get("provider"), r.get("precision"), r.get("weights"))
                == (where, choice.precision, choice.weights)
            ),
            {},
        )
        out[word] = {
            "runs": describe_choice(choice),
            "weights": choice.weights,
            "provider": choice.provider,
            "precision": choice.precision,
            "inference_ms": row.get("inference_ms"),
            "speedup": row.get("speedup"),
            "mean_mae": row.get("mean_mae"),
            "note": choice.note,
        }
    return out


def model_facts(settings: Settings, provider: str = "auto") -> list[dict[str, Any]]:
    """Every registry model and every custom model of the server: present and verified here,
    offered on ``provider``, its figures, and for one that is not here the command that fetches or
    builds it, the file, the folder it belongs in and the URL it comes from."""
    where = _where(settings, provider)
    home = settings.model_home
    out = []
    for spec in MODELS.values():
        st = status(spec, home, settings.rembg_home)
        figures = _figures(home, spec.name, where)
        command = f"{BUILD_COMMAND if spec.build else FETCH_COMMAND} {spec.name}"
        urls = [s.url for s in spec.sources if isinstance(s, Url)] + [url for _, _, url in spec.companions]
        out.append(
            {
                "name": spec.name,
                "description": spec.description,
                "family": spec.family,
                "ready": st.verified,
                "offered": offered(spec.name, where),
                "measured": figures,
                "summary": measured.describe(figures),
                "path": str(st.path) if st.verified else None,
                "get": None if st.verified else command,
                "precision": precision_facts(settings, spec.name, provider) if spec.build is None else None,
                "files": [spec.filename, *(name for name, _, _ in spec.companions)],
                "folder": str(home),
                "urls": urls,
            }
        )
    for entry in settings.custom_model:
        spec, path = custom.parse(entry)
        # By name, as the registry's: ``python -m benchmark models`` measures the server's own models too.
        figures = _figures(home, spec.name, where)
        out.append(
            {
                "name": spec.name,
                "description": spec.description,
                "family": spec.family,
                "ready": path.is_file(),
                "offered": True,
                "measured": figures,
                "summary": measured.describe(figures),
                "path": str(path),
                "get": None,
                "files": [path.name],
                "folder": str(path.parent),
                "urls": [],
                "precision": None,
            }
        )
    return out
