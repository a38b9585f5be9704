"""The generated ISA reference (lpuasm.isadoc, docs/isa.md)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lpuasm import config, isa, isadoc

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "isa.md"


def test_docs_isa_md_is_up_to_date():
    assert DOC.exists(), "docs/isa.md is missing: run `python -m lpuasm.isadoc > docs/isa.md`"
    assert DOC.read_text() == isadoc.markdown(), (
        "docs/isa.md is out of date with lpuasm/isa.py: run `python -m lpuasm.isadoc > docs/isa.md`")


def test_markdown_is_deterministic_and_ends_with_one_newline():
    md = isadoc.markdown()
    assert md == isadoc.markdown()
    assert md.endswith("\n") and not md.endswith("\n\n")


def test_markdown_covers_every_instruction():
    md = isadoc.markdown()
    for row in isa.TABLE.values():
        assert f"\n### {row.mnemonic}\n" in md, row.mnemonic
        assert f"`{row.syntax}`" in md, row.mnemonic
        assert f"`{row.opcode:#04x}`" in md, row.mnemonic
        lat = config.TSP_V1.latency(row.latency)
        assert f"`{row.latency}` (tsp-v1: delay {lat.delay}, skew {lat.skew})" in md, row.mnemonic


def test_markdown_sections():
    md = isadoc.markdown()
    assert md.startswith("# ")
    for kind in isa.KINDS:
        assert f"| `{kind}` |" in md
    for dt, code in isa.DTYPES.items():
        assert f"| `{dt}` | {code} |" in md
    # one section per unit, in table order
    positions = [md.index(f"\n## {isadoc.UNIT_TITLES[u]}\n") for u in isa.UNITS]
    assert positions == sorted(positions)


def test_markdown_bit_layout_of_vadd():
    md = isadoc.markdown()
    entry = md[md.index("\n### vadd\n"):md.index("\n### vsub\n")]
    for f in isa.TABLE["vadd"].fields:
        assert f"| `{f.name}` | {f.lo + f.width - 1}:{f.lo} |" in entry, f.name
    assert "| `op` | 7:0 | opcode = 0x20 |" in entry
    assert "| - | 63:60 | reserved, zero |" in entry


def test_markdown_escapes_table_pipes():
    # vabs's semantics contain '|a|', which must not break markdown tables or prose
    md = isadoc.markdown()
    assert "\\|a\\|" in md
    tables: list[list[str]] = []
    previous = ""
    for line in md.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    assert len(tables) > len(isa.TABLE)
    for table in tables:
        columns = {line.count("|") - line.count("\\|") for line in table}
        assert len(columns) == 1, table


def test_text_lists_every_instruction_grouped_by_unit():
    out = isadoc.text()
    lines = out.splitlines()
    for row in isa.TABLE.values():
        assert any(l.strip().startswith(row.syntax) and l.rstrip().endswith(row.semantics)
                   for l in lines), row.mnemonic
    positions = [out.index(isadoc.UNIT_TITLES[u]) for u in isa.UNITS]
    assert positions == sorted(positions)


def test_text_one_instruction():
    row = isa.TABLE["vadd"]
    out = isadoc.text("vadd")
    assert row.syntax in out
    assert row.semantics in out
    assert "0x20" in out and "vxm.alu" in out
    lat = config.TSP_V1.latency("vxm.alu")
    assert f"delay {lat.delay}" in out
    for f in row.fields:
        assert f"{f.lo + f.width - 1}:{f.lo}" in out
    # case and dtype suffixes are ignored
    assert isadoc.text("VADD") == out
    assert isadoc.text("vadd.f32") == out


@pytest.mark.parametrize("mnemonic", sorted(isa.TABLE))
def test_text_every_instruction(mnemonic):
    out = isadoc.text(mnemonic)
    assert out.splitlines()[0] == isa.TABLE[mnemonic].syntax


def test_unknown_mnemonic():
    with pytest.raises(KeyError):
        isadoc.text("vadd2")
    with pytest.raises(KeyError):
        isadoc.text("")
    assert isadoc.suggest("vad") == "did you mean 'vadd'?"
    assert isadoc.suggest("trnspose") == "did you mean 'transpose'?"
    assert isadoc.suggest("qqqqqq") is None


def test_main_cli(capsys):
    assert isadoc.main([]) == 0
    assert capsys.readouterr().out == isadoc.markdown()
    assert isadoc.main(["--text", "halt"]) == 0
    assert capsys.readouterr().out.startswith("halt\n")
    assert isadoc.main(["--text", "hlt"]) == 1
    err = capsys.readouterr().err
    assert "unknown mnemonic 'hlt'" in err and "did you mean 'halt'?" in err


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "lpuasm.isadoc"], cwd=ROOT, capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    assert out.stdout == isadoc.markdown()
