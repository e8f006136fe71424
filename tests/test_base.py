"""Unit tier: the bottom layer's shared facts and helpers (CPU facts, whole-or-absent writes, providers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from base.cpu import parse_cpuinfo
from base.files import atomic_target, atomic_write
from base.memory import return_large_frees
from base.providers import AUTO_ORDER, GPU_PROVIDERS, PROVIDER_CHOICES, PROVIDERS

TWO_CORES_WITH_SMT = """
processor : 0
model name : AMD EPYC 9B14
flags : fpu sse4_2 avx avx2 fma avx512f avx512_vnni
physical id : 0
core id : 0

processor : 1
model name : AMD EPYC 9B14
flags : fpu sse4_2 avx avx2 fma avx512f avx512_vnni
physical id : 0
core id : 0

processor : 2
physical id : 0
core id : 1
"""


def test_cpuinfo_counts_physical_cores_and_flags() -> None:
    info = parse_cpuinfo(TWO_CORES_WITH_SMT, allowed=3)
    assert info.model == "AMD EPYC 9B14" and info.physical_cores == 2 and info.logical_cpus == 3
    assert info.vnni and info.int8_dot and "avx2" in info.reported_flags() and "fpu" not in info.reported_flags()


def test_cpuinfo_respects_the_cpu_set_and_arm() -> None:
    assert parse_cpuinfo(TWO_CORES_WITH_SMT, allowed=1).physical_cores == 1  # a container allowed one CPU
    arm = parse_cpuinfo("processor : 0\nFeatures : fp asimd asimddp\n", allowed=4)
    assert arm.int8_dot and not arm.vnni and arm.physical_cores == 4
    assert not parse_cpuinfo("flags : avx2\n", allowed=2).int8_dot


def test_atomic_write_is_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = atomic_write(tmp_path / "a" / "b.txt", "text", mode=0o644)
    assert target.read_text() == "text" and target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["b.txt"]


def test_atomic_target_removes_the_temporary_on_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_target(tmp_path / "out.bin") as tmp:
        tmp.write_bytes(b"half")
        assert tmp.name.startswith(".out.bin.") and tmp.parent == tmp_path
        raise RuntimeError("the writer failed")
    assert os.listdir(tmp_path) == []


def test_provider_facts() -> None:
    assert PROVIDER_CHOICES[0] == "auto" and set(PROVIDER_CHOICES[1:]) == set(PROVIDERS)
    assert GPU_PROVIDERS == {"cuda", "tensorrt"} and AUTO_ORDER[-1] == "cpu"
    assert all(PROVIDERS[name].device == "cuda" for name in GPU_PROVIDERS)


def test_the_server_returns_large_frees_to_the_system() -> None:
    """glibc's mmap threshold fixed at 1 MiB (app.configure_process); this machine's libc is glibc."""
    assert return_large_frees() is True
