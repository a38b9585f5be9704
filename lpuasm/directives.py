"""The assembler directives: name -> (usage, one-line meaning).

Like the instruction table, this list drives the assembler's checks, the
highlighter and the docs; it is pure Python so the lexer can import it.
"""

DIRECTIVES: dict[str, tuple[str, str]] = {
    "chip": ("NAME | \"FILE\"", "the chip config this file is written for (main file only)"),
    "equ": ("NAME, VALUE", "define a constant"),
    "set": ("NAME, VALUE", "define or redefine a variable constant"),
    "include": ("\"FILE\"", "assemble FILE here (searched beside this file, then -I dirs, then the stdlib)"),
    "data": ("NAME, ADDRESS, DTYPE, VALUES", "place a tensor given as a list (or list of rows) in SRAM"),
    "npy": ("NAME, ADDRESS, \"FILE.npy\" [, DTYPE]", "place a tensor loaded from a .npy file in SRAM"),
    "blob": ("NAME, ADDRESS, DTYPE, ROWS, COLS, \"BASE64\"",
             "place a tensor given as base64 of its little-endian bytes, row-major (exact, compact)"),
    "space": ("NAME, ADDRESS, DTYPE, ROWS [, COLS]", "reserve SRAM for a tensor (no initial value)"),
    "loc": ("\"FILE\", LINE, COL", "the source location recorded for the instructions that follow"),
}

#: Directives the grammar accepts that arrive with the macro language.
RESERVED = ("macro", "endm", "rept", "for", "if", "elif", "else", "endif")
