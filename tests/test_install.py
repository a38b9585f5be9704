"""A real, non-editable install ships the grammar, the stdlib and the entry points.

The source tree is copied to a scratch folder (so the build never writes into
the checkout, and no stale ``build/`` output can leak into the wheel), installed
with ``pip install --no-deps --target``, and then used from a subprocess whose
working directory and ``sys.path`` hold no trace of the checkout: only the
install target, plus the interpreter's own site-packages for numpy, lark and
pygments.  Built once per module.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                ".hypothesis", ".venv", "*.lpu", "tests", "bench")
# pip failures that mean "cannot build offline here", not "the package is broken"
OFFLINE = ("Could not find a version that satisfies", "No matching distribution",
           "Failed to establish a new connection", "NewConnectionError", "Network is unreachable",
           "Temporary failure in name resolution")

SOURCE = '.chip tiny\n.include "lpu.lasm"\n.data x, W0.b0[0], i8, [[ACC_ADD, SUPERLANE_LANES]]\n' \
         '    read x, s0e @0\n    halt\n'

CHECK = textwrap.dedent("""\
    import json, os, sys
    from importlib import metadata, resources
    import lpuasm, lpuasm.parser
    from lpuasm.assembler import assemble_file, stdlib_dir
    import pygments.lexers

    grammar = resources.files("lpuasm.grammar").joinpath("lasm.lark")
    asm = assemble_file("main.lasm")
    lexer = pygments.lexers.get_lexer_by_name("lasm")
    eps = [ep for ep in metadata.entry_points(group="pygments.lexers") if ep.name == "lasm"]
    print(json.dumps({
        "lpuasm": lpuasm.__file__,
        "parser": lpuasm.parser.__file__,
        "grammar": str(grammar),
        "grammar_text": lpuasm.parser.grammar_text() == grammar.read_text(),
        "stdlib": str(stdlib_dir()),
        "stdlib_files": sorted(os.listdir(stdlib_dir())),
        "instructions": asm.image.instruction_count(),
        "consts": {c.name: c.value for c in asm.image.consts},
        "lexer": type(lexer).__module__ + "." + type(lexer).__qualname__,
        "lexer_file": sys.modules[type(lexer).__module__].__file__,
        "entry_points": [ep.value for ep in eps],
        "dist": str(metadata.distribution("lpuasm").locate_file("")),
        "path": sys.path,
    }))
""")


def _pip_install(source: Path, target: Path, isolated: bool) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--disable-pip-version-check",
           "--no-warn-script-location", "--target", str(target), str(source)]
    if not isolated:
        cmd.insert(4, "--no-build-isolation")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Path:
    """The install target folder (what a user's site-packages would hold)."""
    base = tmp_path_factory.mktemp("install")
    source, target = base / "src", base / "target"
    shutil.copytree(ROOT, source, ignore=IGNORE)
    p = _pip_install(source, target, isolated=True)
    if p.returncode != 0 and any(s in p.stdout + p.stderr for s in OFFLINE):
        # no index to fetch the build backend from: build with the one installed here, if any
        try:
            import setuptools  # noqa: F401
        except ImportError:
            pytest.skip("pip cannot build lpuasm offline (no build backend available): "
                        + (p.stderr.strip().splitlines() or ["?"])[-1])
        shutil.rmtree(target, ignore_errors=True)
        p = _pip_install(source, target, isolated=False)
    assert p.returncode == 0, f"pip install failed:\n{p.stdout}\n{p.stderr}"
    return target


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> Path:
    """A working directory that is neither the checkout nor the install."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    (cwd / "main.lasm").write_text(SOURCE)
    return cwd


def _run(target: Path, cwd: Path, *argv) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(target)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def _under(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def test_wheel_contents(target):
    """The package data is in the install and in its RECORD."""
    assert (target / "lpuasm" / "grammar" / "lasm.lark").is_file()
    assert (target / "lpuasm" / "stdlib" / "lpu.lasm").is_file()
    assert not (target / "grammar").exists() and not (target / "stdlib").exists()
    (dist,) = target.glob("lpuasm-*.dist-info")
    record = {line.split(",")[0] for line in (dist / "RECORD").read_text().splitlines()}
    for f in ("lpuasm/grammar/lasm.lark", "lpuasm/stdlib/lpu.lasm", "lpuasm/cli.py", "lpuasm/highlight.py"):
        assert f in record, f
    entry_points = (dist / "entry_points.txt").read_text()
    assert "lasm = lpuasm.highlight:LasmLexer" in entry_points
    assert "lpuasm = lpuasm.cli:main_entry" in entry_points


def test_installed_package_finds_its_data(target, elsewhere):
    p = _run(target, elsewhere, sys.executable, "-c", CHECK)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    # nothing of the checkout on sys.path, except the interpreter's own environment
    # (CI makes its virtual environment inside the clone)
    env = Path(sys.prefix).resolve()
    assert not any(_under(entry, ROOT) and not _under(entry, env) for entry in got["path"] if entry), got["path"]
    # the code, the grammar and the stdlib all come from the install
    for key in ("lpuasm", "parser", "grammar", "stdlib", "lexer_file", "dist"):
        assert _under(got[key], target), (key, got[key])
    assert Path(got["grammar"]) == target / "lpuasm" / "grammar" / "lasm.lark"
    assert got["grammar_text"] is True
    assert Path(got["stdlib"]) == target / "lpuasm" / "stdlib"
    assert "lpu.lasm" in got["stdlib_files"]
    # `.include "lpu.lasm"` was found in the installed stdlib
    assert got["instructions"] == 2
    assert got["consts"]["ACC_ADD"] == 1 and got["consts"]["SUPERLANE_LANES"] == 16
    # pygments finds the lexer through the installed dist-info's entry point
    assert got["lexer"] == "lpuasm.highlight.LasmLexer"
    assert got["entry_points"] == ["lpuasm.highlight:LasmLexer"]


def test_installed_module_runs(target, elsewhere):
    p = _run(target, elsewhere, sys.executable, "-m", "lpuasm", "isa", "vadd")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "vadd.<dt> a, b, d [, alu]"
    p = _run(target, elsewhere, sys.executable, "-m", "lpuasm", "asm", "main.lasm", "-o", "out.lpu")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("out.lpu: 2 instructions on 2 queues, ")
    assert (elsewhere / "out.lpu").is_file()


def test_installed_console_script(target, elsewhere):
    script = target / "bin" / "lpuasm"
    if not script.is_file():
        pytest.skip("pip --target wrote no bin/lpuasm on this platform")
    p = _run(target, elsewhere, str(script), "--version")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("lpuasm ")
    p = _run(target, elsewhere, str(script), "asm", "missing.lasm")
    assert p.returncode == 1
    assert p.stderr == "lpuasm: error: cannot read missing.lasm: No such file or directory\n"


def test_every_subpackage_is_installed(target):
    """A package missing from pyproject's list would install without it."""
    source = {p.parent.relative_to(ROOT) for p in (ROOT / "lpuasm").rglob("__init__.py")
              if "__pycache__" not in p.parts}
    installed = {p.parent.relative_to(target) for p in (target / "lpuasm").rglob("__init__.py")}
    assert source <= installed, sorted(map(str, source - installed))
    modules = {p.relative_to(ROOT) for p in (ROOT / "lpuasm").rglob("*.py") if "__pycache__" not in p.parts}
    got = {p.relative_to(target) for p in (target / "lpuasm").rglob("*.py")}
    assert modules <= got, sorted(map(str, modules - got))
