"""Every module of the code location, imported once by the server the SMS job's step processes
fork from (defs/sms/jobs.py), so each step process starts with them loaded.

`iska_pipelines.definitions` alone would not do: it loads the `defs/` folder only when the code
location is asked for its definitions, which each step process would then do on its own.
"""

from __future__ import annotations

import importlib
import pkgutil

import iska_pipelines.defs

for _module in pkgutil.walk_packages(iska_pipelines.defs.__path__, "iska_pipelines.defs."):
    importlib.import_module(_module.name)
