"""Secrets are files, mode 0600, never values in the platform config."""

from __future__ import annotations

import os
from pathlib import Path

from hubconfig.schema import PlatformConfigError


def read_secret(path: str | Path, setting: str) -> str:
    """The stripped content of a secret file that only its owner can read."""
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        raise PlatformConfigError(f"{setting}: {path} does not exist; expected a secret file (mode 0600)") from None
    if mode & 0o077:
        raise PlatformConfigError(f"{setting}: {path} has mode {mode:04o}; expected 0600 (owner only)")
    value = path.read_text().strip()
    if not value:
        raise PlatformConfigError(f"{setting}: {path} is empty; expected the secret")
    return value


def secret_path(cfg: dict, name: str) -> Path:
    return Path(cfg["hub"]["secrets_dir"]) / name


def export_env(name: str, value: str) -> None:
    """For secrets JupyterHub reads from its environment (the crypt key)."""
    os.environ[name] = value
