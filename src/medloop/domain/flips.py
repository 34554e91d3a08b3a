"""Which axes training may flip: a planning rule of its own (see :func:`mirror_axes`).

The plan (:mod:`medloop.domain.plan`) records the axes; the trainer flips along them and
test-time flips are chosen among them.
"""

from __future__ import annotations

from medloop.domain.fingerprint import Fingerprint
from medloop.domain.settings import TrainingOptions
from medloop.errors import ConfigError

__all__ = ["LABEL_ORDERED", "ORIENTED", "mirror_axes"]

ORIENTED = 0.4
"""An axis whose intensity profile asymmetry exceeds this has a direction: no flips along it."""
LABEL_ORDERED = 0.9
"""An axis along which the labels keep one order in at least this share of the images
(:attr:`~medloop.domain.fingerprint.Fingerprint.label_order`): no flips along it."""


def mirror_axes(
    fp: Fingerprint, options: TrainingOptions | None = None
) -> tuple[tuple[int, ...], str | None]:
    """The spatial axes along which the images may be flipped in training, and why not others.

    An axis is left out when the data has a direction along it
    (:attr:`~medloop.domain.fingerprint.Fingerprint.profile_asymmetry` over
    :data:`ORIENTED`): an ultrasound image's rows run from the skin down into shadow, and
    a network trained on upside-down copies must learn to ignore that cue. It is left out
    too when the labels lie in a fixed order along it
    (:attr:`~medloop.domain.fingerprint.Fingerprint.label_order` at least
    :data:`LABEL_ORDERED`): a flip would put the hippocampus's anterior part behind its
    posterior one, so the network would have to tell them apart by shape alone. Cells and
    membranes look alike from either end and keep every flip. The user's
    ``options.flip_axes`` wins.

    Raises:
        ConfigError: the user's axes do not exist in these images.
    """
    if options is not None and options.flip_axes is not None:
        wrong = [a for a in options.flip_axes if a >= fp.spatial_dims]
        if wrong:
            raise ConfigError(f"flip axes {wrong} do not exist in {fp.spatial_dims}D images")
        return tuple(sorted(options.flip_axes)), "flips set by the user"
    dims = range(fp.spatial_dims)
    asym = fp.profile_asymmetry or (0.0,) * fp.spatial_dims
    order = fp.label_order or (0.0,) * fp.spatial_dims
    directed = [a for a in dims if asym[a] > ORIENTED]
    ordered = [a for a in dims if order[a] >= LABEL_ORDERED and a not in directed]
    keep = tuple(a for a in dims if a not in directed and a not in ordered)
    why: list[str] = []
    if directed:
        figures = ", ".join(f"axis {a}: {asym[a]:.2f}" for a in directed)
        why.append(
            f"the images have a direction along axis {directed} (intensity profile "
            f"asymmetry {figures} > {ORIENTED:g}): no flips along it"
        )
    if ordered:
        figures = ", ".join(f"axis {a}: {order[a]:.0%}" for a in ordered)
        why.append(
            f"the labels lie in a fixed order along axis {ordered} (same order in "
            f"{figures} of the images): no flips along it"
        )
    if not why:
        return keep, None
    rotations = "" if {0, 1} <= set(keep) else ", and no 90-degree rotations"
    return keep, "; ".join(why) + rotations
