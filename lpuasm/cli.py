"""The ``lpuasm`` command line.  ``main(argv) -> int`` so tests can call it.

Exit codes: 0 success, 1 bad input (diagnostics on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() returns the code."""

    def exit(self, status=0, message=None):
        if message:
            (sys.stderr if status else sys.stdout).write(message)
        raise _Exit(status)

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Exit(Exception):
    def __init__(self, code: int):
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lpuasm", description="Assembler, simulator and debugger for a simulated Groq-style LPU.")
    p.add_argument("--version", action="version", version=f"lpuasm {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    a = sub.add_parser("asm", help="assemble a .lasm file into a .lpu image",
                       description="Assemble FILE.lasm into a binary image (default: FILE.lpu).")
    a.add_argument("file", metavar="FILE.lasm")
    a.add_argument("-o", "--output", metavar="OUT.lpu", help="image to write (default: FILE.lpu)")
    a.add_argument("--listing", metavar="FILE", help="write a listing (cycle, queue, word, source) to FILE ('-' = stdout)")
    a.add_argument("--symbols", metavar="FILE", help="write the symbol map to FILE ('-' = stdout)")
    a.add_argument("-I", dest="include", action="append", default=[], metavar="DIR", help="add DIR to the include path")
    a.add_argument("-D", dest="define", action="append", default=[], metavar="NAME=VALUE", help="define a constant")
    _config_arg(a)
    a.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")

    e = sub.add_parser("expand", help="print a program with its macros, loops and conditions expanded",
                       description="Print FILE.lasm fully expanded: directives evaluated, every macro, .rept, .for "
                                   "and .if expanded, one instruction per line, indented by its macro expansion "
                                   "depth, with its source line and macro chain as a comment.  The text assembles "
                                   "to the same program.")
    e.add_argument("file", metavar="FILE.lasm")
    e.add_argument("-o", "--output", metavar="OUT.lasm", help="write to OUT.lasm instead of stdout")
    e.add_argument("-I", dest="include", action="append", default=[], metavar="DIR", help="add DIR to the include path")
    e.add_argument("-D", dest="define", action="append", default=[], metavar="NAME=VALUE", help="define a constant")
    _config_arg(e)

    d = sub.add_parser("disasm", help="disassemble a .lpu image into source",
                       description="Print source that re-assembles to a byte-identical image.")
    d.add_argument("file", metavar="FILE.lpu")
    d.add_argument("-o", "--output", metavar="OUT.lasm", help="write to OUT.lasm instead of stdout")
    _config_arg(d, "chip config of an image built for a config file (built-in ones are recognised)")

    r = sub.add_parser("run", help="run a program on the simulated chip",
                       description="Run FILE (a .lasm source, assembled on the fly, or a .lpu image) on the simulated "
                                   "chip and report its cycle count (docs/timing-model.md).")
    r.add_argument("file", metavar="FILE")
    _config_arg(r)
    r.add_argument("-I", dest="include", action="append", default=[], metavar="DIR", help="include path (for .lasm)")
    r.add_argument("-D", dest="define", action="append", default=[], metavar="NAME=VALUE", help="define a constant")
    r.add_argument("--stats", action="store_true", help="print cycles, per-unit utilisation, SRAM traffic, MACs")
    r.add_argument("--json", action="store_true", help="print the statistics as one JSON object")
    r.add_argument("--trace", metavar="OUT.json", help="write a Chrome/Perfetto trace of the issued instructions")
    r.add_argument("--trace-limit", type=int, default=200_000, metavar="N",
                   help="at most N instructions in the trace, the first ones in issue order (default 200000)")
    r.add_argument("--dump", action="append", default=[], metavar="SYMBOL[:FILE.npy]",
                   help="print a data symbol's final tensor, or save it to FILE.npy")
    r.add_argument("--timing-only", action="store_true", help="check the schedule and count cycles without numerics")
    r.add_argument("--max-cycles", type=int, metavar="N", help="refuse programs that run longer than N cycles")
    r.add_argument("--allow-uninit", action="store_true", help="let reads of uninitialised SRAM return zeros")
    r.add_argument("--strict-fp", action="store_true", help="stop at the first NaN or Inf result")

    i = sub.add_parser("isa", help="instruction set reference",
                       description="List the instruction set, or describe one instruction, from the instruction table.")
    i.add_argument("mnemonic", nargs="?", metavar="MNEMONIC")
    i.add_argument("--markdown", action="store_true", help="print the whole reference as Markdown (docs/isa.md)")

    rp = sub.add_parser("repl", help="interactive debugger: step, break, examine, go back",
                        description="Debug FILE (a .lasm source or .lpu image) interactively; with --script, or "
                                    "when stdin is not a terminal, run commands line by line ('help' lists them).")
    rp.add_argument("file", nargs="?", metavar="FILE")
    _config_arg(rp)
    rp.add_argument("--script", metavar="FILE", help="run the commands in FILE, echoing each, then exit")

    m = sub.add_parser("demo", help="the main job: a small Llama model built, run and verified on the chip",
                       description="Build a small Llama-style model with random weights (tiny-llama: 2 layers, "
                                   "hidden 256, 4 heads / 2 KV heads) as one unrolled program from the stdlib "
                                   "macros, assemble it, load the image back with every check, run it on the "
                                   "simulated chip, compare every layer with the numpy reference forward pass, "
                                   "and report cycles per layer, "
                                   "latency, tokens/s and utilisation.")
    _config_arg(m)
    m.add_argument("--seq", type=int, default=16, metavar="N",
                   help="decode: the new token's position + 1 (a KV cache of N-1 tokens); prefill: the prompt "
                        "length (default 16)")
    m.add_argument("--mode", choices=("decode", "prefill"), help="default decode (prefill for an encoder)")
    m.add_argument("--preset", default="tiny-llama", metavar="NAME",
                   help="the model (random weights): tiny-llama (default), tiny-bert, or any preset that fits")
    m.add_argument("--layers", type=int, metavar="N", help="only the first N layers")
    m.add_argument("--roundtrip", action="store_true",
                   help="also disassemble the image and re-assemble it (byte-identical; slow for big images)")
    m.add_argument("--keep", metavar="DIR", help="keep the generated program and image in DIR")

    _model_parser(sub)
    return p


