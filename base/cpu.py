"""What this CPU is, read once from ``/proc/cpuinfo``: model, instruction sets, physical cores."""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

#: Flags worth naming in reports (benchmark, /healthz, build records).
REPORTED_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
)
#: x86 VNNI: int8 dot products in one instruction (AVX-512 VNNI or AVX-VNNI).
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})
#: Any int8 dot-product instruction: VNNI, AMX, or Arm's dotprod.
INT8_DOT_FLAGS = VNNI_FLAGS | {"amx_int8", "asimddp"}
#: bfloat16 arithmetic in hardware (AMX tiles or AVX-512 BF16): what makes OpenVINO's bf16 worth trying.
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: frozenset[str]
    #: Physical cores this process may use (not hyper-threads; a container's CPU set counts).
    physical_cores: int
    logical_cpus: int

    @property
    def vnni(self) -> bool:
        return bool(self.flags & VNNI_FLAGS)

    @property
    def int8_dot(self) -> bool:
        """Int8 dot-product instructions, without which int8 convolutions gain little."""
        return bool(self.flags & INT8_DOT_FLAGS)

    @property
    def bf16(self) -> bool:
        """bfloat16 in hardware; without it a bf16 candidate is not even tried."""
        return bool(self.flags & BF16_FLAGS)

    def reported_flags(self) -> list[str]:
        return [f for f in REPORTED_FLAGS if f in self.flags]


def parse_cpuinfo(text: str, allowed: int) -> CpuInfo:
    """``/proc/cpuinfo``'s text, for a process allowed ``allowed`` logical CPUs."""
    model = platform.processor() or platform.machine()
    flags: set[str] = set()
    cores: set[tuple[str, str]] = set()
    phys = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name":
            model = value.strip()
        elif key in ("flags", "Features"):  # x86, Arm
            flags |= set(value.split())
        elif key == "physical id":
            phys = value.strip()
        elif key == "core id":
            cores.add((phys, value.strip()))
    # A container may be allowed fewer CPUs than the host has cores.
    physical = max(1, min(len(cores) or allowed, allowed))
    return CpuInfo(model=model, flags=frozenset(flags), physical_cores=physical, logical_cpus=allowed)


@functools.cache
def cpu_info() -> CpuInfo:
    """This machine's CPU; cached, since it does not change while the process runs."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    return parse_cpuinfo(text, max(1, allowed))


def physical_cores() -> int:
    """Physical cores: onnxruntime's fp32 kernels gain nothing from SMT."""
    return cpu_info().physical_cores
