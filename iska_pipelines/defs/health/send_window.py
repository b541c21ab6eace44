"""`send_window_fits` on `sms_deliveries` (SPEC §15, §16): each region's day finishes within
ISKA_SEND_WINDOW_MINUTES of its SMS hour at its gateways' total `max_tps`.

`sms_job` evaluates it when it plans a region's day, before the first message goes out
(defs/sms/jobs.py, `warn_if_late`); this definition shows it on the asset and lets an operator
evaluate a day again from the messages planned for it.
"""

import dagster as dg

from iska_pipelines.defs.health.assets import sms_deliveries
from iska_pipelines.defs.health.partitions import health_region_days
from iska_pipelines.defs.resources import SETTINGS, IskaDatabase
from iska_pipelines.defs.sms.partitions import day_and_region
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.health.checks import SEND_WINDOW
from iska_pipelines.lib.regions.window import send_window
from iska_pipelines.lib.sms.claims import day_statuses


@dg.asset_check(
    asset=sms_deliveries,
    name=SEND_WINDOW,
    partitions_def=health_region_days,
    description="WARN when a region's planned messages cannot all go out within "
    "ISKA_SEND_WINDOW_MINUTES of its SMS hour at its gateways' total max_tps.",
)
def send_window_fits(context: dg.AssetCheckExecutionContext, database: IskaDatabase) -> dg.AssetCheckResult:
    regions = SETTINGS.regions()
    day, code = day_and_region(context.partition_key, regions)
    region = regions.get(code)
    with database.engine().connect() as connection:
        planned = sum(day_statuses(connection, day, regions.in_region("region", region.code)).values())
    window = send_window(region, day, planned, SETTINGS.send_window_minutes, utcnow())
    return dg.AssetCheckResult(
        passed=window.fits,
        severity=dg.AssetCheckSeverity.WARN,
        description=window.describe(),
        metadata=window.metadata(),
    )
