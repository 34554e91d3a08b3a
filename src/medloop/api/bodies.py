"""JSON request bodies read by hand (routes that take JSON or multipart on one path).

``json.loads`` recurses once per nesting level, so ``[[[[...]]]]`` ten thousand deep
raises ``RecursionError`` (a 500) instead of a parse error. :func:`parse_json` refuses
bodies nested deeper than :data:`MAX_DEPTH` before parsing them, and bodies larger than
:data:`MAX_JSON_BYTES`.
"""

from __future__ import annotations

import json
from typing import TypeVar

from fastapi import HTTPException
from pydantic import BaseModel, ValidationError

__all__ = ["MAX_DEPTH", "MAX_JSON_BYTES", "json_depth", "parse_json"]

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a JSON body."""
MAX_JSON_BYTES = 1024 * 1024

M = TypeVar("M", bound=BaseModel)

_OPEN, _CLOSE, _QUOTE, _ESCAPE = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


def json_depth(raw: bytes, stop: int = MAX_DEPTH) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (strings skipped), counting
    no further than ``stop + 1``."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _ESCAPE:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop:
                    return deepest
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def parse_json(raw: bytes, model: type[M], expected: str) -> M:
    """``raw`` parsed and validated as ``model``; 413 or 422 naming the problem otherwise.

    Args:
        raw: the request body.
        model: what it must be.
        expected: the body's shape for the message, e.g. ``{"image_id": ...}``.
    """
    if len(raw) > MAX_JSON_BYTES:
        raise HTTPException(413, f"a JSON body is at most {MAX_JSON_BYTES} bytes")
    if json_depth(raw) > MAX_DEPTH:
        raise HTTPException(
            422, f"invalid JSON body: nested deeper than {MAX_DEPTH} levels (expected {expected})"
        )
    try:
        return model.model_validate(json.loads(raw))
    except (ValueError, TypeError, ValidationError) as err:
        raise HTTPException(
            422, f"invalid JSON body: expected {expected} ({str(err)[:200]})"
        ) from err
