"""Everything outside the process: catalogue databases, catalogue files, the hub's API."""
