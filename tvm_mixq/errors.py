"""Errors the user can act on.

Anything raised as :class:`MixqError` (or a subclass) is bad input: the command line prints its
one-line message and exits with code 2. Any other exception is an internal error (exit 1).
"""
from __future__ import annotations


class MixqError(Exception):
    """Bad input: a one-line reason the user can act on."""


class ModelError(MixqError):
    """The model file cannot be read or is outside what the project supports."""


class UnsupportedOpError(ModelError):
    """An operator the reader or a later stage does not handle."""

    def __init__(self, op_name: str, op_index: int, detail: str = "") -> None:
        self.op_name = op_name
        self.op_index = op_index
        msg = f"unsupported op {op_name} at index {op_index}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class InputDataError(MixqError):
    """Input or calibration data that does not match the model."""
