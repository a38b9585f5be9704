"""Errors as data: diagnostics with source spans, collected and rendered once.

Every user-facing error of the toolchain is a :class:`Diagnostic`.  Stages
collect them in a :class:`Diagnostics` list and raise :class:`LpuError` when
they cannot go on; the CLI renders them GCC style::

    kernel.lasm:3:5: error: unknown mnemonic 'vadd2'
        3 |     vadd2.f32 s0e, s1e, s2e
          |     ^~~~~~~~~
      hint: did you mean 'vadd'?
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from .syntax import Span


@dataclass
class Diagnostic:
    severity: str  # "error", "warning" or "note"
    message: str
    span: Span | None = None
    hint: str | None = None
    notes: list["Diagnostic"] = field(default_factory=list)

    def render(self, sources: "SourceCache | None" = None) -> str:
        where = f"{self.span}: " if self.span else "lpuasm: "
        lines = [f"{where}{self.severity}: {self.message}"]
        if self.span and sources is not None:
            text = sources.line(self.span.file, self.span.line)
            if text is not None:
                gutter = str(self.span.line)
                pad = " " * len(gutter)
                lines.append(f" {gutter} | {text}")
                width = max(1, self.span.end_col - self.span.col)
                lines.append(f" {pad} | {' ' * (self.span.col - 1)}^{'~' * (width - 1)}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        for note in self.notes:
            lines.append(note.render(sources))
        return "\n".join(lines)


class SourceCache:
    """Source texts by file name, for quoting lines in diagnostics."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}

    def add(self, name: str, text: str) -> None:
        self._lines[name] = text.splitlines()

    def line(self, name: str, lineno: int) -> str | None:
        lines = self._lines.get(name)
        if lines is None:
            try:
                lines = Path(name).read_text(errors="replace").splitlines()
            except OSError:
                return None
            self._lines[name] = lines
        if 1 <= lineno <= len(lines):
            return "".join(c if c.isprintable() else "?" for c in lines[lineno - 1].expandtabs(1))
        return None


class LpuError(Exception):
    """The one exception type users see: one or more diagnostics."""

    def __init__(self, diagnostics: "list[Diagnostic] | Diagnostic | str", sources: SourceCache | None = None):
        if isinstance(diagnostics, str):
            diagnostics = Diagnostic("error", diagnostics)
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        self.sources = sources
        super().__init__(self.diagnostics[0].message if self.diagnostics else "error")

    def render(self) -> str:
        return "\n".join(d.render(self.sources) for d in self.diagnostics)


class Diagnostics:
    """A collector: stages append errors and keep going where they can."""

    MAX_ERRORS = 50

    def __init__(self, sources: SourceCache | None = None) -> None:
        self.items: list[Diagnostic] = []
        self.sources = sources or SourceCache()
        #: notes added to every error while set, innermost last
        #: (e.g. "in file included from a.lasm:3")
        self.context: list[Diagnostic] = []

    def error(self, message: str, span: Span | None = None, hint: str | None = None,
              notes: list[Diagnostic] | None = None) -> Diagnostic:
        d = Diagnostic("error", message, span, hint, (notes or []) + self.context[::-1])
        self.items.append(d)
        if self.error_count >= self.MAX_ERRORS:
            self.items.append(Diagnostic("error", f"too many errors ({self.MAX_ERRORS}); stopping"))
            raise LpuError(self.items, self.sources)
        return d

    def warning(self, message: str, span: Span | None = None, hint: str | None = None) -> Diagnostic:
        d = Diagnostic("warning", message, span, hint)
        self.items.append(d)
        return d

    @property
    def error_count(self) -> int:
        return sum(d.severity == "error" for d in self.items)

    @property
    def has_errors(self) -> bool:
        return self.error_count > 0

    def check(self) -> None:
        """Raise LpuError if any error has been collected."""
        if self.has_errors:
            raise LpuError(self.items, self.sources)


def did_you_mean(word: str, candidates) -> str | None:
    """A hint naming the closest candidate, if any is close."""
    match = difflib.get_close_matches(word.lower(), list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None
