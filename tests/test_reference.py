"""docs/config-reference.md is generated from the config model and must match it."""

from pathlib import Path

from sciplat.reference import config_reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "config-reference.md"


def test_config_reference_is_up_to_date() -> None:
    assert DOC.read_text() == config_reference(), (
        "docs/config-reference.md is stale: run `sciplat config reference > "
        "docs/config-reference.md`"
    )


def test_every_field_is_described() -> None:
    missing = [line for line in config_reference().splitlines()
               if line.startswith("| `") and line.split("|")[4].strip() == ""]  # fmt: skip
    assert not missing, f"fields without a description: {missing}"
