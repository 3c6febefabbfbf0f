"""Typed reading of a hand file's tables, every failure naming the file and the field."""
from __future__ import annotations

import math

from dexlink.errors import UserError


class GeometryError(UserError, ValueError):
    """A hand file whose body cannot be built; the message names the file and the field."""


class Fields:
    """Reads typed values out of a TOML table, failing with the file and field named."""

    def __init__(self, path):
        self.path = str(path)

    def fail(self, field: str, problem: str):
        raise GeometryError("%s: %s: %s" % (self.path, field, problem))

    def table(self, parent: dict, key: str, field: str, required=True) -> dict:
        if key not in parent:
            if required:
                self.fail(field, "missing")
            return {}
        if not isinstance(parent[key], dict):
            self.fail(field, "must be a table")
        return parent[key]

    def number(self, value, field: str, positive=False, nonneg=False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(field, "must be a number, got %r" % (value,))
        if positive and value <= 0:
            self.fail(field, "must be > 0, got %r" % (value,))
        if nonneg and value < 0:
            self.fail(field, "must be >= 0, got %r" % (value,))
        return float(value)

    def get_number(self, t: dict, key: str, field: str, default=None, **kw) -> float:
        if key not in t:
            if default is None:
                self.fail(field, "missing")
            return float(default)
        return self.number(t[key], field, **kw)

    def vector(self, t: dict, key: str, field: str, n: int, default=None, **kw) -> list:
        if key not in t:
            if default is None:
                self.fail(field, "missing")
            return list(default)
        v = t[key]
        if not isinstance(v, list) or len(v) != n:
            self.fail(field, "must be a list of %d numbers, got %r" % (n, v))
        return [self.number(x, "%s[%d]" % (field, i), **kw) for i, x in enumerate(v)]

    def string(self, t: dict, key: str, field: str, default=None) -> str:
        if key not in t:
            if default is None:
                self.fail(field, "missing")
            return default
        if not isinstance(t[key], str):
            self.fail(field, "must be a string, got %r" % (t[key],))
        return t[key]
