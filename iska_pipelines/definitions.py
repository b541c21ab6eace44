"""The code location: every Dagster object under `defs/`, loaded by folder."""

import warnings
from pathlib import Path

import dagster as dg

# Attaching resources re-creates each job-targeting sensor with its (empty) `owners`, which
# Dagster reports as a BetaWarning on every load of the code location: nothing a user can act on.
warnings.filterwarnings("ignore", message="Parameter `owners` of initializer", category=dg.BetaWarning)
# The SMS health checks are partitioned like sms_job (by day and region with several regions):
# Dagster calls partitioned check specs a preview on every load.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent / "defs")
