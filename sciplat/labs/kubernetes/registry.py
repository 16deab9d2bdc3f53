"""Pure: a registry's tags turned into the environments menu's entries.

Tags follow the convention of the Rubin Science Platform's lab images: ``r28_0_0`` (a
release; ``r28_0_0_rcN``, a candidate, counts as experimental), ``w_2026_47`` (a weekly, ISO
week), ``d_2026_11_27`` (a daily), ``exp_<anything>`` (experimental). Other tags (``latest``,
``recommended``, digests) are not offered. The tag is the environment's name, so it must also
be a valid environment name. The menu orders releases by name (they carry no date), so a
``r9_0_0`` would sort after ``r28_0_0``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sciplat.config import EnvironmentConfig
from sciplat.labs.kubernetes.config import LabImage
from sciplat.naming import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)
_RELEASE = re.compile(r"^r(\d+)_(\d+)_(\d+)(?:_rc(\d+))?$")
_WEEKLY = re.compile(r"^w_(\d{4})_(\d{2})$")
_DAILY = re.compile(r"^d_(\d{4})_(\d{2})_(\d{2})$")
_EXPERIMENTAL = re.compile(r"^exp_(.+)$")


@dataclass(frozen=True)
class ImageTag:
    tag: str
    kind: str
    label: str
    created: dt.date | None
    #: orders tags of one kind (releases by version, others by date)
    rank: tuple[int, ...]


def _release(tag: str) -> ImageTag | None:
    if not (m := _RELEASE.match(tag)):
        return None
    major, minor, patch = (int(g) for g in m.groups()[:3])
    if m.group(4):  # a release candidate is offered among the experimental images
        label = f"Release candidate r{major}.{minor}.{patch} rc{m.group(4)}"
        return ImageTag(tag, "experimental", label, None, (major, minor, patch, int(m.group(4))))
    return ImageTag(
        tag, "release", f"Release r{major}.{minor}.{patch}", None, (major, minor, patch)
    )


def _weekly(tag: str) -> ImageTag | None:
    if not (m := _WEEKLY.match(tag)):
        return None
    year, week = int(m.group(1)), int(m.group(2))
    created = dt.date.fromisocalendar(year, week, 1)
    return ImageTag(tag, "weekly", f"Weekly {year}_{week:02d}", created, (year, week))


def _daily(tag: str) -> ImageTag | None:
    if not (m := _DAILY.match(tag)):
        return None
    created = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    return ImageTag(tag, "daily", f"Daily {created:%Y_%m_%d}", created, (created.toordinal(),))


def _experimental(tag: str) -> ImageTag | None:
    if not (m := _EXPERIMENTAL.match(tag)):
        return None
    return ImageTag(tag, "experimental", f"Experimental {m.group(1)}", None, (0,))


def parse_tag(tag: str) -> ImageTag | None:
    """The kind, label and date of ``tag``; None if it is not one the menu offers."""
    if not _NAME.match(tag):
        return None
    for parse in (_release, _weekly, _daily, _experimental):
        try:
            parsed = parse(tag)
        except ValueError:  # week 54, month 13: not a date, so not a tag of ours
            return None
        if parsed is not None:
            return parsed
    return None


def environments_from_tags(tags: Iterable[str], image: LabImage) -> list[EnvironmentConfig]:
    """Menu entries for ``tags``: the newest ``image.keep[kind]`` of each kind (releases by
    version, the others by date; experimental ones in the registry's order reversed, newest
    pushed last), the recommended tag always. Each entry's path is the environment's prefix
    inside the image, so the lab command is the same as for a local environment."""
    parsed = [p for p in (parse_tag(t) for t in dict.fromkeys(tags)) if p is not None]
    chosen: list[ImageTag] = []
    for kind in ("release", "weekly", "daily", "experimental"):
        of_kind = [p for p in parsed if p.kind == kind]
        if kind == "experimental":
            of_kind.reverse()
        else:
            of_kind.sort(key=lambda p: p.rank, reverse=True)
        keep = image.keep.get(kind)
        chosen += of_kind if keep is None else of_kind[:keep]
    chosen += [p for p in parsed if p.tag == image.recommended and p not in chosen]
    return [
        EnvironmentConfig(
            name=p.tag,
            display_name=p.label,
            kind=p.kind,
            created=p.created,
            path=image.prefix,
            recommended=p.tag == image.recommended,
        )
        for p in chosen
    ]
