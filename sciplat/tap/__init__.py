"""TAP 1.1 / ADQL 2.1: the catalogue service (see README.md in this directory)."""
