"""Namespace and object names: DNS-1123 labels, stable, and distinct for distinct users."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sciplat.labs.kubernetes.builders.common import pod_name
from sciplat.naming import DNS_LABEL_PATTERN, dns_label, lab_namespace

LABEL = re.compile(DNS_LABEL_PATTERN)
usernames = st.from_regex(r"\A[a-z][a-z0-9_-]{0,31}\Z")


def test_names_that_are_labels_stay_as_they_are() -> None:
    assert lab_namespace("sciplat", "alice") == "sciplat-alice"
    assert dns_label("bob-2") == "bob-2"


def test_changed_names_get_a_hash_so_they_never_collide() -> None:
    names = {lab_namespace("sp", user) for user in ("a_b", "a-b", "a.b", "A-b", "a-b-")}
    assert len(names) == 5
    assert lab_namespace("sp", "a_b").startswith("sp-a-b-")
    assert lab_namespace("sp", "a_b") == lab_namespace("sp", "a_b")


@given(a=usernames, b=usernames)
def test_distinct_users_get_distinct_valid_namespaces(a: str, b: str) -> None:
    first, second = lab_namespace("sciplat", a), lab_namespace("sciplat", b)
    assert LABEL.match(first)
    assert len(first) <= 63
    assert (first == second) == (a == b)


@given(server=st.text(max_size=80))
def test_any_server_name_gives_a_valid_pod_name(server: str) -> None:
    name = pod_name(server)
    assert LABEL.match(name)
    assert name == "lab" or name.startswith("lab-")


@pytest.mark.parametrize("prefix", ["", "-x", "UPPER", "x" * 21, "a_b"])
def test_a_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="namespace prefix"):
        lab_namespace(prefix, "alice")
