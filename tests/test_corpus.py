"""The annotated corpus: small .lasm files whose comments state what must happen.

Annotations (in a line's comment):
  ``= 0xWORD``       the instruction on this line encodes to WORD
  ``cycle: N``       the instruction on this line issues at cycle N
  ``error: MESSAGE`` assembling reports exactly MESSAGE on this line
A file with error annotations must fail with exactly those (line, message)
pairs; a file without must assemble and match every word and cycle.
"""

import re
from pathlib import Path

import pytest

from lpuasm.assembler import assemble_file
from lpuasm.diagnostics import LpuError

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.lasm"))
WORD = re.compile(r";.*?=\s*(0x[0-9a-fA-F]+)")
CYCLE = re.compile(r";.*?cycle:\s*(\d+)")
ERROR = re.compile(r";\s*error:\s*(.*?)\s*$")


def annotations(path):
    words, cycles, errors = {}, {}, set()
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith(";"):
            continue
        if m := WORD.search(line):
            words[lineno] = int(m.group(1), 16)
        if m := CYCLE.search(line):
            cycles[lineno] = int(m.group(1))
        if m := ERROR.search(line):
            errors.add((lineno, m.group(1)))
    return words, cycles, errors


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus(path):
    words, cycles, errors = annotations(path)
    if errors:
        with pytest.raises(LpuError) as info:
            assemble_file(path)
        got = {(d.span.line, d.message) for d in info.value.diagnostics if d.span and d.severity == "error"}
        assert got == errors
        return
    asm = assemble_file(path)
    by_line = {}
    for row, line in enumerate(asm.ir.loc_line.tolist()):
        by_line.setdefault(line, row)
    assert words or cycles, "a corpus file must state something"
    for line, word in words.items():
        assert line in by_line, f"line {line}: no instruction"
        assert int(asm.ir.word[by_line[line]]) == word, f"line {line}: encoding"
    for line, cycle in cycles.items():
        assert int(asm.cycles[by_line[line]]) == cycle, f"line {line}: cycle"
