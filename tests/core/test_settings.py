"""Unit tier: the settings table, flags, environment variables and their errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from base.settings import SETTINGS, Settings, SettingsError, build_parser, load_settings, settings_table_markdown


def test_defaults() -> None:
    s = load_settings([], environ={})
    # rembg's folder is resolved as rembg resolves it (Settings() leaves it to load_settings)
    assert s == dataclasses.replace(Settings(), rembg_home=Path("~/.rembg").expanduser())
    assert load_settings([], environ={"XDG_DATA_HOME": "/data"}).rembg_home == Path("/data/rembg")
    assert s.host == "127.0.0.1" and s.port == 7860 and s.default_model == "u2net"


def test_env_then_flags() -> None:
    env = {"U2NET_HOME": "/tmp/weights", "REMBG_WEBUI_PORT": "9000", "REMBG_WEBUI_SHARE": "yes"}
    s = load_settings([], environ=env)
    assert s.model_home == Path("/tmp/weights") and s.port == 9000 and s.share is True
    s = load_settings(["--port", "9100", "--no-share"], environ=env)
    assert s.port == 9100 and s.share is False


def test_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "x"],
        ["--port", "0"],
        ["--nope"],
        ["--default-provider", "gpu"],
        ["--default-model", "../x"],
        ["--max-pixels", "0"],
    ],
)
def test_bad_flags(argv: list[str]) -> None:
    with pytest.raises(SettingsError):
        load_settings(argv, environ={})


def test_bad_env() -> None:
    with pytest.raises(SettingsError, match="REMBG_WEBUI_PORT"):
        load_settings([], environ={"REMBG_WEBUI_PORT": "eighty"})


def test_every_row_documented() -> None:
    help_text = build_parser().format_help()
    table = settings_table_markdown()
    for f in SETTINGS:
        assert f.metadata["help"]
        assert "--" + f.name.replace("_", "-") in help_text
        assert f"`--{f.name.replace('_', '-')}`" in table


def test_public_dict_masks_auth() -> None:
    assert load_settings(["--auth", "a:b"], environ={}).public_dict()["auth"] == "set"


def test_auth_forms(tmp_path: Path) -> None:
    from base.settings import auth_users

    assert auth_users(None) == []
    assert auth_users("a:b:c") == [("a", "b:c")]
    users = tmp_path / "users"
    users.write_text("# who may log in\nann:one\nbob:two\n")
    assert auth_users(str(users)) == [("ann", "one"), ("bob", "two")]
    for bad in ("nocolon", ":x", "x:"):
        with pytest.raises(SettingsError, match="--auth"):
            load_settings(["--auth", bad], environ={})


def test_visible_gpu_count() -> None:
    from base.settings import visible_gpu_count

    assert visible_gpu_count({}) is None
    assert visible_gpu_count({"CUDA_VISIBLE_DEVICES": "2,3"}) == 2
    assert visible_gpu_count({"CUDA_VISIBLE_DEVICES": "-1"}) == 0
    with pytest.raises(SettingsError, match="gpu-device"):
        load_settings(["--gpu-device", "-1"], environ={})
