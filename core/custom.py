"""Custom models: files of the operator's, registered at start under a name (``--custom-model``).

``NAME=FAMILY:PATH`` covers rembg's ``u2net_custom``, ``dis_custom`` and ``ben_custom`` sessions
(and BiRefNet or BRIA exports): the family says how to feed the network (``CUSTOM_FAMILIES``).
The file is named by the operator at start, never by a request; requests name the model. It is
checked at start (an ONNX file with one image input of the family's shape and a mask output),
so that a wrong file fails the start with its reason instead of the first request.
"""

from __future__ import annotations

from pathlib import Path

from base.settings import MODEL_NAME, SettingsError
from models.registry import CUSTOM_FAMILIES, MODELS, ModelSpec

FLAG = "--custom-model"


def parse(entry: str) -> tuple[ModelSpec, Path]:
    """``NAME=FAMILY:PATH`` -> its spec and file, or ``SettingsError`` (no file is read)."""
    name, eq, rest = entry.partition("=")
    family, colon, raw_path = rest.partition(":")
    name, family = name.strip(), family.strip()
    if not eq or not colon or not raw_path.strip():
        raise SettingsError(f"{FLAG}: expected NAME=FAMILY:PATH, got {entry!r}")
    if not MODEL_NAME.fullmatch(name) or ".." in name:
        raise SettingsError(f"{FLAG}: {name!r} is not a model name (lower-case letters, digits, - _ .)")
    if name in MODELS:
        raise SettingsError(f"{FLAG}: {name!r} is a registry model; choose another name")
    if family not in CUSTOM_FAMILIES:
        raise SettingsError(f"{FLAG} {name}: family {family!r}; choose one of {', '.join(CUSTOM_FAMILIES)}")
    size, mean, std = CUSTOM_FAMILIES[family]
    path = Path(raw_path.strip()).expanduser().resolve()
    spec = ModelSpec(
        name=name,
        filename=path.name,
        md5=None,
        input_size=size,
        mean=mean,
        std=std,
        sources=(),
        description=f"custom {family} model of this server ({path.name})",
        family=family,
    )
    return spec, path


def _dims(value: object) -> list[int | str]:
    shape = value.type.tensor_type.shape  # type: ignore[attr-defined]
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape.dim]


def check(spec: ModelSpec, path: Path) -> None:
    """The file is an ONNX model with the family's input (Nx3xSxS) and a mask output (Nx1xHxW),
    or ``SettingsError`` saying what is wrong."""
    import onnx  # only at start, and only with custom models

    where = f"{FLAG} {spec.name}: {path}"
    if not path.is_file():
        raise SettingsError(f"{where} is not a readable file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own DecodeError; any failure means "not ONNX"
        raise SettingsError(f"{where} is not an ONNX model ({type(exc).__name__})") from None
    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1 or not model.graph.output:
        raise SettingsError(f"{where}: expected one image input and a mask output, found {len(inputs)} inputs")
    size = spec.input_size
    got_in, got_out = _dims(inputs[0]), _dims(model.graph.output[0])
    if len(got_in) != 4 or got_in[1] != 3 or any(isinstance(d, int) and d != size for d in got_in[2:]):
        raise SettingsError(f"{where}: family {spec.family} takes input Nx3x{size}x{size}; the file's is {got_in}")
    if len(got_out) != 4 or (isinstance(got_out[1], int) and got_out[1] != 1):
        raise SettingsError(f"{where}: family {spec.family} gives a mask Nx1xHxW; the file's output is {got_out}")
