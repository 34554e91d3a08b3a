"""A project's settings, typed and validated once: labels, learning policy, gate, training.

Every default and every bound of a project setting is written here and nowhere else.
The API takes these models as its request schemas, the database stores their JSON
(converted at the storage boundary only) and the engine reads them as they are::

    settings = ProjectSettings(labels=(Label(value=1, name="nucleus", color="#ff0000"),))
    settings.learning.correction_weight          # 64.0
    ProjectSettings.parse(json.loads(text))      # ConfigError naming the bad field

:meth:`~medloop.domain.base.SettingsModel.parse` turns bad values into a
:class:`~medloop.errors.ConfigError` (CLI exit 2, HTTP 400); FastAPI validates request
bodies against the same models and answers 422.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from medloop.domain.base import SettingsModel
from medloop.domain.labels import Label, LabelSet
from medloop.errors import ConfigError

__all__ = [
    "NAMED_BUDGETS",
    "AcceptanceRule",
    "BatchSize",
    "Budget",
    "Channels",
    "Color",
    "CorrectionWeight",
    "FlipAxes",
    "LearningPolicy",
    "LearningRate",
    "PatchSize",
    "ProjectSettings",
    "ReplaySize",
    "Scale",
    "Seed",
    "Spacing",
    "Steps",
    "Strategy",
    "TrainingOptions",
    "ValEvery",
    "parse_budget",
]


class Strategy(StrEnum):
    """How a fine-tune mixes corrections with reference data.

    ``weighted-replay`` (medloop's): corrections at weight *w* plus a replay sample of
    the reference training data at weight 1. ``corrections-only``: corrections alone,
    weight 1. ``all-equal``: corrections plus all reference data, weight 1 (what
    MONAI Label does). ``retrain``: from scratch on everything, weight 1.
    """

    WEIGHTED_REPLAY = "weighted-replay"
    CORRECTIONS_ONLY = "corrections-only"
    ALL_EQUAL = "all-equal"
    RETRAIN = "retrain"


Color = Literal["auto", "gray", "rgb"]

# The bounds of each setting, written once: the settings below and the jobs' overrides
# (``medloop.domain.jobs``) use these.
CorrectionWeight = Annotated[float, Field(gt=0.0, le=1000.0)]
ReplaySize = Annotated[int, Field(ge=0, le=100_000)]
Steps = Annotated[int, Field(ge=1, le=1_000_000)]
LearningRate = Annotated[float, Field(gt=0.0, le=1.0)]
BatchSize = Annotated[int, Field(ge=1, le=512)]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
ValEvery = Annotated[int, Field(ge=0, le=1_000_000)]
PatchSize = Annotated[
    tuple[Annotated[int, Field(ge=8, le=2048)], ...], Field(min_length=1, max_length=3)
]
Spacing = Annotated[
    tuple[Annotated[float, Field(gt=0.0, le=100.0)], ...], Field(min_length=2, max_length=3)
]
Scale = Annotated[float, Field(gt=0.0, le=4.0)]
Budget = Annotated[float, Field(ge=10.0, le=7 * 24 * 3600.0)]
Channels = Annotated[tuple[int, ...], Field(min_length=2, max_length=8)]
FlipAxes = Annotated[tuple[Annotated[int, Field(ge=0, le=2)], ...], Field(max_length=3)]


class LearningPolicy(SettingsModel):
    """How a fine-tune learns from corrections (the patent's claims 1, 2, 7, 8, 9).

    Each field's docstring is its one line of help (the API's schema and the browser's
    Settings page show it); the first sentence is the help, the rest detail.
    """

    correction_weight: CorrectionWeight = 64.0
    """How much more a correction pulls than a reference pair (√w in sampling, √w in the loss)."""
    replay_size: ReplaySize = 256
    """Reference training pairs replayed with the corrections (mean weight 1), against
    forgetting."""
    lookalike_share: float = Field(default=0.1, ge=0.0, le=0.5, title="Look-alike share")
    """At most this share of the replay, the pairs that look like the corrections and
    unlike the rest of it, is replayed more (0: off). See :mod:`medloop.services.lookalikes`."""
    lookalike_weight: float = Field(default=4.0, ge=1.0, le=100.0, title="Look-alike weight")
    """Weight of those look-alikes; the rest of the replay is lowered to keep its total."""
    steps: Steps = 300
    """Optimiser steps per fine-tune."""
    budget_s: Budget | None = Field(default=None, title="Time budget (s)")
    """Wall-clock seconds a fine-tune may train: it ends after ``steps`` or this, whichever
    comes first, its learning rate decaying on whichever is further along (empty: steps
    alone). A slower machine then trains fewer steps but ends on time."""
    lr: LearningRate = Field(default=1e-3, title="Learning rate")
    """Peak learning rate of the fine-tune (AdamW, warm-up then cosine decay)."""
    batch_size: BatchSize = 8
    """Patches per step."""
    held_out_share: float = Field(default=0.2, ge=0.0, lt=1.0, title="Held-out share")
    """Share of corrections held out for the gate and never trained on. Decided when each
    arrives and never changed (every ``round(1/share)``-th one)."""
    strategy: Strategy = Strategy.WEIGHTED_REPLAY
    """How corrections and reference data are mixed (weighted-replay is medloop's)."""
    seed: Seed = 0
    """Base seed of the fine-tune (the number of corrections is added)."""
    distillation: float = Field(default=10.0, ge=0.0, le=100.0)
    """Weight of keeping the parent's predictions on replayed pairs (0: off). See
    :mod:`medloop.ml.retention`."""
    l2sp: float = Field(default=0.0, ge=0.0, le=100.0, title="L2-SP")
    """Weight of the pull toward the parent's weights (0: off)."""
    ema: float = Field(default=0.0, ge=0.0, lt=1.0, title="EMA decay")
    """Decay of the moving average of weights the fine-tune returns (0: off)."""
    encoder_lr_scale: float = Field(
        default=1.0, gt=0.0, le=1.0, title="Encoder learning-rate scale"
    )
    """The encoder learns at this share of the learning rate."""

    @model_validator(mode="after")
    def _lookalikes_leave_the_rest_some_weight(self) -> LearningPolicy:
        if self.lookalike_share * self.lookalike_weight >= 1.0:
            raise ValueError(
                f"lookalike_share x lookalike_weight must stay below 1 (the rest of the replay "
                f"keeps the remainder of its weight), got {self.lookalike_share} x "
                f"{self.lookalike_weight}"
            )
        return self


class AcceptanceRule(SettingsModel):
    """When the gate promotes a candidate (see :mod:`medloop.domain.gate`)."""

    margin: float = Field(default=0.01, ge=0.0, le=1.0)
    """Non-inferiority margin in Dice: the candidate must be shown no worse than production by
    more than this, on the locked validation set (each class) and on held-out corrections."""
    confidence: float = Field(default=0.95, ge=0.5, le=0.999)
    """One-sided confidence of that showing (paired bootstrap of per-image differences)."""

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        """Rules stored before the paired gate: ``max_class_dice_drop`` is the margin."""
        if isinstance(data, dict) and {"max_class_dice_drop", "min_heldout_gain"} & set(data):
            data = dict(data)
            drop = data.pop("max_class_dice_drop", None)
            data.pop("min_heldout_gain", None)
            if drop is not None:
                data.setdefault("margin", drop)
        return data


NAMED_BUDGETS = {"quick": 120.0, "standard": 300.0, "long": 1800.0}
"""Training budgets by name, in seconds (``--quick`` is ``--budget quick``)."""


def parse_budget(text: str) -> float:
    """Seconds from ``"5m"``, ``"90s"``, ``"1.5h"``, ``"300"`` or a name in :data:`NAMED_BUDGETS`.

    Raises:
        ConfigError: anything else, or not positive.
    """
    value = text.strip().lower()
    if value in NAMED_BUDGETS:
        return NAMED_BUDGETS[value]
    units = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
    for suffix in ("min", "s", "m", "h"):
        if value.endswith(suffix):
            number, factor = value[: -len(suffix)], units[suffix]
            break
    else:
        number, factor = value, 1.0
    try:
        seconds = float(number) * factor
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        names = ", ".join(NAMED_BUDGETS)
        raise ConfigError(f"a budget is like 5m, 90s, 1h or one of {names}; got {text!r}")
    return seconds


class TrainingOptions(SettingsModel):
    """How a version is trained from scratch: a time budget, and anything the user forces.

    The planner (:mod:`medloop.domain.plan`) decides every field left ``None`` from the
    data and the budget; a value given here wins over the plan.
    """

    budget_s: Budget = Field(default=300.0, title="Time budget (s)")
    """Wall-clock seconds for training, planning and the gate included."""
    steps: Steps | None = None
    """A fixed number of optimiser steps instead of as many as the budget buys (empty: planned)."""
    patch_size: PatchSize | None = None
    """Training patch per spatial axis, on the resampled grid (one side: a square or a cube)."""
    spacing: Spacing | None = None
    """Target mm per pixel/voxel, for images that state their spacing."""
    scale: Scale | None = None
    """Resampling factor for images that do not state their spacing (0.5 = half the size)."""
    channels: Channels | None = None
    """U-Net widths per resolution level (its depth is their number)."""
    batch_size: BatchSize | None = None
    """Patches per step."""
    lr: LearningRate | None = Field(default=None, title="Learning rate")
    """Peak learning rate."""
    val_every: ValEvery | None = Field(default=None, title="Validate every")
    """Steps between scores on the selection half of val (0: keep the last weights)."""
    flip_axes: FlipAxes | None = Field(default=None, title="Flip axes")
    """Spatial axes training may flip along (empty: none); left out, every axis the
    images look alike from either end of (an ultrasound's depth axis is left out)."""
    color: Color = "auto"
    """Network input: gray, rgb, or auto (rgb when the data has colour)."""
    seed: Seed = 0
    """Seed of sampling, augmentation and initialisation."""
    interactive: bool = Field(default=False, title="Click-guided")
    """Train the network to take clicks too (click guidance channels, simulated clinicians
    in training); without clicks it is the automatic model."""

    @model_validator(mode="after")
    def _consistent(self) -> TrainingOptions:
        if self.channels is not None and (min(self.channels) < 1 or max(self.channels) > 4096):
            raise ValueError(f"channels must be widths in 1..4096, got {list(self.channels)}")
        if (
            self.patch_size is not None
            and self.spacing is not None
            and len(self.patch_size) not in (1, len(self.spacing))
        ):
            raise ValueError("patch_size and spacing must have as many axes")
        if self.flip_axes is not None and len(set(self.flip_axes)) != len(self.flip_axes):
            raise ValueError(f"flip_axes {list(self.flip_axes)} names an axis twice")
        if self.patch_size is not None and self.channels is not None:
            divisor = 2 ** (len(self.channels) - 1)
            if any(p % divisor for p in self.patch_size):
                raise ValueError(
                    f"patch_size {list(self.patch_size)} must be a multiple of {divisor} "
                    f"for a {len(self.channels)}-level U-Net"
                )
        return self


class ProjectSettings(SettingsModel):
    """Everything that says what a project is and how it learns."""

    labels: tuple[Label, ...] = Field(min_length=1, max_length=255)
    """The foreground labels, values exactly 1..K (background 0 implied)."""
    image_kind: str = Field(default="microscopy", min_length=1, max_length=64)
    """What the images are, for people (microscopy, ct, ultrasound, ...)."""
    spatial_dims: Literal[2, 3] = Field(default=2, title="Dimensions")
    """2: images (each frame of a multi-frame DICOM is one); 3: volumes (NIfTI, NRRD)."""
    learning: LearningPolicy = Field(default_factory=LearningPolicy)
    """The fine-tune policy."""
    acceptance: AcceptanceRule = Field(default_factory=AcceptanceRule)
    """The promotion gate's rule."""
    training: TrainingOptions = Field(default_factory=TrainingOptions)
    """How a version is trained from scratch."""
    finetune_every: int = Field(default=10, ge=0, le=100_000, title="Fine-tune every")
    """New corrections per automatic fine-tune (0: never automatic)."""
    max_frames: int = Field(default=1000, ge=1, le=10_000, title="Frames per request")
    """Frames (of a multi-frame DICOM) or slices (of a volume) one request may bring; each
    frame is one analysis, so this bounds the work of a request."""

    @model_validator(mode="after")
    def _labels_form_a_set(self) -> ProjectSettings:
        try:
            LabelSet(self.labels)
        except ConfigError as err:
            raise ValueError(str(err)) from err
        return self

    @property
    def label_set(self) -> LabelSet:
        """The labels as a :class:`LabelSet`."""
        return LabelSet(self.labels)
