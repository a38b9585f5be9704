"""The debugger core: a loaded program, a position in it, and the commands'
logic, with no terminal (the front end is :mod:`lpuasm.repl.session`).

Position.  The program's rows (:class:`lpuasm.program.Program`) are the issued
instructions in global issue order.  The debugger stands at ``(row, cycle)``:
rows ``0 .. row-1`` have issued, the others not, and ``cycle`` is "now", with
``cycle[row-1] <= now <= cycle[row]``.  ``step`` stops before the next row at
the cycle it issues; ``cycle N`` stops at the start of cycle now + N.  What is
shown of SRAM is what an instruction issued now would see (docs/timing-model.md,
"State changes").

The commands live in mixins, one module each: moving the position
(:mod:`.control`), going back (:mod:`.history`), breakpoints and watchpoints
(:mod:`.stops`), conditions (:mod:`.conditions`), reading the machine state
(:mod:`.examine`), showing the program (:mod:`.views`) and its outermost
calls: layers, macro calls and their cycles (:mod:`.layers`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..analysis import Analysis, analyse
from ..config import ChipConfig
from ..diagnostics import LpuError, SourceCache
from ..image import Image
from ..interp import _Engine
from ..program import Program, load_program
from ..sim import SimError
from .conditions import Conditions
from .control import RunControl
from .errors import DebugError, _one_line
from .examine import Examine
from .history import History, _Snapshot
from .layers import Layers
from .stops import Breakpoint, Stops, Watchpoint
from .views import PositionViews


class Debugger(RunControl, History, Stops, Conditions, Examine, PositionViews, Layers):
    """An interactive session's state: program, position, breakpoints, history."""

    def __init__(self, config: ChipConfig | None = None, *, snapshot_every: int | None = None,
                 history_bytes: int = 256 << 20, allow_uninit: bool = False):
        self.config = config
        self.snapshot_every_wanted = snapshot_every
        self.history_bytes = history_bytes
        self.allow_uninit = allow_uninit
        self.program: Program | None = None
        self.analysis: Analysis | None = None
        self.engine: _Engine | None = None
        self.path: str | None = None
        self.sources = SourceCache()
        self.breakpoints: list[Breakpoint] = []
        self.watchpoints: list[Watchpoint] = []
        self.displays: list[tuple[int, str, str | None]] = []  # (number, expression, format)
        self._next_display = 1
        self.equs: dict[str, int | float] = {}  # .equ typed at the prompt
        self.typed_streams: dict = {}  # (direction, index) -> byte plane: results of typed instructions
        self.injections: list = []  # typed SRAM changes and data directives (history._Injection)
        self._watch_stop = False
        self._next_bp = 1
        self._interrupt = False
        self.row = 0
        self.cycle = 0
        self.stop_reason = "no program loaded"

    # ---- loading ---------------------------------------------------------------------------
    def load(self, path: str) -> str:
        """Assemble a ``.lasm`` file or load a ``.lpu`` image, and reset."""
        from .. import imagefile
        from ..assembler import assemble_file
        from ..disasm import config_of

        p = Path(path)
        try:
            if p.suffix == ".lpu":
                image = imagefile.load(p, self.config)
                cfg = self.config or config_of(image)
                if cfg is None:
                    raise DebugError(f"{p}: built for chip config '{image.config_name}', which is not built in; "
                                     f"give its file with --config")
                sources = SourceCache()
            else:
                asm = assemble_file(p, config=self.config)
                image, cfg, sources = asm.image, asm.config, asm.sources
        except LpuError as e:
            raise DebugError(_one_line(e)) from None
        return self.load_image(image, cfg, sources, str(p))

    def load_image(self, image: Image, config: ChipConfig, sources: SourceCache | None = None,
                   name: str = "<image>") -> str:
        """Debug an assembled image."""
        program = load_program(image, config)
        self.violation: str | None = None
        self.fault_row = len(program)
        try:
            analysis = analyse(program)
        except SimError as e:
            analysis = analyse(program, check=False)
            self.violation = _one_line(e)
            self.fault_row = _blamed_row(program, analysis, e)
        self.program, self.analysis, self.path = program, analysis, name
        self.sources = sources or SourceCache()
        n = len(program)
        self.snapshot_every = self.snapshot_every_wanted or int(min(4096, max(256, n // 256)))
        self._queue_rows = [np.nonzero(program.queue == q)[0] for q in range(len(config.queues))]
        self.breakpoints = [self._rebind(b) for b in self.breakpoints]
        self.injections = []
        self.watchpoints = [self._rebind_watch(w) for w in self.watchpoints]
        self._fresh()
        msg = (f"{name}: {n} instructions on {len(image.text)} queues, {analysis.end} cycles, chip {config.name}")
        if self.violation:
            msg += f"\nwarning: the schedule has a violation; stepping stops before it: {self.violation}"
        return msg

    def _need(self) -> None:
        if self.program is None:
            raise DebugError("no program loaded (use: load FILE)")

    def _fresh(self) -> None:
        """A new engine at row 0 from the image's initial data."""
        self.engine = _Engine(self.analysis, self.allow_uninit, False)
        self.snaps: dict[int, _Snapshot] = {}
        self.snap_rows: list[int] = []
        self._current: _Snapshot | None = None
        self.row, self.cycle = 0, self._cycle_at(0)
        self._take_snapshot()
        self.stop_reason = "start of program"
        self._watch_stop = False
        self.typed_streams = {}

    def reset(self) -> str:
        """Back to cycle 0, dropping what was typed at the prompt into SRAM."""
        self._need()
        self.injections = []
        self._rewind(0)
        self.cycle = self._cycle_at(0)
        self.stop_reason = "start of program"
        self._watch_stop = False
        self.typed_streams = {}
        return self.where()

    # ---- completion data -----------------------------------------------------------------------------
    def data_symbols(self) -> list:
        """The image's data symbols and those defined at the prompt (.data, .space, .blob)."""
        if self.program is None:
            return []
        return [*self.program.image.data, *(i.symbol for i in self.injections if i.symbol is not None)]

    def symbol_names(self) -> list[str]:
        return [d.name for d in self.data_symbols()]

    def label_names(self) -> list[str]:
        return [lb.name for lb in self.program.image.labels] if self.program else []

    def queue_names(self) -> list[str]:
        return list(self.program.config.queues) if self.program else []


def _blamed_row(p: Program, a: Analysis, e: SimError) -> int:
    """The first row that must not issue, for a violation found at load."""
    rows = np.arange(len(p))
    if e.queue is not None and e.cycle is not None:
        q = p.config.queue_id(e.queue)
        at = rows[(p.queue == q) & (p.cycle <= e.cycle)]
        best = int(at[-1]) if len(at) else len(p)
    else:
        best = len(p)
    bad = a.reads.row[a.producer < 0]
    if len(bad):
        best = min(best, int(bad.min()))
    return best
