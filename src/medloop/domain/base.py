"""The base of medloop's typed settings: frozen, strict pydantic models with domain errors."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from medloop.errors import InvalidSettings

__all__ = ["SettingsModel", "validation_message"]


def validation_message(err: ValidationError) -> str:
    """One line naming each bad field and what is wrong with it (at most five)."""
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid settings"


class SettingsModel(BaseModel):
    """Frozen, strict pydantic model (unknown fields refused).

    A field's docstring is its description in the JSON schema (the help the API and the
    browser show). Constructing one with bad values raises pydantic's ``ValidationError`` (the CLI
    reports it as bad input; FastAPI answers 422); :meth:`parse` raises
    :class:`~medloop.errors.InvalidSettings` (a ``ConfigError``) for stored or user-given JSON.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    @classmethod
    def parse(cls, data: Any) -> Self:
        """Validate JSON-like ``data`` (e.g. a stored column).

        Raises:
            InvalidSettings: naming the bad fields (a :class:`ConfigError`).
        """
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise InvalidSettings(f"{cls.__name__}: {validation_message(err)}") from err

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (enums as their values, tuples as lists)."""
        return self.model_dump(mode="json")
