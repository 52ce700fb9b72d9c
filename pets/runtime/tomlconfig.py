"""Small helpers shared by the servers' and clients' TOML configuration files.

Strict by design: unknown keys are errors (a typo must not silently fall back
to a default), relative paths are anchored at the config file's folder, and
every message names the setting and says how to fix it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pets.errors import ConfigError


@dataclass(frozen=True)
class TlsFiles:
    """A party's mutual-TLS material: the project CA, its certificate and key."""

    ca: Path
    cert: Path
    key: Path


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def path_setting(base: Path, value: Any, key: str) -> Path:
    """A path setting, relative to ``base`` unless absolute."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a non-empty path string")
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def check_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown} in {where}; allowed: {sorted(allowed)}")


def tls_setting(data: dict[str, Any], base: Path, *, insecure: bool) -> TlsFiles | None:
    """The ``[tls]`` table, required unless ``insecure``."""
    if insecure:
        return None
    if "tls" not in data:
        raise ConfigError(
            "no [tls] section: mutual TLS is required (create certificates with "
            "`pets certs init` and `pets certs issue`), or pass --insecure for a local experiment"
        )
    t = data["tls"]
    check_keys(t, {"ca", "cert", "key"}, "[tls]")
    return TlsFiles(*(path_setting(base, t.get(k), f"tls.{k}") for k in ("ca", "cert", "key")))
