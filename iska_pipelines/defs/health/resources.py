"""What the health checks judge against (SPEC §16): the SMS hour, the grid's age limit and the
minimum delivery rate."""

import dagster as dg

from iska_pipelines.defs.resources import SETTINGS
from iska_pipelines.lib.health.checks import HealthRules
from iska_pipelines.lib.settings import Settings


class HealthChecks(dg.ConfigurableResource):
    timezone: str = "Africa/Accra"
    sms_hour: int = 5
    forecast_max_age_hours: float = 30.0
    min_delivery_rate: float = 0.9

    def rules(self) -> HealthRules:
        return HealthRules(self.timezone, self.sms_hour, self.forecast_max_age_hours, self.min_delivery_rate)


def build_health_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "health_checks": HealthChecks(
            timezone=settings.timezone,
            sms_hour=settings.sms_hour,
            forecast_max_age_hours=settings.forecast_max_age_hours,
            min_delivery_rate=settings.min_delivery_rate,
        )
    }


@dg.definitions
def health_resources() -> dg.Definitions:
    return dg.Definitions(resources=build_health_resources(SETTINGS))
