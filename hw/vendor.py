"""The FPGA family behind a platform, and its module of primitives.

Each family's primitives live in a module of their own (:mod:`.ice40`, :mod:`.ecp5`); generic
code asks here which one the platform it elaborates for needs, as ``amaranth.lib.memory`` asks
the platform's ``get_memory``, and never names a primitive itself.
"""

from __future__ import annotations

from types import ModuleType


def family(platform) -> str | None:
    """"ice40" or "ecp5" for a platform of those families; None for no platform (simulation) or
    another family."""
    name = str(getattr(platform, "family", "") or "").lower()
    if name.startswith("ice40"):
        return "ice40"
    if name == "ecp5":
        return "ecp5"
    return None


def primitives(platform) -> ModuleType | None:
    """The module of the platform's family's primitives (:mod:`.ice40` or :mod:`.ecp5`), or
    None."""
    fam = family(platform)
    if fam == "ice40":
        from . import ice40
        return ice40
    if fam == "ecp5":
        from . import ecp5
        return ecp5
    return None
