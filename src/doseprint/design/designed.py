"""The design stage's result: a tablet design with the predicted release of its APIs."""

from __future__ import annotations

from dataclasses import dataclass

from doseprint.geometry.tablet import TabletDesign
from doseprint.release.predict import PredictedRelease


@dataclass(frozen=True)
class DesignedTablet:
    """A tablet design with the predicted release of each of its APIs."""

    design: TabletDesign
    releases: tuple[PredictedRelease, ...]

    def release(self, api: str) -> PredictedRelease:
        for r in self.releases:
            if r.api == api:
                return r
        raise KeyError(api)
