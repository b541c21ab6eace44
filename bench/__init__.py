"""`make bench`: measured speed and memory against SPEC §12 and against the old system's method."""
