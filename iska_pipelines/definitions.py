"""The code location: every Dagster object under `defs/`, loaded by folder."""

import warnings
from pathlib import Path

import dagster as dg

# Attaching resources re-creates each job-targeting sensor with its (empty) `owners`, which
# Dagster reports as a BetaWarning on every load of the code location: nothing a user can act on.
warnings.filterwarnings("ignore", message="Parameter `owners` of initializer", category=dg.BetaWarning)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent / "defs")
