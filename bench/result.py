"""One line of the benchmark table."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.measure import Sample


@dataclass
class Line:
    measurement: str
    size: str
    result: Sample
    unit: str
    reference: str = ""
    reference_sample: Sample | None = None
    ratio: str = ""
    target: str = ""
    met: bool | None = None  # None: informative, no §12 target on this line
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.met is None:
            return ""
        return "met" if self.met else "**gap**"
