"""The DALI examples document (``/examples``): XHTML with RDFa, as TAP 1.1 and DALI 1.1 say:
each example an element ``typeof="example"`` with an ``id`` and ``resource="#id"``, its title
``property="name"`` and its ADQL ``property="query"``, under
``vocab="http://www.ivoa.net/rdf/examples#"``. Pure: examples in, text out."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from sciplat.tap.config import TapExample


def examples_document(examples: list[TapExample], ids: list[str], title: str) -> str:
    """The examples as one well-formed XHTML document."""
    blocks = []
    for example, ident in zip(examples, ids, strict=True):
        about = f"<p>{escape(example.description)}</p>\n" if example.description else ""
        blocks.append(
            f'<div typeof="example" id={quoteattr(ident)} resource={quoteattr("#" + ident)}>\n'
            f'<h2 property="name">{escape(example.name)}</h2>\n{about}'
            f'<pre property="query">{escape(example.query)}</pre>\n</div>\n'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML+RDFa 1.1//EN" '
        '"http://www.w3.org/MarkUp/DTD/xhtml-rdfa-2.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" version="XHTML+RDFa 1.1" '
        'vocab="http://www.ivoa.net/rdf/examples#">\n'
        f"<head><title>{escape(title)}</title></head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{''.join(blocks)}</body>\n</html>\n"
    )
