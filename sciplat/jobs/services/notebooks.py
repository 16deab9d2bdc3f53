"""Pure functions on notebook documents: what the cache key is made of, what the notebook
declares (inputs, opting out of the cache), parameter injection and HTML rendering.

Parameters are injected by papermill's own ``parameterize_notebook`` (a cell tagged
``injected-parameters`` after the one tagged ``parameters``), so notebooks written for papermill
run unchanged; execution happens later, in the user's environment, with nbclient.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import nbformat as _nbformat
from nbformat import NotebookNode

from sciplat.jobs.errors import JobRequestError

nbformat: Any = _nbformat  # untyped library: its calls are checked by the tests

#: Bump when the key's recipe changes, so old entries stop matching.
KEY_VERSION = 1


def parse_notebook(data: bytes | str | Mapping[str, Any], name: str) -> NotebookNode:
    """A notebook document from its bytes or JSON, upgraded to nbformat 4.

    Raises:
        JobRequestError: not a notebook; the message names ``name``.
    """
    try:
        # through reads() even for JSON: it joins sources stored as lists of lines
        text = json.dumps(dict(data)) if isinstance(data, Mapping) else data
        nb = nbformat.reads(text if isinstance(text, str) else text.decode("utf-8"), 4)
        nb = nbformat.convert(nb, 4)
        nbformat.validate(nb)
    except (ValueError, UnicodeDecodeError, KeyError, TypeError,
            _nbformat.ValidationError) as exc:  # fmt: skip
        raise JobRequestError(f"{name} is not a Jupyter notebook: {str(exc)[:200]}") from exc
    result: NotebookNode = nb
    return result


def code_sources(nb: NotebookNode) -> list[str]:
    """The code cells' sources in order: outputs, execution counts and metadata are ignored."""
    return [
        "".join(c.source) if isinstance(c.source, list) else c.source
        for c in nb.cells
        if c.cell_type == "code"
    ]


def sciplat_metadata(nb: NotebookNode) -> dict[str, Any]:
    meta = nb.metadata.get("sciplat", {})
    return dict(meta) if isinstance(meta, Mapping) else {}


def cache_allowed(nb: NotebookNode) -> bool:
    """False when the notebook's metadata says ``"sciplat": {"cache": false}``."""
    return sciplat_metadata(nb).get("cache", True) is not False


def declared_inputs(nb: NotebookNode) -> list[str]:
    """Input files the notebook declares (``"sciplat": {"inputs": [...]}``), as written.

    Raises:
        JobRequestError: ``inputs`` is not a list of strings.
    """
    inputs = sciplat_metadata(nb).get("inputs", [])
    if not isinstance(inputs, list) or not all(isinstance(i, str) and i for i in inputs):
        raise JobRequestError(
            'the notebook metadata "sciplat": {"inputs": ...} must be a list of file paths'
        )
    return list(dict.fromkeys(inputs))


def canonical_parameters(parameters: Mapping[str, Any]) -> str:
    """One text per set of parameters: keys sorted, no whitespace."""
    return json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(
    code: list[str],
    parameters: Mapping[str, Any],
    environment: str,
    inputs: Mapping[str, str],
) -> str:
    """The result cache's key: code cells, parameters, environment identity (name + package
    hash) and the content hashes of declared inputs. Same key, same result."""
    document = {
        "v": KEY_VERSION,
        "code": code,
        "parameters": canonical_parameters(parameters),
        "environment": environment,
        "inputs": sorted(inputs.items()),
    }
    return hashlib.sha256(canonical_parameters(document).encode()).hexdigest()


def load_papermill() -> None:
    """Import papermill's parameteriser ahead of the first submission (a slow import)."""
    import papermill.parameterize  # noqa: F401, PLC0415


def parameterise(nb: NotebookNode, parameters: Mapping[str, Any]) -> str:
    """The notebook with ``parameters`` injected the way papermill does, as JSON text: a cell
    tagged ``injected-parameters`` after the cell tagged ``parameters`` (at the top if no cell
    is tagged, as papermill does).

    Raises:
        JobRequestError: a value papermill cannot write as Python.
    """
    from papermill.parameterize import parameterize_notebook  # noqa: PLC0415 - slow import

    copy = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    copy.metadata.setdefault("papermill", {})
    for cell in copy.cells:  # what papermill's loader does before parameterising
        cell.metadata.setdefault("tags", [])
        cell.metadata.setdefault("papermill", {})
    try:
        out = parameterize_notebook(
            copy,
            dict(parameters),
            kernel_name="python3",
            language="python",
        )
    except (TypeError, ValueError) as exc:
        raise JobRequestError(f"the parameters cannot be written as Python: {exc}") from exc
    text: str = nbformat.writes(out)
    return text


def render_html(notebook: bytes) -> str:
    """The executed notebook as a standalone HTML page (nbconvert's lab template).

    Raises:
        JobRequestError: the stored notebook is not readable.
    """
    import nbconvert  # noqa: PLC0415 - slow import, only when asked

    convert: Any = nbconvert  # untyped library
    exporter = convert.HTMLExporter()
    nb = parse_notebook(notebook, "the executed notebook")
    body, _ = exporter.from_notebook_node(nb)
    return str(body)
