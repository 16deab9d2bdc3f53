"""The environment part of the result cache's key: the environment's packages and the user's
own (``pip install --user``) packages, which the job's kernel imports too."""

from __future__ import annotations

from pathlib import Path

from sciplat.config import EnvironmentConfig
from sciplat.jobs.storage.environments import EnvironmentIdentity, user_site_packages


def _dist(site: Path, name: str) -> None:
    (site / name).mkdir(parents=True)
    (site / name / "METADATA").write_text(f"Name: {name}\n")


def _env(tmp_path: Path) -> EnvironmentConfig:
    prefix = tmp_path / "env"
    _dist(prefix / "lib/python3.11/site-packages", "numpy-2.1.0.dist-info")
    return EnvironmentConfig.model_validate(
        {
            "name": "test",
            "display_name": "Test",
            "kind": "release",
            "created": "2026-11-01",
            "path": str(prefix),
        }
    )


def test_user_packages_change_the_identity(tmp_path: Path) -> None:
    env, home, ids = _env(tmp_path), tmp_path / "home", EnvironmentIdentity()
    home.mkdir()
    alone = ids.of(env)
    assert ids.of(env, home) == alone  # nothing installed by the user: the environment alone
    assert alone.startswith("test@")

    site = home / ".local/lib/python3.11/site-packages"
    _dist(site, "astroquery-0.4.7.dist-info")
    with_user = ids.of(env, home)
    assert with_user.startswith(alone + "+user@")
    assert user_site_packages(home, "python3.11") == ["astroquery-0.4.7.dist-info"]

    (site / "astroquery-0.4.7.dist-info").rename(site / "astroquery-0.4.8.dist-info")
    upgraded = ids.of(env, home)
    assert upgraded not in (alone, with_user)

    # packages for another Python than the environment's are not imported: they do not count
    _dist(home / ".local/lib/python3.13/site-packages", "other-1.0.dist-info")
    assert ids.of(env, home) == upgraded


def test_a_symlink_on_the_way_is_not_followed(tmp_path: Path) -> None:
    env, home, ids = _env(tmp_path), tmp_path / "home", EnvironmentIdentity()
    home.mkdir()
    elsewhere = tmp_path / "elsewhere"
    _dist(elsewhere / "lib/python3.11/site-packages", "secret-1.0.dist-info")
    (home / ".local").symlink_to(elsewhere)
    assert user_site_packages(home, "python3.11") == []
    assert ids.of(env, home) == ids.of(env)
