"""The REPL's front ends: a prompt_toolkit session (the only module of lpuasm
that imports prompt_toolkit), and a plain line-by-line runner for scripts and
for a stdin that is not a terminal."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from .commands import BY_NAME, complete, execute
from ..diagnostics import LpuError
from .core import Debugger
from .errors import DebugError, _one_line

PROMPT = "(lpu) "


class Repl:
    """Runs command lines against a :class:`Debugger`: dispatch, errors as one
    line, and Enter on an empty line repeating the last step command."""

    def __init__(self, debugger: Debugger):
        self.debugger = debugger
        self.last_repeatable: str | None = None
        self.failed = False

    def run_line(self, line: str, repeat_empty: bool = True) -> str | None:
        """Output of one line (None for nothing to print); raises SystemExit on quit."""
        if not line.strip():
            if not (repeat_empty and self.last_repeatable):
                return None
            line = self.last_repeatable
        if line.lstrip().startswith("#"):
            return None
        try:
            out = execute(self.debugger, line)
        except DebugError as e:
            self.failed = True
            return f"error: {e}"
        except LpuError as e:
            self.failed = True
            return f"error: {_one_line(e)}"
        word = line.split()[0].split("/")[0]
        cmd = BY_NAME.get(word)
        self.last_repeatable = line if cmd is not None and cmd.repeats else self.last_repeatable
        return out


def run_script(debugger: Debugger, lines, out=None) -> int:
    """Run commands line by line, echoing each (``(lpu) CMD``) before its output.
    Blank lines and ``#`` comments are skipped.  Returns 1 if any command failed."""
    out = out or sys.stdout
    repl = Repl(debugger)
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        out.write(f"{PROMPT}{line}\n")
        try:
            text = repl.run_line(line, repeat_empty=False)
        except SystemExit:
            break
        if text:
            out.write(text + "\n")
    return 1 if repl.failed else 0


def history_path() -> Path:
    """$XDG_DATA_HOME/lpuasm/history (default ~/.local/share/lpuasm/history)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lpuasm" / "history"


def make_completer(debugger: Debugger):
    """A prompt_toolkit Completer over :func:`lpuasm.repl.commands.complete`."""
    from prompt_toolkit.completion import Completer, Completion

    class LasmCompleter(Completer):
        def get_completions(self, document, complete_event):
            for word, start in complete(debugger, document.text_before_cursor):
                yield Completion(word, start_position=start)

    return LasmCompleter()


def make_session(debugger: Debugger, input=None, output=None, history_file: Path | None = None):
    """A PromptSession with lasm highlighting, file history, auto-suggestion,
    completion and a bottom toolbar."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.lexers import PygmentsLexer

    from ..highlight import LasmLexer

    history = InMemoryHistory()
    path = history_file if history_file is not None else history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        history = FileHistory(str(path))
    except OSError:
        pass
    return PromptSession(PROMPT, lexer=PygmentsLexer(LasmLexer), history=history,
                         auto_suggest=AutoSuggestFromHistory(), completer=make_completer(debugger),
                         complete_while_typing=False, bottom_toolbar=debugger.toolbar,
                         input=input, output=output)


def interactive(debugger: Debugger, session=None, print_fn=print) -> int:
    """The interactive loop: Ctrl-C at the prompt clears the line, during a
    command interrupts it; Ctrl-D (or quit) exits."""
    session = session or make_session(debugger)
    repl = Repl(debugger)
    while True:
        try:
            line = session.prompt()
        except KeyboardInterrupt:
            continue
        except EOFError:
            return 0
        previous = signal.getsignal(signal.SIGINT)
        try:
            signal.signal(signal.SIGINT, lambda *_: debugger.interrupt())
        except ValueError:  # not the main thread: no Ctrl-C handling
            previous = None
        try:
            text = repl.run_line(line)
        except SystemExit:
            return 0
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if text:
            print_fn(text)


def main(file: str | None, config=None, script: str | None = None) -> int:
    """``lpuasm repl``: load FILE, then run a script, stdin, or a prompt."""
    debugger = Debugger(config)
    if file:
        try:
            print(debugger.load(file))
        except DebugError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    if script is not None:
        try:
            with open(script) as f:
                lines = f.readlines()
        except OSError as e:
            print(f"error: cannot read {script}: {e.strerror}", file=sys.stderr)
            return 1
        return run_script(debugger, lines)
    if not sys.stdin.isatty():
        return run_script(debugger, sys.stdin)
    return interactive(debugger)
