"""The debugger's error, :class:`DebugError`, and the helpers that word its
one-line messages."""

from __future__ import annotations

from ..diagnostics import LpuError


class DebugError(Exception):
    """A command failed; the message is one line and the state is intact."""


def _one_line(e: Exception) -> str:
    if isinstance(e, LpuError) and e.diagnostics:
        d = e.diagnostics[0]
        where = f"{d.span.file}:{d.span.line}: " if getattr(d, "span", None) is not None else ""
        return where + d.message
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _hint(h: str | None) -> str:
    return f"; {h}" if h else ""


def _int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise DebugError(f"{what}: '{text}' is not a number") from None
