"""Segmentation labels: value 0 is always background, foreground values are 1..K."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from medloop.domain.base import SettingsModel
from medloop.errors import ConfigError

__all__ = ["DEFAULT_COLORS", "Label", "LabelSet"]

DEFAULT_COLORS: tuple[str, ...] = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#fabed4",
    "#469990",
)


class Label(SettingsModel):
    """One foreground class: its integer value in label maps, a name and a display colour."""

    value: int = Field(ge=1, le=255)
    name: str = Field(min_length=1, max_length=64)
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "name": self.name, "color": self.color}


@dataclass(frozen=True)
class LabelSet:
    """The foreground labels of a project, values exactly ``1..K`` (background 0 is implied)."""

    labels: tuple[Label, ...]

    def __post_init__(self) -> None:
        if not self.labels:
            raise ConfigError("a project needs at least one foreground label")
        values = [lab.value for lab in self.labels]
        if values != list(range(1, len(values) + 1)):
            raise ConfigError(f"label values must be 1..K in order, got {values}")
        names = [lab.name for lab in self.labels]
        if len(set(names)) != len(names):
            raise ConfigError(f"label names must be unique, got {names}")

    @classmethod
    def from_names(cls, names: Sequence[str]) -> LabelSet:
        """Labels ``1..K`` named in order, with default colours."""
        return cls(
            tuple(
                Label(value=i + 1, name=name, color=DEFAULT_COLORS[i % len(DEFAULT_COLORS)])
                for i, name in enumerate(names)
            )
        )

    @classmethod
    def from_dicts(cls, items: Iterable[dict[str, Any]]) -> LabelSet:
        return cls(tuple(Label.parse(d) for d in items))

    def to_dicts(self) -> list[dict[str, Any]]:
        return [lab.to_dict() for lab in self.labels]

    @property
    def num_foreground(self) -> int:
        """K, the number of foreground classes."""
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """K + 1, background included (the network's output channels)."""
        return len(self.labels) + 1

    @property
    def max_value(self) -> int:
        return len(self.labels)

    def name_of(self, value: int) -> str:
        return "background" if value == 0 else self.labels[value - 1].name
