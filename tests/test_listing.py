"""Golden listings and symbol maps (tests/golden/*.lst, *.sym).

Each example and two corpus files are assembled through the CLI
(``lpuasm asm FILE --listing ... --symbols ...``) from the repository root with
a relative file name, so the source paths the listing embeds are the same on
every machine.  After a deliberate change, regenerate and review the diff:

    python -m pytest tests/test_listing.py --update-goldens
    git diff tests/golden
"""

from pathlib import Path

import pytest

from lpuasm.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"
SOURCES = sorted(p.relative_to(ROOT) for p in (ROOT / "examples").glob("*.lasm")) + [
    Path("tests/corpus/encodings.lasm"),
    Path("tests/corpus/schedule.lasm"),
]
KINDS = ("lst", "sym")
HOW = "run `python -m pytest tests/test_listing.py --update-goldens` and review `git diff tests/golden`"


def test_golden_names_are_unique():
    stems = [p.stem for p in SOURCES]
    assert len(stems) == len(set(stems)), f"two sources share a golden name: {stems}"
    assert len(SOURCES) >= 7


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_listing_and_symbols_match_golden(source, tmp_path, monkeypatch, capsys, update_goldens):
    monkeypatch.chdir(ROOT)
    out = {kind: tmp_path / f"out.{kind}" for kind in KINDS}
    rc = main(["asm", str(source), "-q", "-o", str(tmp_path / "out.lpu"),
               "--listing", str(out["lst"]), "--symbols", str(out["sym"])])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.out == ""
    for kind in KINDS:
        got = out[kind].read_text()
        # machine independence: no absolute path of this checkout in a golden
        assert str(ROOT) not in got
        golden = GOLDEN / f"{source.stem}.{kind}"
        if update_goldens:
            GOLDEN.mkdir(exist_ok=True)
            golden.write_text(got)
            continue
        assert golden.exists(), f"{golden.relative_to(ROOT)} is missing: {HOW}"
        assert got == golden.read_text(), f"{golden.relative_to(ROOT)} is out of date: {HOW}"


def test_listing_golden_shape():
    """The goldens themselves look like listings of the right files."""
    for source in SOURCES:
        lst = (GOLDEN / f"{source.stem}.lst").read_text().splitlines()
        assert lst[0].startswith("; listing: chip "), source
        assert lst[1].split() == [";", "cycle", "queue", "word", "location", "instruction", "source"]
        # every instruction that came from source names that file, relatively
        located = [line for line in lst[2:] if f" {source.as_posix()}:" in line]
        assert located, f"{source}: no line of the listing names the source file"
        sym = (GOLDEN / f"{source.stem}.sym").read_text().splitlines()
        assert sym[0] == lst[0].split(",")[0].replace("listing", "symbols")


def test_no_stale_goldens(update_goldens):
    expected = {f"{p.stem}.{kind}" for p in SOURCES for kind in KINDS}
    stale = sorted(p.name for p in GOLDEN.glob("*") if p.name not in expected)
    if update_goldens:
        for name in stale:
            (GOLDEN / name).unlink()
        return
    assert not stale, f"golden files without a source: {stale}; {HOW}"
