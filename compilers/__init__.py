"""Compiler adapters: one module per target (edgetpu, imx500), each with one public entry point."""
