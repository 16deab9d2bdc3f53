"""ADQL 2.1 → SQL: parse with sqlglot, refuse what ADQL does not define, resolve names against
TAP_SCHEMA, translate geometry per backend. Pure functions of (text, catalogue)."""
