"""The one settings table, read once into a frozen ``Settings`` object.

Each field of ``Settings`` is a row: name, type, default, help and environment
variable. The CLI flags (``app.py --help``), the settings table of docs/configuration.md and the
health endpoint are all generated from ``SETTINGS``. This module is the only
place in the project that reads ``os.environ``; everything else receives a
``Settings`` object explicitly. It sits below the model registry, so it checks
that ``default_model`` is a well-formed name; ``core.Engine`` checks that the
registry has it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from base.providers import PRECISION_CHOICES, PROVIDER_CHOICES

LOG_LEVELS = ("debug", "info", "warning", "error")
PROCESSING = ("auto", "exact", "graph")
#: The batch sizes a batched session runs (and warms up at load), padded up to the next one.
BATCH_SIZES = (1, 2, 4, 8, 16, 32)
ENV_PREFIX = "REMBG_WEBUI_"


#: Gradio's own environment, set before Gradio is imported (``quiet_gradio``): its analytics looked
#: up api.gradio.app and huggingface.co at every start, and a self-hosted service must not call home.
#: An operator who wants them sets the variable; it is a default, not a lock.
GRADIO_ENVIRONMENT = {"GRADIO_ANALYTICS_ENABLED": "False"}


def quiet_gradio(environ: MutableMapping[str, str] | None = None) -> None:
    """Gradio's environment defaults (``GRADIO_ENVIRONMENT``), where the environment has none."""
    env = os.environ if environ is None else environ
    for name, value in GRADIO_ENVIRONMENT.items():
        env.setdefault(name, value)


def quiet_openvino() -> None:
    """Call before ``import openvino``: no telemetry leaves this server.

    ``import openvino`` sends an "import" event to Google Analytics (``openvino.tools.ovc``, through
    the ``openvino_telemetry`` package, which the ``openvino`` wheel depends on) unless the user has
    opted out in a file under their home. With ``openvino_telemetry`` unimportable, openvino uses its
    own stub, which sends nothing; nothing else here uses that package.
    """
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]  # None: "cannot import"


class SettingsError(ValueError):
    """A setting has a bad value (from a flag or an environment variable)."""


def _setting(default: Any, help: str, env: str | None = None, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, "env": env, **extra})


