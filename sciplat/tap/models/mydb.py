"""MyDB: a user's own tables (saved query results and uploads) and whom they are shared with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sciplat.tap.models.catalogue import ColumnInfo, TableInfo


@dataclass(frozen=True)
class UserTable:
    """One stored user table: ``schema.name`` (``schema`` is its owner's, see
    :func:`sciplat.tap.services.mydb.user_schema`), its columns, size and sharing."""

    owner: str
    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    rows: int
    bytes: int
    created: datetime
    description: str = ""
    shared_with: frozenset[str] = field(default_factory=frozenset)

    @property
    def qualified(self) -> str:
        """``schema.name`` as ADQL writes it."""
        return f"{self.schema}.{self.name}"

    @property
    def info(self) -> TableInfo:
        """The table as TAP_SCHEMA and the ADQL resolver see it."""
        return TableInfo(self.schema, self.name, self.columns, self.description)

    def to_dict(self, with_sharing: bool = True) -> dict[str, object]:
        """A JSON-ready description (``shared_with`` only for its owner and operators)."""
        out: dict[str, object] = {
            "table": self.qualified, "owner": self.owner, "rows": self.rows,
            "bytes": self.bytes, "created": self.created.isoformat(),
            "description": self.description,
            "columns": [
                {"name": c.name, "datatype": c.datatype, "unit": c.unit, "ucd": c.ucd,
                 "description": c.description}
                for c in self.columns
            ],
        }  # fmt: skip
        if with_sharing:
            out["shared_with"] = sorted(self.shared_with)
        return out
