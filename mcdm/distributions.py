"""What the project's own distributions provide, so that a missing built-in name says what to install.

The engine (``mcdm``) registers only the ``unet`` denoiser; everything else built in ships separately, and
``mcdm[all]`` installs all of it. ``tests/test_distributions.py`` checks this table against the installed plugins.
"""

from __future__ import annotations

BUILTIN: dict[str, dict[str, tuple[str, ...]]] = {
    "mcdm-sketch": {"modality": ("sketch",)},
    "mcdm-segmentation": {"modality": ("segmentation",)},
    "mcdm-text": {"modality": ("text",), "denoiser type": ("unet_text",), "trainer": ("clip",)},
    "mcdm-joint": {"modality": ("joint",), "denoiser type": ("unet_joint",)},
    "mcdm-models-synthfaces": {"model": ("synthfaces-32", "judges-32")},
}
"""Distribution name -> kind ("modality", "denoiser type", "trainer", "model") -> the names it provides."""


def provider(kind: str, name: str) -> str | None:
    """The built-in distribution that provides ``name`` of this ``kind``, if one does."""
    return next((dist for dist, provides in BUILTIN.items() if name in provides.get(kind, ())), None)


def install_hint(kind: str, name: str) -> str:
    """``"; install mcdm-text, which provides it ..."`` for a built-in name, else ``""``: the tail of an error."""
    dist = provider(kind, name)
    return f"; install {dist}, which provides it (mcdm[all] brings every built-in one)" if dist else ""
