"""The assembler directives: name -> (usage, one-line meaning).

Like the instruction table, this list drives the assembler's checks, the
highlighter and the docs; it is pure Python so the lexer can import it.
"""

DIRECTIVES: dict[str, tuple[str, str]] = {
    "chip": ("NAME | \"FILE\"", "the chip config this file is written for (main file only)"),
    "equ": ("NAME, VALUE", "define a constant"),
    "set": ("NAME, VALUE", "define or redefine a variable constant"),
    "include": ("\"FILE\"", "assemble FILE here (searched beside this file, then -I dirs, then the stdlib)"),
    "once": ("", "include this file at most once: a later '.include' of it is skipped (an include guard)"),
    "data": ("NAME, ADDRESS, DTYPE, VALUES", "place a tensor given as a list (or list of rows) in SRAM"),
    "npy": ("NAME, ADDRESS, \"FILE.npy\" [, DTYPE]", "place a tensor loaded from a .npy file in SRAM"),
    "blob": ("NAME, ADDRESS, DTYPE, ROWS, COLS, \"BASE64\"",
             "place a tensor given as base64 of its little-endian bytes, row-major (exact, compact)"),
    "space": ("NAME, ADDRESS, DTYPE, ROWS [, COLS]", "reserve SRAM for a tensor (no initial value)"),
    "loc": ("\"FILE\", LINE, COL [, \"MACRO\", \"FILE\", LINE, COL]...",
            "the source location (and macro expansion chain, innermost first) recorded for the instructions that follow"),
    "macro": ("NAME [PARAM [= DEFAULT]], ...", "define a macro, up to '.endm'; call it as NAME ARG, ..., PARAM=ARG"),
    "endm": ("", "end a '.macro' definition"),
    "rept": ("COUNT", "assemble the lines up to '.endr' COUNT times"),
    "endr": ("", "end a '.rept' block"),
    "for": ("VAR, START, STOP [, STEP]", "assemble the lines up to '.endfor' for VAR in range(START, STOP, STEP)"),
    "endfor": ("", "end a '.for' block"),
    "if": ("CONDITION", "assemble the lines up to '.elif', '.else' or '.endif' if CONDITION is not 0"),
    "elif": ("CONDITION", "else, assemble the lines that follow if CONDITION is not 0"),
    "else": ("", "else, assemble the lines up to '.endif'"),
    "endif": ("", "end an '.if' block"),
    "error": ("\"MESSAGE\" [, VALUE]...", "report an error at this line ('{}' in MESSAGE: the next VALUE)"),
    "warning": ("\"MESSAGE\" [, VALUE]...", "report a warning at this line ('{}' in MESSAGE: the next VALUE)"),
}

#: Directives the grammar accepts that are not implemented yet.
RESERVED: tuple[str, ...] = ()
