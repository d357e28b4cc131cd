"""Fact collectors: one module per fact family, each exposing ``collect(ctx) -> dict``."""
