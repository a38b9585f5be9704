"""lpuasm: assembler, simulator and debugger for a simulated Groq-style LPU."""

__version__ = "0.1.0"
