"""The machine's fp32 peak: cores x FMA units x vector lanes x 2 FLOPs x clock, from lscpu.

Each factor says where it comes from:

- cores: lscpu's `Core(s) per socket` x `Socket(s)` (physical cores; SMT siblings share
  the FMA units), else `CPU(s)`;
- FMA units per core and fp32 lanes per unit: `CORE_TABLE`, keyed on lscpu's vendor,
  `CPU family` and `Model` (the vendors' optimisation guides and Intel's ARK). CPUID does
  not report FMA units; where the table has no entry, two units as wide as the widest
  vector flag (`avx512f`: 16 lanes, `avx2`/`fma`: 8, else 4) are assumed, and the
  source says "assumed";
- clock: lscpu's `CPU max MHz` (the boost clock) where the kernel shows it, else
  /proc/cpuinfo's `cpu MHz`, else half lscpu's `BogoMIPS`. A virtual machine usually
  shows only the nominal (TSC) clock; a core boosting above it makes the real peak
  higher and a fraction of peak computed here an overestimate.

AMX (Intel Xeon from Sapphire Rapids) multiplies bf16 and int8 tiles only: it adds
nothing to the fp32 peak, so a Xeon with AMX counts its AVX-512 units.

Example:
    >>> fp32_peak().gflops  # doctest: +SKIP
    332.3
"""

import dataclasses
import re
import subprocess


@dataclasses.dataclass(frozen=True)
class CoreKind:
    """FMA units and fp32 lanes per unit of one family of cores."""

    vendor: str
    family: int
    models: range  # lscpu's `Model`
    name: str
    fma_units: int
    lanes: int  # fp32 values per FMA unit per cycle
    source: str


CORE_TABLE = (
    CoreKind("AuthenticAMD", 26, range(0, 256), "AMD Zen 5 (EPYC 9005)", 2, 16,
             "AMD's software optimization guide for Zen 5: two FMA pipes, 512 bits wide "
             "on EPYC (mobile Zen 5 runs AVX-512 in two 256-bit passes)"),
    CoreKind("AuthenticAMD", 25, range(0, 256), "AMD Zen 3 / Zen 4", 2, 8,
             "AMD's software optimization guides for Zen 3 and Zen 4: two 256-bit FMA pipes; "
             "Zen 4 runs AVX-512 in two 256-bit passes"),
    CoreKind("AuthenticAMD", 23, range(0x30, 256), "AMD Zen 2", 2, 8,
             "AMD's software optimization guide for Zen 2: two 256-bit FMA pipes"),
    CoreKind("AuthenticAMD", 23, range(0, 0x30), "AMD Zen / Zen+", 2, 4,
             "AMD's software optimization guide for Zen: two 128-bit FMA pipes"),
    # Sapphire Rapids (143), Emerald Rapids (207), Granite Rapids (173, 174): AMX.
    CoreKind("GenuineIntel", 6, range(143, 144), "Intel Xeon Sapphire Rapids", 2, 16,
             "Intel ARK: '# of AVX-512 FMA Units: 2' on Xeon Scalable 4th generation"),
    CoreKind("GenuineIntel", 6, range(207, 208), "Intel Xeon Emerald Rapids", 2, 16,
             "Intel ARK: '# of AVX-512 FMA Units: 2' on Xeon Scalable 5th generation"),
    CoreKind("GenuineIntel", 6, range(173, 175), "Intel Xeon Granite Rapids", 2, 16,
             "Intel ARK: '# of AVX-512 FMA Units: 2' on Xeon 6 P-core processors"),
    # Ice Lake-SP (106, 108): two AVX-512 FMA units on every Xeon Scalable 3rd generation.
    CoreKind("GenuineIntel", 6, range(106, 109), "Intel Xeon Ice Lake-SP", 2, 16,
             "Intel ARK: '# of AVX-512 FMA Units: 2' on Xeon Scalable 3rd generation"),
)


@dataclasses.dataclass(frozen=True)
class Peak:
    """An fp32 peak and where each of its factors comes from."""

    cores: int
    fma_units: int
    lanes: int
    mhz: float
    core_kind: str
    sources: dict

    @property
    def gflops(self) -> float:
        """cores x FMA units x lanes x 2 FLOPs (multiply and add) x clock."""
        return self.cores * self.fma_units * self.lanes * 2 * self.mhz / 1e3

    def describe(self) -> str:
        return (f"fp32 peak {self.gflops:.1f} GFLOP/s = {self.cores} cores x {self.fma_units} "
                f"FMA units x {self.lanes} lanes x 2 x {self.mhz / 1e3:.3f} GHz "
                f"({self.core_kind}; " + "; ".join(f"{k}: {v}" for k, v in
                                                   self.sources.items()) + ")")


def parse_lscpu(text: str) -> dict:
    """lscpu's `Field: value` lines as a dict."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def fp32_peak(lscpu: str | None = None, cpuinfo: str | None = None) -> Peak:
    """The fp32 peak of this machine (or of the given lscpu and /proc/cpuinfo texts)."""
    if lscpu is None:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    fields = parse_lscpu(lscpu)
    sources = {}
    if "Core(s) per socket" in fields and "Socket(s)" in fields:
        cores = int(fields["Core(s) per socket"]) * int(fields["Socket(s)"])
        sources["cores"] = "lscpu Core(s) per socket x Socket(s)"
    else:
        cores = int(fields["CPU(s)"])
        sources["cores"] = "lscpu CPU(s)"
    vendor = fields.get("Vendor ID", "")
    family, model = int(fields.get("CPU family", -1)), int(fields.get("Model", -1))
    kind = next((k for k in CORE_TABLE if k.vendor == vendor and k.family == family
                 and model in k.models), None)
    if kind is not None:
        fma_units, lanes, name = kind.fma_units, kind.lanes, kind.name
        sources["FMA units and lanes"] = kind.source
    else:
        flags = set(fields.get("Flags", "").split())
        lanes = 16 if "avx512f" in flags else 8 if flags & {"avx2", "fma"} else 4
        fma_units, name = 2, f"{vendor} family {family} model {model}"
        sources["FMA units and lanes"] = (f"assumed: 2 FMA units (not in CORE_TABLE), "
                                          f"{lanes} lanes from lscpu's flags")
    if fields.get("CPU max MHz"):
        mhz = float(fields["CPU max MHz"])
        sources["clock"] = "lscpu CPU max MHz"
    elif match := re.search(r"^cpu MHz\s*:\s*([0-9.]+)", cpuinfo, re.MULTILINE):
        mhz = float(match.group(1))
        sources["clock"] = "/proc/cpuinfo cpu MHz (nominal; boost not shown)"
    else:
        mhz = float(fields["BogoMIPS"]) / 2
        sources["clock"] = "lscpu BogoMIPS / 2 (nominal; boost not shown)"
    return Peak(cores, fma_units, lanes, mhz, name, sources)