def _model_parser(sub) -> None:
    """``lpuasm model SUBCOMMAND``: one subparser per model tool (capacity,
    build, run, verify), dispatched through ``_MODEL_COMMANDS``."""
    mo = sub.add_parser("model", help="model tools: capacity, build, run, verify (Llama/BERT on the chip)",
                        description="Tools for Llama/BERT models (docs/model.md).")
    mo.set_defaults(model_parser=mo)
    msub = mo.add_subparsers(dest="model_command", metavar="SUBCOMMAND", parser_class=_Parser)

    c = msub.add_parser("capacity", help="print the bytes a model needs on chip and whether it fits one chip",
                        description="Count the bytes a model needs on chip (weights, KV cache, activations; "
                                    "unpadded, a lower bound) against one chip's SRAM, and say whether it fits "
                                    "or about how many chips it needs.  A report: exits 0 either way.")
    c.set_defaults(model_parser=c)
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", metavar="NAME", help="a named model: tiny-llama, llama2-7b, bert-base, ...")
    src.add_argument("--checkpoint", metavar="DIR",
                     help="a Hugging Face checkpoint directory (only its config.json is read)")
    src.add_argument("--shapes", metavar="SPEC",
                     help="shapes as key=value,... (e.g. hidden=256,heads=4,ffn=688,layers=2); needs --arch")
    c.add_argument("--arch", choices=("llama", "bert"),
                   help="architecture: required with --shapes, checked against --preset/--checkpoint")
    c.add_argument("--layers", type=int, metavar="N", help="cut (or grow) the model to N layers")
    c.add_argument("--seq", type=int, metavar="N",
                   help="prompt length (prefill) or KV-cache length (decode); default: max_position_embeddings")
    c.add_argument("--mode", choices=("prefill", "decode"),
                   help="prefill or decode (default: decode for llama, prefill for bert)")
    c.add_argument("--dtype", choices=("fp16", "int8"), default="fp16", help="weight dtype (default fp16)")
    _config_arg(c)
    c.add_argument("--json", action="store_true", help="print the capacity as one JSON object")

    b = msub.add_parser("build", help="build a model's layers into an .lpu image (one unrolled program)",
                        description="Build the model's layers as one fully unrolled program from the stdlib "
                                    "macros, with the weights laid out in SRAM, and assemble it into an image "
                                    "(docs/model.md).  Presets and --shapes get seeded random weights.")
    _model_source_args(b)
    b.add_argument("-o", "--output", metavar="FILE.lpu", help="write the image here")
    b.add_argument("--source", metavar="DIR", help="also keep the generated program (model.lasm, layer*.lasm, "
                                                   "*.npy) in DIR")
    b.add_argument("--timing-only", action="store_true",
                   help="no weights: build the program only to time it (runs it timing-only and prints the "
                        "cycles); for models larger than one chip")

    r = msub.add_parser("run", help="run a model image and report cycles per layer, latency and tokens/s",
                        description="Run an image built by 'lpuasm model build' on the simulated chip.")
    r.set_defaults(model_parser=r)
    r.add_argument("image", metavar="MODEL.lpu")
    r.add_argument("--input", metavar="FILE.npy", help="the input embeddings (rows x hidden) in place of the "
                                                      "built-in ones")
    r.add_argument("-o", "--output", metavar="FILE.npy", help="write the last layer's output (rows x hidden)")
    r.add_argument("--timing-only", action="store_true", help="count cycles only (no values)")
    r.add_argument("--profile", type=int, metavar="LAYER", help="also list the layer's macro calls with the "
                                                                "cycles each adds (its critical path)")
    r.add_argument("--json", action="store_true", help="print the report as one JSON object")
    _config_arg(r)

    v = msub.add_parser("verify", help="build, run, and compare every layer with the numpy reference",
                        description="Build the model, run it, run the independent numpy forward pass "
                                    "(lpuasm.model.reference) on the same tokens, and print the max absolute "
                                    "and relative error per layer; exit 1 when a layer's max |error| exceeds "
                                    "the tolerance (a fraction of the layer's max |value|: 0.02 for fp16, "
                                    "0.06 for int8 weights; docs/model.md).")
    _model_source_args(v)
    v.add_argument("--tolerance", type=float, metavar="X", help="relative tolerance (default 0.02, int8 0.06)")
    v.add_argument("--json", action="store_true", help="print the report as one JSON object")