@dataclass(frozen=True)
class Settings:
    """Every knob of the service. Build with ``load_settings``; never mutate."""

    model_home: Path = _setting(  # noqa: RUF009 - a constant, evaluated once like any default
        Path("~/.u2net").expanduser(),
        "Folder holding the model weights (shared with rembg).",
        env="U2NET_HOME",
    )
    rembg_home: Path | None = _setting(  # noqa: RUF009 - a constant, like model_home's
        None,
        "rembg's data folder; weights are also looked for in its models/NAME/ (default, as rembg 2.0.86: "
        "$XDG_DATA_HOME/rembg, else ~/.rembg).",
        env="REMBG_HOME",
    )
    custom_model: tuple[str, ...] = _setting(
        (),
        "A model file of the operator's, NAME=FAMILY:PATH (FAMILY: u2net, isnet, ben2, birefnet or bria); "
        "repeatable, ';' between entries in the environment. Checked at start; requests name it by NAME.",
        repeat=True,
    )
    default_model: str = _setting("u2net", "Model used when a request names none.")
    default_provider: str = _setting("auto", "Execution provider when a request names none.", choices=PROVIDER_CHOICES)
    default_precision: str = _setting(
        "exact",
        "Precision when a request names none: exact (masks equal rembg's) or fast (the fastest build that passed "
        "the quality gate here; python -m models tune measures them). On CUDA, fast is TF32.",
        choices=PRECISION_CHOICES,
    )
    fetch_missing: bool = _setting(True, "Fetch a missing model on first use (else fail with the fetch command).")
    threads: int = _setting(0, "onnxruntime intra-op threads per session; 0 = physical cores.")
    gpu_device: int = _setting(0, "GPU index (among the visible ones) for the cuda and tensorrt providers.")
    inference_concurrency: int = _setting(
        1, "Requests that may run inference at once on one session (1 serialises CPU)."
    )
    processing: str = _setting(
        "auto",
        "Where resizing runs: exact (Pillow on the CPU), graph (ONNX on the provider, same masks), auto "
        "(graph on a GPU).",
        choices=PROCESSING,
    )
    batching: str = _setting(
        "auto",
        "Run requests that arrive together as one inference call: on, off, auto (on a GPU).",
        choices=("auto", "on", "off"),
    )
    batch_window_ms: int = _setting(2, "How long a batch waits for more requests, at most (ms).")
    max_batch: int = _setting(32, "Largest batch (1, 2, 4 ... 32); the GPU memory budget may lower it.")
    gpu_memory_mb: int = _setting(0, "GPU memory one session may hold, MB (0 = no limit); it caps the batch size.")
    gpu_precision: str = _setting(
        "fp32",
        "GPU convolution precision: fp32 (masks equal the CPU's) or tf32 (faster, masks differ); tf32 makes every "
        "CUDA session TF32, as --default-precision fast does for its requests (kept for older deployments).",
        choices=("fp32", "tf32"),
    )
    max_upload_bytes: int = _setting(
        32 * 1024 * 1024,
        "Largest accepted input, in bytes; a request body may be this plus 64 KiB of form framing and fields.",
    )
    max_batch_bytes: int = _setting(
        256 * 1024 * 1024, "Largest Gradio upload request, in bytes (the WebUI sends a gallery's files in one)."
    )
    upload_disk_mb: int = _setting(
        0,
        "Disk all of Gradio's stored uploads may take together, MiB; an upload past it is refused with 507 "
        "(0: half the disk free at start where Gradio keeps them).",
    )
    max_pixels: int = _setting(40_000_000, "Largest accepted input, width x height (and at most 65,535 per side).")
    decode_budget_s: float = _setting(
        5.0, "CPU seconds one image may take to decode before it is refused as image_too_complex."
    )
    matting_max_pixels: int = _setting(
        1_000_000, "Alpha matting runs on at most this many pixels; a larger image is matted smaller, then upsampled."
    )
    session_memory_mb: int = _setting(
        1024, "Memory for loaded model sessions, MiB; the least recently used are unloaded to stay under it (0: none)."
    )
    memory_budget_mb: int = _setting(
        0,
        "Memory all removals in progress may hold together, MiB; each is costed from its headers before "
        "decoding and waits until it fits (0: half the memory available at start, container limits included).",
    )
    allow_url_input: bool = _setting(
        False, "Let GET /api/remove?url= fetch images by URL (public http/https hosts only; SSRF-guarded)."
    )
    host: str = _setting("127.0.0.1", "Address to listen on (0.0.0.0 for all).")
    port: int = _setting(7860, "Port for the WebUI, the Gradio API and the REST API.")
    share: bool = _setting(False, "Create a public Gradio share link.")
    auth: str | None = _setting(None, "user:password, or a file with one user:password per line, to require a login.")
    queue_size: int = _setting(32, "Requests waiting in Gradio's queue before new ones are refused.")
    shutdown_timeout_s: int = _setting(
        60, "On SIGTERM, seconds that running and queued jobs get to finish (new ones are refused) before exit."
    )
    read_timeout_s: int = _setting(
        30, "Seconds a client may take to send a request's headers, or pause while sending its body."
    )
    max_failed_logins: int = _setting(
        10, "Failed logins per client address per minute (REST and WebUI); more are refused with 429."
    )
    ray_address: str | None = _setting(
        None,
        "Send each removal to the Ray Serve deployment on this Ray cluster (host:port of its head, or auto); "
        "unset: removals run in this process.",
    )
    serve_min_replicas: int = _setting(1, "Ray Serve: fewest replicas of the removal deployment.")
    serve_max_replicas: int = _setting(2, "Ray Serve: most replicas of the removal deployment (autoscaling).")
    serve_target_ongoing: float = _setting(
        2.0, "Ray Serve: ongoing requests per replica the autoscaler aims at (more: add replicas)."
    )
    serve_cpus_per_replica: float = _setting(1.0, "Ray Serve: CPUs each removal replica reserves.")
    serve_gpus_per_replica: float = _setting(
        0.0, "Ray Serve: GPUs each removal replica reserves (0.25: four share one)."
    )
    mcp: bool = _setting(False, "Also serve the endpoints as MCP tools.")
    benchmark_tab: bool = _setting(True, "Show the WebUI's Benchmark tab (it runs the benchmark on this machine).")
    log_level: str = _setting("info", "Logging level.", choices=LOG_LEVELS)

    def public_dict(self) -> dict[str, Any]:
        """The settings as JSON-safe values, secrets masked (for the health endpoint)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "auth":
                value = "set" if value else None
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out


SETTINGS: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(Settings)


def env_name(f: dataclasses.Field[Any]) -> str:
    return f.metadata.get("env") or ENV_PREFIX + f.name.upper()


def flag_name(f: dataclasses.Field[Any]) -> str:
    return "--" + f.name.replace("_", "-")


def _kind(f: dataclasses.Field[Any]) -> str:
    # Annotations are strings under ``from __future__ import annotations``.
    return str(f.type).split(" |")[0]


def _convert(f: dataclasses.Field[Any], raw: str, source: str) -> Any:
    kind = _kind(f)
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(raw)
            return value
        if kind == "Path":
            return Path(raw).expanduser()
        if f.metadata.get("repeat"):
            return tuple(part.strip() for part in raw.split(";") if part.strip())
        return raw
    except ValueError:
        raise SettingsError(f"{source}: expected {kind}, got {raw!r}") from None


#: What a model name may look like (registry names: u2net, isnet-general-use, u2net_human_seg).
MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def _validate(s: Settings) -> None:
    for f in SETTINGS:
        choices = f.metadata.get("choices")
        if choices and getattr(s, f.name) not in choices:
            raise SettingsError(f"{flag_name(f)}: choose one of {', '.join(choices)}")
    if not MODEL_NAME.fullmatch(s.default_model) or ".." in s.default_model:
        raise SettingsError(f"--default-model: {s.default_model!r} is not a model name")
    if not 0 < s.port < 65536:
        raise SettingsError("--port: must be between 1 and 65535")
    if s.max_batch not in BATCH_SIZES:
        raise SettingsError(f"--max-batch: choose one of {', '.join(map(str, BATCH_SIZES))}")
    if not 0 <= s.batch_window_ms <= 100 or s.gpu_memory_mb < 0:
        raise SettingsError("--batch-window-ms: 0 to 100; --gpu-memory-mb: 0 or more")
    _validate_ranges(s)
    auth_users(s.auth)


def _validate_ranges(s: Settings) -> None:
    for name in (
        "max_upload_bytes",
        "max_batch_bytes",
        "max_pixels",
        "matting_max_pixels",
        "queue_size",
        "inference_concurrency",
        "read_timeout_s",
        "max_failed_logins",
    ):
        if getattr(s, name) < 1:
            raise SettingsError(f"--{name.replace('_', '-')}: must be at least 1")
    for name in ("decode_budget_s",):
        if not getattr(s, name) > 0:
            raise SettingsError(f"--{name.replace('_', '-')}: must be more than 0")
    for name in ("session_memory_mb", "shutdown_timeout_s", "memory_budget_mb", "upload_disk_mb"):
        if getattr(s, name) < 0:
            raise SettingsError(f"--{name.replace('_', '-')}: must be 0 or more")
    if not 1 <= s.serve_min_replicas <= s.serve_max_replicas or s.serve_target_ongoing <= 0:
        raise SettingsError("--serve-min-replicas: 1 to --serve-max-replicas; --serve-target-ongoing: more than 0")
    if s.serve_cpus_per_replica < 0 or s.serve_gpus_per_replica < 0:
        raise SettingsError("--serve-cpus-per-replica, --serve-gpus-per-replica: 0 or more")
    if s.threads < 0:
        raise SettingsError("--threads: must be 0 (auto) or more")
    if s.gpu_device < 0:
        raise SettingsError("--gpu-device: must be 0 or more")


def auth_users(value: str | None) -> list[tuple[str, str]]:
    """``--auth``: ``user:password``, or a file of such lines (``#`` comments); [] when unset."""
    if not value:
        return []
    path = Path(value).expanduser()
    if ":" in value or not path.is_file():
        lines = [value]
    else:
        lines = [line.strip() for line in path.read_text().splitlines()]
    users = [tuple(line.split(":", 1)) for line in lines if line and not line.startswith("#")]
    if not users or any(len(u) != 2 or not u[0] or not u[1] for u in users):
        raise SettingsError("--auth: expected user:password, or a file with one user:password per line")
    return [(u[0], u[1]) for u in users]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, no usage dump
        raise SettingsError(message)


def build_parser(prog: str = "app.py", description: str | None = None) -> argparse.ArgumentParser:
    """The CLI flags, one per row of the table; defaults come from the environment."""
    parser = _Parser(prog=prog, description=description, allow_abbrev=False)
    for f in SETTINGS:
        help_text = f"{f.metadata['help']} [env {env_name(f)}; default {f.default}]"
        if f.metadata.get("repeat"):
            parser.add_argument(flag_name(f), dest=f.name, action="append", default=None, help=help_text)
        elif _kind(f) == "bool":
            parser.add_argument(
                flag_name(f),
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag_name(f),
                dest=f.name,
                default=None,
                metavar=f.name.upper(),
                choices=f.metadata.get("choices"),
                help=help_text,
            )
    return parser


def visible_gpu_count(environ: Mapping[str, str] | None = None) -> int | None:
    """How many GPUs ``CUDA_VISIBLE_DEVICES`` leaves visible; None when it is unset.

    Read here because this module is the one place that reads the environment.
    """
    visible = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return None
    return len([v for v in visible.split(",") if v.strip() and v.strip() != "-1"])


def load_settings(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    parser: argparse.ArgumentParser | None = None,
) -> Settings:
    """Defaults, overridden by environment variables, overridden by flags.

    Raises ``SettingsError`` with a one-line message on any bad value.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in SETTINGS:
        raw = env.get(env_name(f))
        if raw is not None:
            values[f.name] = _convert(f, raw, env_name(f))
    if argv is not None:
        args = (parser or build_parser()).parse_args(list(argv))
        for f in SETTINGS:
            raw = getattr(args, f.name, None)
            if isinstance(raw, list):  # a repeatable flag: each use is one entry
                values[f.name] = tuple(entry for item in raw for entry in _convert(f, item, flag_name(f)))
            elif raw is not None:
                values[f.name] = raw if isinstance(raw, bool) else _convert(f, raw, flag_name(f))
    if values.get("rembg_home") is None:
        # rembg 2.0.86's BaseSession.rembg_home; with $U2NET_HOME set rembg uses that instead, whose
        # models/NAME/ folders are looked in anyway (models.fetch.search_paths).
        xdg = env.get("XDG_DATA_HOME")
        values["rembg_home"] = Path(xdg) / "rembg" if xdg else Path("~/.rembg").expanduser()
    settings = Settings(**values)
    _validate(settings)
    return settings


def settings_table_markdown() -> str:
    """The settings table of docs/configuration.md, generated from the same rows."""
    lines = ["| flag | environment variable | default | meaning |", "|---|---|---|---|"]
    for f in SETTINGS:
        default = {"model_home": "~/.u2net", "rembg_home": "~/.rembg", "custom_model": "none"}.get(f.name, f.default)
        lines.append(f"| `{flag_name(f)}` | `{env_name(f)}` | `{default}` | {f.metadata['help']} |")
    return "\n".join(lines)
