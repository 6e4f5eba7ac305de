"""Cross-compile a generated model, the start-up code and the harness into one Cortex-M4 ELF.

The flags are those of a real firmware build (hard-float ABI, sections per
function and object, garbage-collected at link time), plus ``-g`` for the
line table the per-layer attribution reads (it does not change the code) and
``-fstack-usage -fcallgraph-info=su`` for the worst-case stack.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nndsl

HERE = Path(__file__).resolve().parent
STARTUP = HERE / "startup.c"
HARNESS = HERE / "harness.c"
LINKER_SCRIPT = HERE / "m4.ld"

CC = "arm-none-eabi-gcc"
CPU_FLAGS: tuple[str, ...] = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
WARNING_FLAGS: tuple[str, ...] = ("-std=c99", "-Wall", "-Wextra", "-pedantic")
CODE_FLAGS: tuple[str, ...] = (
    "-ffunction-sections", "-fdata-sections", "-gdwarf-4", "-fstack-usage", "-fcallgraph-info=su",
)
LINK_FLAGS: tuple[str, ...] = ("-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections")
OPT_LEVELS: tuple[str, ...] = ("-O2", "-Os")

# "dsp": the default build, which may select Cortex-M DSP instructions through
# __ARM_FEATURE_DSP; "portable": -DNNDSL_PORTABLE, the plain C path on the same core.
VARIANTS: dict[str, tuple[str, ...]] = {"dsp": (), "portable": ("-DNNDSL_PORTABLE",)}


@dataclass(frozen=True)
class Build:
    """One linked image and what the compiler said and wrote beside it."""

    elf: Path
    workdir: Path
    opt: str
    variant: str
    warnings: str
    stack_files: list[Path] = field(default_factory=list)


def available() -> bool:
    """Whether the cross compiler is on PATH (the M4 measurements need nothing else from the system)."""
    return shutil.which(CC) is not None


def compiler_version() -> str:
    """The first line of ``arm-none-eabi-gcc --version``, for the results."""
    out = subprocess.run([CC, "--version"], check=True, capture_output=True, text=True).stdout
    return out.splitlines()[0]


def harness_defines(name: str, header: str) -> list[str]:
    """The macros harness.c takes: the C prefix, its upper-case macro prefix and the header to include."""
    return [f"-DMODEL={name}", f"-DMODEL_UPPER={name.upper()}", f'-DMODEL_HEADER="{header}"']


def link(sources: Sequence[Path], include_dirs: Sequence[Path], defines: Sequence[str], out_dir: Path, *,
         opt: str, variant: str, libs: Sequence[str] = ()) -> Build:
    """Compile ``sources`` with the start-up code and harness; the objects and .su/.ci files go to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / "image.elf"
    command = [
        CC, *CPU_FLAGS, *WARNING_FLAGS, opt, *CODE_FLAGS, *VARIANTS[variant], *defines,
        *(f"-I{d}" for d in include_dirs), *map(str, sources), str(STARTUP), str(HARNESS),
        *LINK_FLAGS, f"-T{LINKER_SCRIPT}", f"-Wl,-Map={out_dir / 'image.map'}", "-o", str(elf), *libs,
    ]
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=out_dir)
    if done.returncode != 0:
        raise RuntimeError(f"{CC} failed ({opt}, {variant}):\n{done.stderr}")
    stack_files = sorted(out_dir.glob("*.su")) + sorted(out_dir.glob("*.ci"))
    return Build(elf, out_dir, opt, variant, done.stderr, stack_files)


def build_model(model: nndsl.Model, work: Path, *, opt: str = "-O2", variant: str = "dsp") -> Build:
    """Generate ``model``'s C into ``work`` and link it into an image for ``opt`` and ``variant``."""
    source_dir = work / "src"
    model.build(source_dir)
    out_dir = work / f"{variant}{opt}"
    return link([source_dir / f"{model.name}.c"], [source_dir], harness_defines(model.name, f"{model.name}.h"),
                out_dir, opt=opt, variant=variant)
