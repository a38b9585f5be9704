"""The lpuasm macro library, shipped as package data of lpuasm."""
