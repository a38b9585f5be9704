"""Reverse execution: snapshots of the engine's small state and an undo log of
SRAM writes, so that the debugger can go back by replaying forward.

The simulator is deterministic, so going back means
replaying forward from an earlier snapshot.  Every ``snapshot_every`` rows the
engine's small state is copied (stream ring buffer, pending SRAM writes, MXM
planes: :meth:`lpuasm.interp._Engine.save_state`), but SRAM itself (220 MiB on
tsp-v1) is never copied: instead every SRAM write records the old bytes of the
words it overwrites in an undo log, one segment per snapshot.  Going back to row
r undoes the segments newer than the last snapshot at or before r (newest
first), restores that snapshot and replays the rows up to r, so ``back 1``
costs at most ``snapshot_every`` rows of simulation.  Memory: the snapshots and
undo log are kept under ``history_bytes`` (default 256 MiB) by dropping the
oldest snapshot and its segment; going back before the oldest kept snapshot
starts again from the image (slower, never wrong).

What is typed at the prompt and changes SRAM (a typed ``write``/``scatter``, a
``.data``/``.blob`` directive) or an MXM plane (a typed ``lw``, ``iw``, ``abc``,
``acc``) is an *injection*: recorded with the position
(row, cycle) it was made at and re-applied whenever a replay passes that
position, so it survives going back to any point at or after it; going back to
before it (or ``reset``, ``load``) drops it, and with it the symbol a directive
defined.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ..sim import SimError
from .errors import DebugError, _one_line


class _Interrupted(Exception):
    """A run was interrupted (:meth:`History.interrupt`) between two chunks of rows."""


@dataclass
class _Snapshot:
    """The engine's small state at a snapshot row, and the undo log of the SRAM writes since."""

    state: dict
    undo: list = field(default_factory=list)  # SRAM writes since this snapshot: (where, old, vwhere, oldvalid)
    undo_bytes: int = 0
    state_bytes: int = 0


@dataclass
class _Injection:
    """An SRAM change typed at the prompt at position (row, cycle): ``writes``
    are (where, values) for the engine's write path; ``symbol`` a data symbol
    it defines (``.data``, ``.space``, ``.blob``)."""

    row: int
    cycle: int
    writes: list = field(default_factory=list)
    symbol: object = None
    applied: bool = False
    redo: object = None  # (engine) -> None: a typed MXM instruction's effect on its plane


class History:
    """Debugger mixin: taking snapshots, going back to a row, and issuing rows
    forward with snapshots on the way."""

    def _take_snapshot(self) -> None:
        if self.snaps and self._current is not None:  # the previous segment is complete: count it once
            self._current.undo_bytes = sum(w[1].nbytes + w[3].nbytes for w in self._current.undo)
        st = self.engine.save_state()
        snap = _Snapshot(st, state_bytes=self.engine.state_bytes(st))
        self.snaps[self.row] = snap
        bisect.insort(self.snap_rows, self.row)
        self.engine.undo = snap.undo
        self._current = snap

    def history_size(self) -> int:
        """Bytes held by snapshots and the undo log."""
        for s in self.snaps.values():
            s.undo_bytes = sum(w[1].nbytes + w[3].nbytes for w in s.undo) if s is self._current else s.undo_bytes
        return sum(s.undo_bytes + s.state_bytes for s in self.snaps.values())

    def _trim(self) -> None:
        while len(self.snap_rows) > 1 and self.history_size() > self.history_bytes:
            oldest = self.snap_rows.pop(0)
            del self.snaps[oldest]

    def _inject(self, inj: _Injection) -> None:
        """Make a typed SRAM change now, and keep it for replays."""
        self.injections.append(inj)
        self._apply_injection(inj)

    def _apply_injection(self, inj: _Injection) -> None:
        eng = self.engine
        eng._commit(inj.cycle)
        if inj.redo is not None:  # a plane change: after the program's plane events due by then
            eng._apply_events(inj.cycle)
            inj.redo(eng)
        for where, values in inj.writes:  # lands now, through the write path (and so the undo log)
            eng._queue_write(inj.cycle, where, values)
            eng._commit(inj.cycle)
        inj.applied = True

    def _apply_injections_at(self, row: int) -> None:
        for inj in self.injections:
            if not inj.applied and inj.row == row:
                self._apply_injection(inj)

    def _rewind(self, target: int, cycle: int | None = None) -> None:
        """Go back to the state where rows < *target* have issued (at *cycle*,
        default the cycle row *target* issues): typed changes made after that
        position are dropped, the others replayed."""
        pos = (target, self._cycle_at(target) if cycle is None else cycle)
        self.injections = [i for i in self.injections if (i.row, i.cycle) <= pos]
        sram, valid = self.engine.sram, self.engine.valid
        base = [r for r in self.snap_rows if r <= target]
        if not base:
            self._fresh()
        else:
            s = base[-1]
            for r in reversed([r for r in self.snap_rows if r >= s]):
                for where, old, vwhere, oldvalid in reversed(self.snaps[r].undo):
                    sram[where] = old
                    valid[vwhere] = oldvalid
                if r > s:
                    del self.snaps[r]
            self.snap_rows = [r for r in self.snap_rows if r <= s]
            snap = self.snaps[s]
            snap.undo.clear()
            snap.undo_bytes = 0
            self.engine.load_state(snap.state)
            self.engine.undo = snap.undo
            self._current = snap
            self.row = s
        for inj in self.injections:  # the segments undone held those at or after the base snapshot
            if not base or inj.row >= self.row:
                inj.applied = False
        self._run_to(target, interruptible=False)

    def _run_to(self, target: int, interruptible: bool = True) -> None:
        """Issue rows up to *target* (exclusive), taking snapshots on the way.
        A violation leaves the position just before the row that fails."""
        every = self.snapshot_every
        while True:
            self._apply_injections_at(self.row)
            if self.row >= target:
                break
            if interruptible and self._interrupt:
                self._interrupt = False
                raise _Interrupted()
            stop = min(target, (self.row // every + 1) * every,
                       *(i.row for i in self.injections if not i.applied and i.row > self.row))
            start = self.row
            try:
                self.engine.run_rows(start, stop)
            except SimError as e:
                self._rewind(start)
                self._locate_error(stop)
                raise DebugError(_one_line(e)) from None
            self.row = stop
            if stop % every == 0 and stop not in self.snaps:
                self._take_snapshot()
                self._trim()

    def _locate_error(self, stop: int) -> None:
        """From a good state, issue one row at a time until one fails."""
        while self.row < stop:
            self._apply_injections_at(self.row)
            try:
                self.engine.run_rows(self.row, self.row + 1)
            except SimError:
                failed = self.row
                self._rewind(failed)
                self.cycle = self._cycle_at(failed)
                self.stop_reason = "error"
                return
            self.row += 1

    def interrupt(self) -> None:
        """Ask a running ``continue`` (or long step) to stop at the next chance."""
        self._interrupt = True
