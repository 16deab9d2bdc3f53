"""Pieces every section of the configuration document is built from: the section base (no
unknown keys, frozen) and byte sizes written like ``4GiB``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

_UNITS = {
    "": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
    "ti": 1024**4,
}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)


def parse_bytes(value: object) -> int:
    """Turn ``4GiB``, ``512M``, ``1.5G`` or an integer into a number of bytes.

    Raises:
        ValueError: the value is not a size; the message lists the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError("expected a size such as 4GiB, 512MiB or a number of bytes")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _QUANTITY.match(value)
        if match:
            unit = (match.group(2) or "").lower()
            return int(float(match.group(1)) * _UNITS[unit])
    raise ValueError(f"{value!r} is not a size: write e.g. 4GiB, 512MiB, 2G or a number of bytes")


Bytes = Annotated[int, BeforeValidator(parse_bytes)]


def _none_or(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    return None if value is None else handler(value)


#: A size or None (absent); parsed by parse_bytes like :data:`Bytes`.
OptionalBytes = Annotated[int | None, BeforeValidator(parse_bytes), WrapValidator(_none_or)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
