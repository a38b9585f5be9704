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
from .conditions import _COND_FUNCS
from .core import Debugger
from .errors import DebugError

_COND_NAMES = tuple(_COND_FUNCS)


@dataclass(frozen=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    syntax: str
    summary: str
    details: str
    handler: object  # (Debugger, str) -> str
    completes: str = ""  # "", "command", "file", "breakspec", "expr", "info", "cond", "asm"
    repeats: bool = False  # Enter on an empty line repeats it
    moves: bool = False  # it moves the debugger: the displays are shown after it
    formats: bool = False  # it takes /FMT


def _count(args: str, what: str) -> int:
    args = args.strip()
    if not args:
        return 1
    try:
        return int(args, 0)
    except ValueError:
        raise DebugError(f"{what}: '{args}' is not a number") from None


def _numbers(args: str, what: str = "breakpoint") -> list[int]:
    out = []
    for word in args.replace(",", " ").split():
        try:
            out.append(int(word))
        except ValueError:
            raise DebugError(f"'{word}' is not a {what} number") from None
    return out


def _break(d: Debugger, args: str) -> str:
    spec, _, cond = args.strip().partition(" if ")
    if not spec.strip():
        raise DebugError("break: where? (break LABEL | FILE:LINE | LINE | layer N | @CYCLE | *PC | QUEUE | UNIT "
                         "| OPCODE [if COND])")
    return d.add_breakpoint(spec.strip(), cond.strip() or None)


def _watch(d: Debugger, args: str) -> str:
    spec, _, cond = args.strip().partition(" if ")
    if not spec.strip():
        raise DebugError("watch: what? (watch SYMBOL[INDEX] | WORDS | nan SYMBOL | STREAM@POSITION [if COND])")
    return d.add_watchpoint(spec.strip(), cond.strip() or None)


def _disasm(d: Debugger, args: str) -> str:
    words = args.split()
    if len(words) > 2:
        raise DebugError("disasm: at most a place and a count (disasm [ROW|@CYCLE|LABEL] [N])")
    if len(words) == 2:
        return d.disasm(words[0], _count(words[1], "disasm"))
    if len(words) == 1 and re.fullmatch(r"\d+", words[0]) is None:
        return d.disasm(words[0])
    return d.disasm(words[0] if words else None)


def _typed(d: Debugger, args: str) -> str:
    from .typed import run_typed

    if not args.strip():
        raise DebugError("asm: which instruction? (e.g. vadd.i8 s0e, 1, s2e)")
    return run_typed(d, args)


def _examine(d: Debugger, args: str, fmt: str | None) -> str:
    return d.examine(args, fmt)


def _info(d: Debugger, args: str) -> str:
    what, _, rest = args.strip().partition(" ")
    if rest.strip():
        if what and "calls".startswith(what):
            return d.info_calls(rest)
        if not (what and "units".startswith(what)):
            raise DebugError(f"info {what}: takes no argument")
        return d.info_units(_count(rest, "info units"))
    if re.fullmatch(r"mxm\d*", what):
        return d.info_mxm(what if what != "mxm" else "")
    table = {"breakpoints": d.info_breakpoints, "watchpoints": d.info_watchpoints, "display": d.info_display,
             "units": d.info_units, "vxm": d.info_vxm, "mxm": d.info_mxm, "layers": d.info_layers,
             "calls": d.info_calls}
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
            lambda d, a: d.load(a.strip()) if a.strip() else _raise("load: which file?"), "file", moves=True),
    Command("reset", (), "reset", "go back to cycle 0", "Go back to cycle 0 (breakpoints are kept).",
            lambda d, a: d.reset(), moves=True),
    Command("step", ("s", "stepi", "si"), "step [N]", "issue the next N instructions (global issue order)",
            "Issue the next N instructions (default 1) in global issue order (by cycle, then queue) and stop "
            "before the next one, at the cycle it issues.  Like gdb's step, it stops early at an enabled breakpoint "
            "or watchpoint it reaches (never before the first instruction it issues), and says which and after "
            "how many instructions; Enter then repeats it from there.",
            lambda d, a: d.step(_count(a, "step")), repeats=True, moves=True),
    Command("cycle", ("tick",), "cycle [N]", "advance N cycles",
            "Advance N cycles (default 1): every instruction issued before the new cycle has issued.  It stops "
            "early at an enabled breakpoint or watchpoint it reaches (as continue would), and says which and "
            "after how many cycles.",
            lambda d, a: d.tick(_count(a, "cycle")), repeats=True, moves=True),
    Command("continue", ("c", "cont", "run", "r"), "continue",
            "run to the next breakpoint, watchpoint or the end",
            "Run until an enabled breakpoint whose condition holds is about to issue, an enabled watchpoint "
            "triggers, or to the end of the program.  Ctrl-C interrupts it.",
            lambda d, a: d.cont(), repeats=True, moves=True),
    Command("until", ("u",), "until COND", "run until a condition holds",
            "Run forward until COND (an expression as in 'break ... if', over cycle, row, queue, constants and "
            "the data symbols) holds, and stop there.  It is evaluated only where it can change: if it names "
            "only data symbols and constants, after each SRAM write to those symbols commits; otherwise also at "
            "the start of every cycle in which an instruction issues.  An enabled breakpoint or watchpoint reached "
            "first stops it there (saying so); Ctrl-C does too.  "
            "Example: until any(y[0] > 10), until cycle >= 500.",
            lambda d, a: d.until(a), "cond", moves=True),
    Command("goto", ("g",), "goto CYCLE", "go to the start of CYCLE, forwards or backwards",
            "Stand at the start of CYCLE: every instruction issued before it has issued, none of that cycle.  "
            "Going backwards replays from the nearest snapshot.", _goto, moves=True),
    Command("back", ("reverse-step", "rs"), "back [N]", "undo the last N instructions",
            "Go back N instructions (default 1) in global issue order: deterministic replay from the nearest "
            "snapshot, bit-identical to stepping there from the start.",
            lambda d, a: d.back(_count(a, "back")), repeats=True, moves=True),
    Command("break", ("b", "br"), "break WHERE [if COND]", "set a breakpoint",
            "Stop before an instruction issues.  WHERE is a label, FILE:LINE or LINE (of the main file: every "
            "instruction written on that line, or, on a line that calls a macro, the first instruction in issue "
            "order of each expansion of the call, e.g. 'break layer1.lasm:5' on a call of a built model's layer), "
            "'layer N' (the first instruction in issue order of layer N, the outermost calls in layer<N>.lasm; or "
            "'layer FILE' for any file as info layers lists them), "
            "@CYCLE (the start of a cycle), *PC or 'pc PC' (a program row: pc is the index in global issue "
            "order, as where, disasm and info breakpoints show it, not an address in a queue), a queue (w3, e0, alu0, mxm1, icu), a unit kind (mem, vxm, mxm, sxm, "
            "icu, c2c) or an opcode (vadd, write).  COND is an expression over cycle, row, queue, hits, the "
            "constants and the data symbols as numpy arrays: arithmetic, comparisons (chains too: 0 < x < 5), "
            "indexing, and/or/not (or &&, ||, !), and abs, any, all, isnan, isinf, isfinite, max, min, sum, mean.  "
            "and/or/not work elementwise on tensors and short-circuit: the right side is not evaluated where the "
            "left decides everywhere (x != 0 && 1/x > 2 never divides by a zero constant; cycle > 9000 && "
            "any(isnan(h)) reads h only from cycle 9000), a data symbol is read only when reached, and a "
            "division by zero inside a tensor gives inf or nan silently.  The condition holds when it is true "
            "in every element.  E.g. 'break write if y[0, 0] > 10'.", _break, "breakspec"),
    Command("watch", ("wa",), "watch WHAT [if COND]", "stop when SRAM changes, NaN/Inf appears, or a value passes",
            "Stop 'continue' where WHAT changes.  WHAT is a data symbol with an optional index (y, y[0, 0:4]) "
            "or SRAM words (E2.b1[0:2]): stop at the start of the cycle a write that changes it commits, showing "
            "the old and new values and the writing instruction; 'nan SYMBOL' (a float symbol): stop when a "
            "write makes a new NaN or Inf appear in it; a stream at a position (s3e@e2): stop at each cycle a "
            "value passes there, showing it.  COND (as in 'break ... if') filters, and may also use 'value' "
            "(the new value of WHAT) and 'old'.  Only the writes the schedule sends to the watched words are "
            "checked (known from the instructions' addresses; a scatter counts if its reach overlaps), so a "
            "watchpoint costs nothing between them.  Watchpoints share numbers with breakpoints (delete, "
            "disable, enable, info breakpoints).  An instruction or data directive typed at the prompt that "
            "changes watched words reports the change with its output (the debugger does not move).  "
            "Example: watch y[0, 0:4] if any(y[0, 0:4] > 100).", _watch, "expr"),
    Command("delete", ("d",), "delete [N...]", "delete breakpoints and watchpoints (all without N)",
            "Delete the numbered breakpoints or watchpoints, or all of them.", lambda d, a: d.delete(_numbers(a))),
    Command("disable", (), "disable [N...]", "disable breakpoints and watchpoints (all without N)",
            "Disable the numbered breakpoints or watchpoints, or all of them.",
            lambda d, a: d.enable(_numbers(a), False)),
    Command("enable", (), "enable [N...]", "enable breakpoints and watchpoints (all without N)",
            "Enable the numbered breakpoints or watchpoints, or all of them.",
            lambda d, a: d.enable(_numbers(a), True)),
    Command("info", ("i",), "info WHAT", "breakpoints, watchpoints, display, units, vxm, mxm[N], layers, calls",
            "info breakpoints: breakpoints and watchpoints: number, enabled, hits, where, condition.\n"
            "info watchpoints: the watchpoints only.\n"
            "info display: the expressions shown after each stop.\n"
            "info units [N]: each queue with instructions: unit, issued so far / total, its busy and idle cycles "
            "so far (a cycle is busy when the queue issues in it, as in stats), its utilisation up to the current "
            "cycle, a timeline sparkline of the last N cycles (default 64; one mark per cycle, or per bucket of "
            "cycles with eighth blocks for the busy share, '·' idle) and its next instruction.\n"
            "info vxm: each VXM ALU's last instruction (and when its result is on its stream) and next one.\n"
            "info mxm, info mxm0: each (or one) MXM plane: installed weights (dtype, shape), weight-buffer "
            "rows, pending products (with the cycles they are ready) and the accumulator rows in use.\n"
            "info layers: the program by the files of its outermost calls (an instruction's outermost call is the "
            "first macro call of its expansion chain, or the instruction itself outside any macro), which for an "
            "image of 'lpuasm model build' are its layers (layer<N>.lasm): per file, its layer number, calls, "
            "instructions, those issued so far, its first and last issue cycle and the cycles it adds (how far its "
            "last issue lies past that of every file above it; the files are in the order of their last issue, "
            "so the adds sum to the run's issue cycles); '=>' marks the layer of the next instruction, and the "
            "last line names its call.\n"
            "info calls [LAYER]: a cycle profile of one layer (a number, or a file as info layers lists it; "
            "default: the layer of the next instruction): per outermost call in source order, its line, macro "
            "(from the image, so no source file is needed), instructions, issued so far, first and last issue "
            "cycle, span (last - first + 1), the cycles it adds past every earlier call and the layers above "
            "(they sum to the layer's adds), and the source line when the file is readable.",
            _info, "info"),
    Command("print", ("p",), "print[/FMT] WHAT", "show a symbol, SRAM words, a stream value or MXM state",
            "WHAT is a data symbol with an optional numpy-style index (y, y[0:2, 0:8]), SRAM words "
            "(W3.b0[0:4]), a stream at a position (s3e@w2: the value passing there now; s3e@w2:15: at an "
            "earlier cycle 15), a stream without a position (s2e: a typed instruction's result), or MXM plane "
            "state: mxm0 (as info mxm0), mxm0.weights[0:2, 0:8], mxm0.buffer, mxm0.acc[ROW] (one accumulator "
            "row), mxm0.acc (the rows in use).  FMT is a dtype (i8 i16 i32 f16 f32: reinterpret the same "
            "bytes), u8, or x (hex).",
            lambda d, a: _examine(d, a, None), "expr", formats=True),
    Command("x", (), "x/FMT WHAT", "examine: print with a format",
            "The same as print/FMT: x/f32 y[0:2, 0:8], x/x W3.b0[0:2], x/f32 s4e@vxm, x/f16 mxm0.weights[0:2, 0:8].",
            lambda d, a: _examine(d, a, None), "expr", formats=True),
    Command("display", ("disp",), "display[/FMT] [WHAT]", "print WHAT now and after every stop",
            "Print WHAT (anything print takes) now and again after every command that moves (step, cycle, "
            "continue, until, goto, back, reset, load), numbered.  Without WHAT: show every display now.",
            lambda d, a: d.add_display(a), "expr", formats=True),
    Command("undisplay", (), "undisplay [N...]", "stop displaying (all without N)",
            "Delete the numbered displays, or all of them.", lambda d, a: d.undisplay(_numbers(a, "display"))),
    Command("asm", (), "[asm] INSTRUCTION | .equ NAME, VALUE | .data ...",
            "run a typed instruction now; define a constant or a tensor",
            "A line whose first word is a mnemonic (vadd.i8 s0e, 1, s2e) is assembled with the data symbols "
            "and constants in scope and the chip config (errors in the assembler's words; the state stays "
            "intact), then run at once at the current cycle, at its unit's position.  Stream operands are the "
            "result of an earlier typed instruction on that stream (since the debugger last moved), else the "
            "value the program has passing that position now.  MEM (read, write, gather, scatter), VXM, SXM and "
            "MXM instructions run; results go to a scratch copy of their streams (print s2e) that later "
            "typed instructions read and the next move clears, never to the program's instructions; an SRAM "
            "write lands at once and stays while you go forward or back to any point at or after it (a replay "
            "re-applies it); going back to before it, reset or load drops it; a write that changes the words of "
            "a watchpoint reports it.  An MXM instruction acts on its plane at once, as if its latency were zero "
            "(lw appends a weight row, iw installs the buffer, abc queues a product ready now, acc takes the "
            "oldest ready product, the program's queued first, into an accumulator row and puts the row on its "
            "streams: x/f32 s8e), and its change stays and is replayed like a typed write (the program's own MXM "
            "instructions then see it: info mxm).  C2C instructions (no data in this simulator) and ICU ones "
            "(nop, repeat, ifetch, sync, notify, config, halt: they pace or order the program's queues) do not "
            "run.  A pin (@...) is ignored.  '.equ NAME, VALUE' (or .set) defines a constant for later typed "
            "instructions and conditions.  Data directives ('.data NAME, ADDRESS, DTYPE, VALUES', "
            "'.space NAME, ADDRESS, DTYPE, ROWS [, COLS]', '.blob NAME, ADDRESS, DTYPE, ROWS, COLS, \"BASE64\"', "
            "'.npy NAME, ADDRESS, \"FILE\" [, DTYPE]') are lowered by the assembler (its checks and words: an "
            "overlap with a symbol in scope is its overlap error) and place the tensor in SRAM now, at the "
            "current cycle, through the undo log, like a typed write; the symbol then works in print, x, watch, "
            "conditions and typed instructions until the tensor is dropped.  .space only names the words.",
            _typed, "asm"),
    Command("disasm", ("dis",), "disasm [ROW|@CYCLE|LABEL] [N]", "instructions around a row, in issue order",
            "N rows (default 10) of the issue order around a program row, the first row of a cycle or a label "
            "(default: the next instruction), each with its cycle, queue and source; '=>' marks the next "
            "instruction, 'b' a breakpoint.", _disasm, "breakspec"),
    Command("trace", (), "trace FILE", "write a Perfetto trace of what ran so far",
            "Write a Chrome Trace Event JSON file (open it in ui.perfetto.dev) with one track per queue and one "
            "event per instruction issued so far.", lambda d, a: d.trace(a), "file"),
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
    """Run one command line; raises DebugError (one line) on failure.  A line
    whose first word is a mnemonic or a directive is a typed instruction."""
    from .typed import is_typed, run_typed

    if is_typed(line) and line.split()[0] not in BY_NAME:
        return run_typed(d, line)
    m = _LINE.match(line)
    if not m:
        raise DebugError(f"cannot parse '{line.strip()}' (help lists the commands)")
    word, fmt, args = m.group(1), m.group(2), m.group(3)
    cmd = lookup(word)
    if fmt is not None and not cmd.formats:
        raise DebugError(f"{cmd.name} takes no /FORMAT")
    if cmd.name in ("print", "x"):
        out = d.examine(args, fmt)
    elif cmd.name == "display":
        out = d.add_display(args, fmt)
    else:
        out = cmd.handler(d, args)
    if cmd.moves and d.displays:
        shown = d.show_displays()
        out = f"{out}\n{shown}" if out else shown
    return out


