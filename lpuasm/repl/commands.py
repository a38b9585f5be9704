"""The REPL's command table: one registry drives dispatch, ``help`` and completion.

Each :class:`Command` has a name, aliases, an argument syntax, a one-line help,
a long help, a handler ``(debugger, args) -> str`` and the kind of words its
arguments complete to.  :func:`execute` runs one line; :func:`complete` is the
pure completion logic the prompt_toolkit front end wraps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..diagnostics import did_you_mean
from ..highlight import MNEMONICS
from ..isa import DTYPE_BYTES
from ..sim import UNIT_KINDS
from .core import DebugError, Debugger


@dataclass(frozen=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    syntax: str
    summary: str
    details: str
    handler: object  # (Debugger, str) -> str
    completes: str = ""  # "", "command", "file", "breakspec", "expr", "info"
    repeats: bool = False  # Enter on an empty line repeats it


def _count(args: str, what: str) -> int:
    args = args.strip()
    if not args:
        return 1
    try:
        return int(args, 0)
    except ValueError:
        raise DebugError(f"{what}: '{args}' is not a number") from None


def _numbers(args: str) -> list[int]:
    out = []
    for word in args.replace(",", " ").split():
        try:
            out.append(int(word))
        except ValueError:
            raise DebugError(f"'{word}' is not a breakpoint number") from None
    return out


def _break(d: Debugger, args: str) -> str:
    spec, _, cond = args.strip().partition(" if ")
    if not spec.strip():
        raise DebugError("break: where? (break LABEL | FILE:LINE | LINE | @CYCLE | QUEUE | UNIT | OPCODE [if COND])")
    return d.add_breakpoint(spec.strip(), cond.strip() or None)


def _examine(d: Debugger, args: str, fmt: str | None) -> str:
    return d.examine(args, fmt)


def _info(d: Debugger, args: str) -> str:
    what = args.strip()
    table = {"breakpoints": d.info_breakpoints, "units": d.info_units}
    for name, fn in table.items():
        if what and name.startswith(what):
            return fn()
    raise DebugError("info: one of " + ", ".join(table) + _suffix(did_you_mean(what, table)))


def _suffix(h: str | None) -> str:
    return f"; {h}" if h else ""


def _goto(d: Debugger, args: str) -> str:
    if not args.strip():
        raise DebugError("goto: which cycle?")
    return d.goto(_count(args, "goto"))


def _list(d: Debugger, args: str) -> str:
    return d.list_source(_count(args, "list") if args.strip() else 5)


def _help(d: Debugger, args: str) -> str:
    return help_text(args.strip() or None)


def _quit(d: Debugger, args: str) -> str:
    raise SystemExit(0)


COMMANDS: tuple[Command, ...] = (
    Command("load", (), "load FILE", "load a .lasm source (assembled now) or a .lpu image",
            "Assemble FILE.lasm, or load FILE.lpu, and stand at cycle 0.  Breakpoints are kept and re-resolved.",
            lambda d, a: d.load(a.strip()) if a.strip() else _raise("load: which file?"), "file"),
    Command("reset", (), "reset", "go back to cycle 0", "Go back to cycle 0 (breakpoints are kept).",
            lambda d, a: d.reset()),
    Command("step", ("s", "stepi", "si"), "step [N]", "issue the next N instructions (global issue order)",
            "Issue the next N instructions (default 1) in global issue order (by cycle, then queue) and stop "
            "before the next one, at the cycle it issues.",
            lambda d, a: d.step(_count(a, "step")), repeats=True),
    Command("cycle", ("tick",), "cycle [N]", "advance N cycles",
            "Advance N cycles (default 1): every instruction issued before the new cycle has issued.",
            lambda d, a: d.tick(_count(a, "cycle")), repeats=True),
    Command("continue", ("c", "cont", "run", "r"), "continue",
            "run to the next breakpoint or the end",
            "Run until an enabled breakpoint whose condition holds is about to issue, or to the end of the "
            "program.  Ctrl-C interrupts it.",
            lambda d, a: d.cont(), repeats=True),
    Command("goto", ("g",), "goto CYCLE", "go to the start of CYCLE, forwards or backwards",
            "Stand at the start of CYCLE: every instruction issued before it has issued, none of that cycle.  "
            "Going backwards replays from the nearest snapshot.", _goto),
    Command("back", ("reverse-step", "rs"), "back [N]", "undo the last N instructions",
            "Go back N instructions (default 1) in global issue order: deterministic replay from the nearest "
            "snapshot, bit-identical to stepping there from the start.",
            lambda d, a: d.back(_count(a, "back")), repeats=True),
    Command("break", ("b", "br"), "break WHERE [if COND]", "set a breakpoint",
            "Stop before an instruction issues.  WHERE is a label, FILE:LINE or LINE (of the main file), "
            "@CYCLE (the start of a cycle), a queue (w3, e0, alu0, mxm1, icu), a unit kind (mem, vxm, mxm, sxm, "
            "icu, c2c) or an opcode (vadd, write).  COND is an expression over cycle, row, queue, hits and the "
            "data symbols as numpy arrays, e.g. 'break write if y[0, 0] > 10'.", _break, "breakspec"),
    Command("delete", ("d",), "delete [N...]", "delete breakpoints (all without N)",
            "Delete the numbered breakpoints, or all of them.", lambda d, a: d.delete(_numbers(a))),
    Command("disable", (), "disable [N...]", "disable breakpoints (all without N)",
            "Disable the numbered breakpoints, or all of them.", lambda d, a: d.enable(_numbers(a), False)),
    Command("enable", (), "enable [N...]", "enable breakpoints (all without N)",
            "Enable the numbered breakpoints, or all of them.", lambda d, a: d.enable(_numbers(a), True)),
    Command("info", ("i",), "info breakpoints|units", "list breakpoints, or every queue's progress",
            "info breakpoints: number, enabled, hits, where, condition.\n"
            "info units: each queue with instructions: unit, issued so far / total, its next instruction.",
            _info, "info"),
    Command("print", ("p",), "print[/FMT] WHAT", "show a symbol, SRAM words or a stream value",
            "WHAT is a data symbol with an optional numpy-style index (y, y[0:2, 0:8]), SRAM words "
            "(W3.b0[0:4]), or a stream at a position (s3e@w2: the value passing there now; s3e@w2:15: at an "
            "earlier cycle 15).  FMT is a dtype (i8 i16 i32 f16 f32: reinterpret the same SRAM), u8, or x (hex).",
            lambda d, a: _examine(d, a, None), "expr"),
    Command("x", (), "x/FMT WHAT", "examine: print with a format",
            "The same as print/FMT: x/f32 y[0:2, 0:8], x/x W3.b0[0:2], x/f32 s4e@vxm.",
            lambda d, a: _examine(d, a, None), "expr"),
    Command("list", ("l",), "list [N]", "source around the next instruction",
            "Show N lines (default 5) of source on each side of the next instruction, and its macro expansion "
            "chain.", _list),
    Command("where", ("w", "frame"), "where", "the cycle and the next instruction",
            "Print the cycle, the row and the next instruction with its source.", lambda d, a: d.where()),
    Command("stats", (), "stats", "figures of the schedule and of the run so far",
            "The same figures as 'lpuasm run --stats', the instructions issued so far per unit, and the memory "
            "held by snapshots for going back.", lambda d, a: d.stats()),
    Command("help", ("h", "?"), "help [COMMAND]", "list commands, or describe one",
            "help: every command with its one-line summary.  help COMMAND: its syntax and details.", _help,
            "command"),
    Command("quit", ("q", "exit"), "quit", "leave the debugger (Ctrl-D does too)", "Leave the debugger.", _quit),
)


def _raise(msg: str):
    raise DebugError(msg)


BY_NAME: dict[str, Command] = {}
for _c in COMMANDS:
    for _n in (_c.name, *_c.aliases):
        BY_NAME[_n] = _c
NAMES: tuple[str, ...] = tuple(c.name for c in COMMANDS)


def lookup(word: str) -> Command:
    """The command named *word* (name or alias), else a did-you-mean error."""
    cmd = BY_NAME.get(word)
    if cmd is None:
        raise DebugError(f"unknown command '{word}'" + _suffix(did_you_mean(word, BY_NAME)) + " (help lists them)")
    return cmd


def help_text(name: str | None = None) -> str:
    """``help`` and ``help CMD``, generated from the registry."""
    if name is None:
        width = max(len(c.syntax) for c in COMMANDS)
        lines = [f"  {c.syntax:<{width}}  {c.summary}" for c in COMMANDS]
        return "commands (help COMMAND for details; Enter repeats step, cycle, back, continue):\n" + "\n".join(lines)
    cmd = lookup(name)
    alias = f"\naliases: {', '.join(cmd.aliases)}" if cmd.aliases else ""
    return f"{cmd.syntax}\n  {cmd.summary}\n\n{cmd.details}{alias}"


_LINE = re.compile(r"^\s*([A-Za-z?][\w-]*)(?:/(\w+))?\s*(.*)$", re.S)


def execute(d: Debugger, line: str) -> str:
    """Run one command line; raises DebugError (one line) on failure."""
    m = _LINE.match(line)
    if not m:
        raise DebugError(f"cannot parse '{line.strip()}' (help lists the commands)")
    word, fmt, args = m.group(1), m.group(2), m.group(3)
    cmd = lookup(word)
    if fmt is not None:
        if cmd.name not in ("print", "x"):
            raise DebugError(f"{cmd.name} takes no /FORMAT")
        return d.examine(args, fmt)
    if cmd.name == "x":
        return d.examine(args, None)
    return cmd.handler(d, args)


def complete(d: Debugger | None, text: str) -> list[tuple[str, int]]:
    """Completions of the text before the cursor: (word, start) pairs, where
    start is the (negative) offset from the cursor at which the word replaces text."""
    m = re.match(r"^\s*(\w+)/(\w*)$", text)
    if m:  # a format: x/f32
        return [(f, -len(m.group(2))) for f in (*DTYPE_BYTES, "u8", "x") if f.startswith(m.group(2))]
    m = re.match(r"^\s*(\S*)$", text)
    if m:  # the command word
        word = m.group(1)
        return [(n, -len(word)) for n in NAMES if n.startswith(word)]
    head = text.split()[0].split("/")[0]
    cmd = BY_NAME.get(head)
    if cmd is None:
        return []
    word = re.split(r"[\s,\[]", text)[-1]
    if cmd.completes == "command":
        cands = NAMES
    elif cmd.completes == "info":
        cands = ("breakpoints", "units")
    elif cmd.completes == "breakspec":
        if " if " in text:
            cands = ("cycle", "row", "queue", "hits", *(d.symbol_names() if d else ()))
        else:
            cands = (*(d.label_names() if d else ()), *MNEMONICS, *(d.queue_names() if d else ()), *UNIT_KINDS)
    elif cmd.completes == "expr":
        if "@" in word:  # a stream's position
            pre, _, pos = word.rpartition("@")
            places = ("vxm", "sxmw", "sxme", "mxmw", "mxme", *(d.queue_names() if d else ()))
            return [(p, -len(pos)) for p in dict.fromkeys(places) if p.startswith(pos)]
        cands = d.symbol_names() if d else ()
    elif cmd.completes == "file":
        return _complete_file(word)
    else:
        return []
    return [(c, -len(word)) for c in dict.fromkeys(cands) if c.startswith(word)]


def _complete_file(word: str) -> list[tuple[str, int]]:
    from pathlib import Path

    base = Path(word).parent if "/" in word else Path(".")
    prefix = Path(word).name if not word.endswith("/") else ""
    try:
        entries = sorted(base.iterdir())
    except OSError:
        return []
    out = []
    for e in entries:
        if e.name.startswith(prefix) and (e.is_dir() or e.suffix in (".lasm", ".lpu")):
            full = str(base / e.name) if "/" in word else e.name
            out.append((full + ("/" if e.is_dir() else ""), -len(word)))
    return out
