"""Which gateways send a region's messages: the one place that decides it (SPEC §15)."""

from __future__ import annotations

from iska_pipelines.lib.regions.config import Gateway, Regions


def gateways_for(regions: Regions, code: str | None) -> tuple[Gateway, ...]:
    """The SMS gateways of region `code` (empty or unknown: the default region's), in the
    round-robin order the SMS client uses."""
    return regions.get(code).gateways


def caps_of(gateways: tuple[Gateway, ...]) -> dict[str, float]:
    """Each gateway URL's cap for the shared limiter (lib/http/limiter.py)."""
    return {g.url: g.max_tps for g in gateways}


def gateways_speaking(regions: Regions, protocol: str) -> list[Gateway]:
    """Every region's gateways of one protocol (a callback does not say which region it is for)."""
    return [g for region in regions.all for g in region.gateways if g.protocol == protocol]