def _model_source_args(p) -> None:
    p.set_defaults(model_parser=p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", metavar="NAME", help="a named model with random weights: tiny-llama, ...")
    src.add_argument("--checkpoint", metavar="DIR", help="a Hugging Face checkpoint (config.json + safetensors)")
    src.add_argument("--shapes", metavar="SPEC", help="shapes with random weights, e.g. hidden=256,heads=4,"
                                                      "kv_heads=2,ffn=688,layers=2; needs --arch")
    p.add_argument("--arch", choices=("llama", "bert"), help="architecture (required with --shapes)")
    p.add_argument("--layers", type=int, metavar="N", help="only the first N layers")
    p.add_argument("--seq", type=int, metavar="N", default=16,
                   help="prompt length (prefill) or positions incl. the new token (decode); default 16")
    p.add_argument("--mode", choices=("prefill", "decode"), help="default: decode for llama")
    p.add_argument("--dtype", choices=("fp16", "int8"), default="fp16",
                   help="weights: fp16 (default) or int8 with a scale per output channel (llama)")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights and tokens (default 0)")
    _config_arg(p)


def _config_arg(p, help_text="chip config: tsp-v1 (default), tiny, or a .toml/.json file"):
    p.add_argument("--config", metavar="NAME|FILE", help=help_text)


def main(argv: list[str] | None = None) -> int:
    from .diagnostics import LpuError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        return _COMMANDS[args.command](args)
    except _Exit as e:
        return e.code
    except LpuError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lpuasm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def main_entry() -> None:
    sys.exit(main())


# ---- commands --------------------------------------------------------------------
def _load_config(spec):
    from .config import ConfigError, load
    from .diagnostics import LpuError

    try:
        return load(spec) if spec else None
    except ConfigError as e:
        raise LpuError(str(e)) from None


def _write_text(path: str, text: str) -> None:
    from .diagnostics import LpuError

    if path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(path).write_text(text)
    except OSError as e:
        raise LpuError(f"cannot write {path}: {e.strerror}") from None


def cmd_asm(args) -> int:
    from . import imagefile
    from .assembler import assemble_file
    from .diagnostics import LpuError
    from .listing import listing, symbol_map
    from .schedule import issue_end

    config = _load_config(args.config)
    defines = _defines(args)
    for d in args.include:
        if not Path(d).is_dir():
            raise LpuError(f"-I {d}: not a directory")
    asm = assemble_file(args.file, config=config, include_dirs=args.include, defines=defines)
    for w in asm.warnings:
        print(w.render(asm.sources), file=sys.stderr)
    out = args.output or str(Path(args.file).with_suffix(".lpu"))
    blob = imagefile.to_bytes(asm.image, asm.config)
    _write_bytes(out, blob)
    if args.listing:
        _write_text(args.listing, listing(asm.image, asm.config, asm.sources))
    if args.symbols:
        _write_text(args.symbols, symbol_map(asm.image, asm.config))
    if not args.quiet:
        n = asm.image.instruction_count()
        last = issue_end(asm.ir, asm.cycles)
        print(f"{out}: {n} instruction{'s' * (n != 1)} on {len(asm.image.text)} queue"
              f"{'s' * (len(asm.image.text) != 1)}, issue ends at cycle {last}, "
              f"{len(blob)} bytes, chip {asm.config.name}")
    return 0


def _defines(args) -> dict:
    from .diagnostics import LpuError
    from .lower import parse_define

    defines = {}
    for text in getattr(args, "define", []):
        try:
            name, value = parse_define(text)
        except ValueError as e:
            raise LpuError(str(e)) from None
        defines[name] = value
    return defines


def cmd_expand(args) -> int:
    from .assembler import assemble_file
    from .diagnostics import LpuError
    from .expand import expanded_text

    for d in args.include:
        if not Path(d).is_dir():
            raise LpuError(f"-I {d}: not a directory")
    asm = assemble_file(args.file, config=_load_config(args.config), include_dirs=args.include,
                        defines=_defines(args), stop_after="lower")
    for w in asm.warnings:
        print(w.render(asm.sources), file=sys.stderr)
    text = expanded_text(asm.ir, Path(args.file).name)
    if args.output:
        _write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_disasm(args) -> int:
    from .disasm import disassemble

    image, cfg = _read_image(args.file, _load_config(args.config))
    text = disassemble(image, cfg, Path(args.file).name)
    if args.output:
        _write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _assemble_or_load(args):
    """(image, config, sources) of a .lasm (assembled now) or .lpu file."""
    from .assembler import assemble_file

    config = _load_config(args.config)
    path = Path(args.file)
    if path.suffix == ".lpu":
        return (*_read_image(path, config), None)
    asm = assemble_file(path, config=config, include_dirs=getattr(args, "include", []), defines=_defines(args))
    for w in asm.warnings:
        print(w.render(asm.sources), file=sys.stderr)
    return asm.image, asm.config, asm.sources


def cmd_run(args) -> int:
    import json

    import numpy as np

    from .diagnostics import LpuError
    from .interp import Interrupted, run
    from .program import load_program
    from .report import summary, table, to_json, trace
    from .sim import SimError

    if args.max_cycles is not None and args.max_cycles < 0:
        raise LpuError("--max-cycles must not be negative")
    image, cfg, sources = _assemble_or_load(args)
    dumps = []
    names = {d.name for d in image.data}
    for spec in args.dump:
        name, _, out = spec.partition(":")
        if name not in names:
            from .diagnostics import did_you_mean
            hint = did_you_mean(name, names)
            raise LpuError(f"--dump {spec}: no data symbol '{name}'" + (f"; {hint}" if hint else ""))
        if args.timing_only:
            raise LpuError("--dump needs a numeric run (drop --timing-only)")
        dumps.append((name, out))
    program = load_program(image, cfg)
    if args.trace:
        if args.trace_limit < 1:
            raise LpuError("--trace-limit must be at least 1")
        _write_text(args.trace, json.dumps(trace(program, limit=args.trace_limit)))
        if len(program) > args.trace_limit:
            print(f"lpuasm: the trace holds the first {args.trace_limit} of {len(program)} instructions "
                  f"(--trace-limit)", file=sys.stderr)
    try:
        result = run(program, timing_only=args.timing_only, allow_uninit=args.allow_uninit,
                     strict_fp=args.strict_fp, max_cycles=args.max_cycles)
    except SimError as e:
        if sources is not None:
            e.sources = sources
        print(e.render(), file=sys.stderr)
        if e.stats is not None and (args.stats or args.json):
            print("statistics of the schedule up to the error:", file=sys.stderr)
            print(table(e.stats, cfg, True), file=sys.stderr)
        return 1
    except Interrupted as e:
        print(f"lpuasm: {e}; statistics of the whole schedule:", file=sys.stderr)
        print(table(e.stats, cfg, args.timing_only), file=sys.stderr)
        return 130
    stats = result.stats
    if args.json:
        print(to_json(stats, cfg, args.timing_only))
    else:
        print(summary(args.file, stats, cfg))
        if args.stats:
            print(table(stats, cfg, args.timing_only))
    for name, out in dumps:
        tensor = result.tensor(name)
        if out:
            try:
                np.save(out, tensor)
            except OSError as e:
                raise LpuError(f"cannot write {out}: {e.strerror}") from None
        elif not args.json:
            with np.printoptions(threshold=2000, linewidth=120):
                print(f"{name} ({tensor.dtype}, {tensor.shape[0]}x{tensor.shape[1]}):\n{tensor}")
    return 0


def cmd_isa(args) -> int:
    from . import isadoc
    from .diagnostics import LpuError

    if args.markdown:
        sys.stdout.write(isadoc.markdown())
        return 0
    try:
        sys.stdout.write(isadoc.text(args.mnemonic))
    except KeyError:
        hint = isadoc.suggest(args.mnemonic)
        raise LpuError(f"unknown mnemonic '{args.mnemonic}'" + (f"; {hint}" if hint else "")) from None
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(_load_config(args.config), args.seq, args.mode, args.layers, args.keep, preset_name=args.preset,
                    roundtrip=args.roundtrip)


def cmd_repl(args) -> int:
    from .repl.session import main as repl_main

    return repl_main(args.file, _load_config(args.config), args.script)


def _model_config(args):
    """The ModelConfig named by --preset, --checkpoint or --shapes (with --arch)."""
    from .diagnostics import LpuError, did_you_mean
    from .model.config import PRESETS, load_hf_config, parse_shapes, preset

    if args.shapes is not None:
        if args.arch is None:
            args.model_parser.error("--shapes needs --arch llama|bert")
        return parse_shapes(args.arch, args.shapes)
    if args.checkpoint is not None:
        return load_hf_config(args.checkpoint, arch=args.arch)
    if args.preset.lower() not in PRESETS:
        hint = did_you_mean(args.preset, PRESETS)
        raise LpuError(f"unknown model preset '{args.preset}'" + (f"; {hint}" if hint else "")
                       + f" (known: {', '.join(PRESETS)})")
    cfg = preset(args.preset)
    if args.arch is not None and args.arch != cfg.arch:
        raise LpuError(f"--preset {args.preset} is a {cfg.arch} model, not {args.arch}")
    return cfg


def cmd_model_capacity(args) -> int:
    import json

    from .diagnostics import LpuError
    from .model.capacity import estimate

    for flag in ("layers", "seq"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise LpuError(f"--{flag} must be at least 1, got {value}")
    cfg = _model_config(args)
    mode = args.mode or ("decode" if cfg.arch == "llama" else "prefill")
    if cfg.arch == "bert" and mode == "decode":
        raise LpuError("--mode decode: bert is an encoder, only prefill applies")
    seq = args.seq if args.seq is not None else cfg.max_position_embeddings
    chip = _load_config(args.config)
    cap = estimate(cfg, chip=chip, mode=mode, dtype=args.dtype, seq=seq, layers=args.layers)
    if args.json:
        print(json.dumps({
            "model": cap.model, "arch": cfg.arch, "chip": cap.chip, "mode": cap.mode, "dtype": cap.dtype,
            "seq": cap.seq, "layers": cap.layers, "layer_weight_bytes": cap.layer_weight_bytes,
            "embedding_bytes": cap.embedding_bytes, "embedding_on_chip": cap.embedding_on_chip,
            "lm_head_bytes": cap.lm_head_bytes, "lm_head_on_chip": cap.lm_head_on_chip,
            "other_weight_bytes": cap.other_weight_bytes, "weight_bytes": cap.weight_bytes,
            "kv_cache_bytes": cap.kv_cache_bytes, "activation_bytes": cap.activation_bytes,
            "total_bytes": cap.total_bytes, "sram_bytes": cap.sram_bytes, "fits": cap.fits,
            "chips_for_weights": cap.chips_for_weights, "chips_total": cap.chips_total,
            "message": cap.message(),
        }))
    else:
        print(f"{cap.model}: {cap.mode}, seq {cap.seq}, {cap.dtype}, {cap.layers} layer"
              f"{'s' * (cap.layers != 1)}, chip {cap.chip}")
        print(cap.table())
        print(cap.message())
    return 0


def _model_setup(args):
    """(cfg, weights or None, chip, mode) from the model-source arguments."""
    from .config import TSP_V1
    from .diagnostics import LpuError
    from .model.checkpoint import load_checkpoint, random_weights

    for flag in ("layers", "seq"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise LpuError(f"--{flag} must be at least 1, got {value}")
    cfg = _model_config(args)
    if args.layers is not None:
        cfg = cfg.with_layers(args.layers)
    mode = args.mode or ("decode" if cfg.arch == "llama" else "prefill")
    if cfg.arch == "bert" and mode == "decode":
        raise LpuError("--mode decode: bert is an encoder, only prefill applies")
    chip = _load_config(args.config) or TSP_V1
    weights = None
    if not getattr(args, "timing_only", False):
        from .model.capacity import estimate

        cap = estimate(cfg, chip=chip, mode=mode, dtype=args.dtype, seq=args.seq, lm_head_on_chip=False)
        if not cap.fits:
            raise LpuError(cap.message() + "; --timing-only builds it without weights to count its cycles")
        if args.checkpoint is not None:
            _, weights = load_checkpoint(args.checkpoint, cfg)
        else:
            weights = random_weights(cfg, args.seed)
    return cfg, weights, chip, mode


def _image_bytes(image, chip) -> bytes:
    from . import imagefile

    return imagefile.to_bytes(image, chip)


def _write_bytes(path: str, blob: bytes) -> None:
    from .diagnostics import LpuError

    try:
        Path(path).write_bytes(blob)
    except OSError as e:
        raise LpuError(f"cannot write {path}: {e.strerror}") from None


def _read_image(path: str, config):
    """(image, config) of an .lpu file (config from --config or the built-in named in the image)."""
    from . import imagefile
    from .diagnostics import LpuError
    from .disasm import config_of

    image = imagefile.load(path, config)
    cfg = config or config_of(image)
    if cfg is None:
        raise LpuError(f"{path}: built for chip config '{image.config_name}', which is not built in; "
                       f"give its file with --config")
    return image, cfg


def cmd_model_build(args) -> int:
    from .model import runner
    from .model.report import build_lines, run_lines

    cfg, weights, chip, mode = _model_setup(args)
    inputs = None if weights is None else runner.prepare(cfg, weights, mode, args.seq, args.seed)
    built = runner.build(cfg, weights, chip, mode, args.seq, inputs, timing_only=args.timing_only,
                         source_dir=args.source, dtype=args.dtype)
    blob = _image_bytes(built.image, chip)
    if args.output:
        _write_bytes(args.output, blob)
    for line in build_lines(built, chip, len(blob)):
        print(line)
    if args.timing_only:
        for line in run_lines(runner.run_image(built.image, chip, timing_only=True), chip):
            print(line)
    return 0


def cmd_model_run(args) -> int:
    import json

    import numpy as np

    from .diagnostics import LpuError
    from .model import runner
    from .model.report import profile_lines, run_json, run_lines

    image, chip = _read_image(args.image, _load_config(args.config))
    x = None
    if args.input:
        try:
            x = np.load(args.input, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise LpuError(f"--input {args.input}: cannot load: {exc}") from None
    res = runner.run_image(image, chip, timing_only=args.timing_only, x=x)
    if args.output:
        if not res.hidden:
            raise LpuError("-o needs a numeric run (drop --timing-only)")
        try:
            np.save(args.output, res.hidden[-1], allow_pickle=False)
        except OSError as exc:
            raise LpuError(f"cannot write '{args.output}': {exc.strerror or exc}") from None
    if args.profile is not None and not 0 <= args.profile < res.meta["MODEL_LAYERS"]:
        raise LpuError(f"--profile {args.profile}: the model has layers 0..{res.meta['MODEL_LAYERS'] - 1}")
    if args.json:
        print(json.dumps(run_json(res, chip)))
    else:
        for line in run_lines(res, chip) + ([] if args.profile is None else profile_lines(res, args.profile)):
            print(line)
    return 0


def cmd_model_verify(args) -> int:
    import json

    from .model import runner
    from .model.report import build_lines, run_json, run_lines, verify_lines

    cfg, weights, chip, mode = _model_setup(args)
    tol = runner.TOLERANCES[args.dtype] if args.tolerance is None else args.tolerance
    inputs = runner.prepare(cfg, weights, mode, args.seq, args.seed)
    built = runner.build(cfg, weights, chip, mode, args.seq, inputs, dtype=args.dtype)
    res = runner.run_image(built.image, chip)
    errors = runner.compare(res.hidden, runner.reference_layers(cfg, weights, inputs, mode))
    ok = all(e.max_rel <= tol for e in errors)
    if args.json:
        out = run_json(res, chip)
        out["errors"] = [{"layer": e.layer, "max_abs": e.max_abs, "max_rel": e.max_rel} for e in errors]
        out.update(tolerance=tol, ok=ok)
        print(json.dumps(out))
    else:
        for line in build_lines(built, chip, None) + run_lines(res, chip) + verify_lines(errors, tol):
            print(line)
    return 0 if ok else 1


_MODEL_COMMANDS = {"capacity": cmd_model_capacity, "build": cmd_model_build, "run": cmd_model_run,
                   "verify": cmd_model_verify}


def cmd_model(args) -> int:
    if args.model_command is None:
        args.model_parser.print_help(sys.stderr)
        return 2
    return _MODEL_COMMANDS[args.model_command](args)


_COMMANDS = {"model": cmd_model, "repl": cmd_repl, "asm": cmd_asm, "expand": cmd_expand, "disasm": cmd_disasm, "run": cmd_run, "isa": cmd_isa, "demo": cmd_demo}
