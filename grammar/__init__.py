"""The lasm grammar (syntax only), shipped as package data of lpuasm."""
