"""benchmarks/peak.py: the fp32 peak from lscpu, each factor from a named source."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import peak  # noqa: E402

# lscpu on the shared 2-core KVM guest (no MHz lines) and its /proc/cpuinfo clock.
AMD_EPYC_ZEN5 = """Architecture:        x86_64
CPU(s):              2
Vendor ID:           AuthenticAMD
Model name:          AMD EPYC
CPU family:          26
Model:               2
Thread(s) per core:  1
Core(s) per socket:  2
Socket(s):           1
BogoMIPS:            5192.24
Flags:               fpu fma avx2 avx512f avx512_bf16
"""

INTEL_XEON_AMX = """CPU(s):              16
Vendor ID:           GenuineIntel
Model name:          Intel(R) Xeon(R) Platinum 8480+
CPU family:          6
Model:               143
Thread(s) per core:  2
Core(s) per socket:  4
Socket(s):           2
CPU max MHz:         3800.0000
BogoMIPS:            4000.00
Flags:               fma avx2 avx512f amx_tile amx_bf16
"""


def test_amd_epyc_family_26_has_two_512_bit_fma_units_at_the_cpuinfo_clock():
    result = peak.fp32_peak(AMD_EPYC_ZEN5, "cpu MHz\t\t: 2596.122\n")
    assert (result.cores, result.fma_units, result.lanes) == (2, 2, 16)
    assert result.gflops == pytest.approx(2 * 2 * 16 * 2 * 2.596122)
    assert "cpuinfo" in result.sources["clock"]
    assert "Zen 5" in result.core_kind


def test_intel_xeon_with_amx_counts_physical_cores_and_its_avx512_units():
    result = peak.fp32_peak(INTEL_XEON_AMX, "")
    assert (result.cores, result.fma_units, result.lanes, result.mhz) == (8, 2, 16, 3800.0)
    assert result.gflops == pytest.approx(8 * 2 * 16 * 2 * 3.8)
    assert result.sources["clock"] == "lscpu CPU max MHz"


def test_an_unknown_core_assumes_two_units_as_wide_as_its_flags_and_says_so():
    unknown = AMD_EPYC_ZEN5.replace("CPU family:          26", "CPU family:          99")
    unknown = unknown.replace(" avx512f avx512_bf16", "")
    result = peak.fp32_peak(unknown, "")  # No cpuinfo clock: BogoMIPS / 2.
    assert (result.fma_units, result.lanes, result.mhz) == (2, 8, 2596.12)
    assert result.sources["FMA units and lanes"].startswith("assumed")
    assert "BogoMIPS" in result.sources["clock"]