def complete(d: Debugger | None, text: str) -> list[tuple[str, int]]:
    """Completions of the text before the cursor: (word, start) pairs, where
    start is the (negative) offset from the cursor at which the word replaces text."""
    m = re.match(r"^\s*(\w+)/(\w*)$", text)
    if m:  # a format: x/f32
        return [(f, -len(m.group(2))) for f in (*DTYPE_BYTES, "u8", "x") if f.startswith(m.group(2))]
    m = re.match(r"^\s*(\S*)$", text)
    if m:  # the command word
        word = m.group(1)  # a command, else a mnemonic (a typed instruction)
        return [(n, -len(word)) for n in dict.fromkeys((*NAMES, *MNEMONICS)) if n.startswith(word)]
    head = text.split()[0].split("/")[0]
    cmd = BY_NAME.get(head)
    if cmd is None:
        if head.split(".")[0].lower() in MNEMONICS:  # a typed instruction's operands: symbols
            word = re.split(r"[\s,\[]", text)[-1]
            return [(c, -len(word)) for c in (d.symbol_names() if d else ()) if c.startswith(word)]
        return []
    word = re.split(r"[\s,\[]", text)[-1]
    if cmd.completes == "command":
        cands = NAMES
    elif cmd.completes == "info":
        cands = ("breakpoints", "watchpoints", "display", "units", "vxm", "mxm", "layers", "calls",
                 *(f"mxm{i}" for i in range(d.program.config.mxm_planes if d and d.program else 0)))
    elif cmd.completes == "cond":
        cands = ("cycle", "row", "queue", *_COND_NAMES, *(d.symbol_names() if d else ()))
    elif cmd.completes == "asm":
        cands = (*MNEMONICS, *(d.symbol_names() if d else ()))
    elif cmd.completes == "breakspec":
        if " if " in text:
            cands = ("cycle", "row", "queue", "hits", *(d.symbol_names() if d else ()))
        else:
            cands = (*(d.label_names() if d else ()), *MNEMONICS, *(d.queue_names() if d else ()), *UNIT_KINDS,
                     "layer")
    elif cmd.completes == "expr":
        if "@" in word:  # a stream's position
            pre, _, pos = word.rpartition("@")
            places = ("vxm", "sxmw", "sxme", "mxmw", "mxme", *(d.queue_names() if d else ()))
            return [(p, -len(pos)) for p in dict.fromkeys(places) if p.startswith(pos)]
        cands = (*(d.symbol_names() if d else ()), *(("nan",) if cmd.name == "watch" else ()),
                 *(f"mxm{i}" for i in range(d.program.config.mxm_planes if d and d.program else 0)))
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
