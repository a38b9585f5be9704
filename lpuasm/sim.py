"""What a simulation run produces, shared by the fast and reference interpreters:
the final chip state, the statistics, and the one error type for schedule
violations (docs/timing-model.md says what counts as one)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import ChipConfig
from .diagnostics import Diagnostic, LpuError
from .image import DataSymbol, Image
from .layout import words_to_tensor

UNIT_KINDS = ("icu", "mem", "vxm", "mxm", "sxm", "c2c")


class SimError(LpuError):
    """A schedule violation or run-time error, located at an issued instruction.

    The message reads ``cycle C, queue Q (unit): INSTRUCTION: cause`` and the
    diagnostic points at the instruction's source line."""

    def __init__(self, cause: str, cycle: int | None = None, queue: str | None = None, unit: str | None = None,
                 text: str | None = None, source: str | None = None, sources=None, span=None,
                 hint: str | None = None):
        self.cause, self.cycle, self.queue, self.unit, self.text, self.source = cause, cycle, queue, unit, text, source
        where = []
        if cycle is not None:
            where.append(f"cycle {cycle}")
        if queue is not None:
            where.append(f"queue {queue}" + (f" ({unit})" if unit else ""))
        head = ", ".join(where)
        message = (f"{head}: " if head else "") + (f"{text}: " if text else "") + cause
        super().__init__(Diagnostic("error", message, span, hint), sources)
        self.stats: dict | None = None  # the statistics up to the error, when known


@dataclass
class Stats:
    """Counters of a run (docs/timing-model.md, "Counting")."""

    cycles: int = 0
    instructions: int = 0
    per_unit: dict[str, int] = field(default_factory=lambda: {u: 0 for u in UNIT_KINDS})
    busy: dict[str, int] = field(default_factory=dict)  # (queue, cycle) pairs with an issue, per unit
    queues_per_unit: dict[str, int] = field(default_factory=dict)
    sram_bytes_read: int = 0
    sram_bytes_written: int = 0
    macs: int = 0
    nan_inf: int = 0
    wall_seconds: float = 0.0

    def busy_cycles(self, unit: str) -> int:
        """Queue-cycles in which the unit's queues issued (a MEM slice can issue
        a read and a write in one of them)."""
        return self.busy.get(unit, self.per_unit.get(unit, 0))

    def utilisation(self, unit: str) -> float:
        q = self.queues_per_unit.get(unit, 0)
        return self.busy_cycles(unit) / (self.cycles * q) if self.cycles and q else 0.0

    def to_json(self, config: ChipConfig) -> dict:
        return {
            "cycles": self.cycles,
            "seconds_at_clock": self.cycles / config.clock_hz,
            "instructions": self.instructions,
            "units": {u: {"instructions": self.per_unit.get(u, 0), "busy_cycles": self.busy_cycles(u),
                          "queues": self.queues_per_unit.get(u, 0), "utilisation": self.utilisation(u)}
                      for u in UNIT_KINDS},
            "sram_bytes_read": self.sram_bytes_read,
            "sram_bytes_written": self.sram_bytes_written,
            "macs": self.macs,
            "nan_inf": self.nan_inf,
            "wall_seconds": self.wall_seconds,
            "sim_instructions_per_second": self.instructions / self.wall_seconds if self.wall_seconds else 0.0,
        }


def new_sram(config: ChipConfig) -> np.ndarray:
    """Zeroed SRAM: (hemisphere (0 = W, 1 = E), slice, bank, word, lane) uint8."""
    return np.zeros((2, config.mem_slices_per_hemisphere, config.banks_per_slice, config.words_per_bank,
                     config.lanes), dtype=np.uint8)


def initial_sram(image: Image, config: ChipConfig) -> tuple[np.ndarray, np.ndarray]:
    """SRAM holding the image's initial data, and a (hemisphere, slice, bank, word)
    bool mask of the words that hold a value (initialised or, later, written)."""
    from . import isa

    sram = new_sram(config)
    valid = np.zeros(sram.shape[:4], dtype=bool)
    for d in image.data:
        if d.init is None:
            continue
        n = d.words_per_plane(config.lanes)
        for plane in range(d.planes):
            east, slice_, bank, offset = isa.addr_parts(d.plane_addr(plane))
            sram[int(east), slice_, bank, offset:offset + n] = d.init[plane * n:(plane + 1) * n]
            valid[int(east), slice_, bank, offset:offset + n] = True
    return sram, valid


def read_symbol(sram: np.ndarray, sym: DataSymbol, config: ChipConfig) -> np.ndarray:
    """The tensor *sym* as it is in *sram*."""
    from . import isa

    n = sym.words_per_plane(config.lanes)
    planes = []
    for plane in range(sym.planes):
        east, slice_, bank, offset = isa.addr_parts(sym.plane_addr(plane))
        planes.append(sram[int(east), slice_, bank, offset:offset + n])
    return words_to_tensor(np.concatenate(planes), sym.dtype, sym.rows, sym.cols)


@dataclass
class RunResult:
    """Final state and statistics of a run."""

    config: ChipConfig
    image: Image
    stats: Stats
    sram: np.ndarray | None  # None in timing-only mode

    def tensor(self, name: str) -> np.ndarray:
        """A data symbol's tensor in the final SRAM."""
        for d in self.image.data:
            if d.name == name:
                if self.sram is None:
                    raise LpuError(f"'{name}': a timing-only run has no data")
                return read_symbol(self.sram, d, self.config)
        raise LpuError(f"no data symbol '{name}' in the image")
