"""The configuration reference, generated from the config model (docs/config-reference.md)."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sciplat.config import Config, parse_bytes


def _type_name(annotation: Any) -> str:
    text = annotation.__name__ if inspect.isclass(annotation) else str(annotation)
    for prefix in ("typing.", "pathlib.", "datetime."):
        text = text.replace(prefix, "")
    text = re.sub(r"sciplat(\.\w+)*\.(?=[A-Z])", "", text)  # sciplat.x.y.Model -> Model
    return text.replace("NoneType", "None")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(section)"
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            return "see below"
        return f"`{json.dumps(value)}`"
    if field.default is PydanticUndefined:
        return "required"
    value = field.default
    if isinstance(value, tuple):
        value = list(value)
    return f"`{json.dumps(value, default=str)}`"


def _model_for(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if inspect.isclass(arg) and issubclass(arg, BaseModel):
            return arg
    return None


def _section(model: type[BaseModel], path: str, out: list[str]) -> None:
    doc = inspect.cleandoc(model.__doc__ or "")
    out += [f"## `{path}`" if path else "## The document", "", doc, ""]
    out += ["| key | type | default | description | example |", "|---|---|---|---|---|"]
    nested = []
    for name, field in model.model_fields.items():
        sub = _model_for(field.annotation)
        if sub is not None:
            nested.append((name, sub, field))
        example = f"`{json.dumps(field.examples[0])}`" if field.examples else ""
        desc = field.description or (inspect.cleandoc(sub.__doc__ or "") if sub else "")
        desc = desc.replace("\n", " ").replace("|", "\\|")
        type_name = _type_name(field.annotation).replace("|", "\\|")
        if any(getattr(m, "func", None) is parse_bytes for m in field.metadata):
            type_name = "size (`4GiB`, `512MiB`, bytes)"
        out.append(f"| `{name}` | {type_name} | {_default(field)} | {desc} | {example} |")
    out.append("")
    for name, sub, field in nested:
        is_list = "list" in str(field.annotation)
        _section(sub, f"{path}.{name}".lstrip(".") + ("[]" if is_list else ""), out)


def config_reference() -> str:
    """Markdown describing every key of ``sciplat.yaml``."""
    out = [
        "# sciplat.yaml reference",
        "",
        "Generated from `sciplat/config.py` by `sciplat config reference`; do not edit by hand.",
        "Unknown keys are errors. Sizes accept `4GiB`, `512MiB`, `2G` or a number of bytes.",
        "",
    ]
    _section(Config, "", out)
    return "\n".join(out).rstrip() + "\n"
