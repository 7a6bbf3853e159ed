"""Where a credential comes from: its `*_file` (preferred), its plain value in the file, or its environment
twin, in that order; a file that cannot be read is an error naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sigma_exporter.config.model import SECRET_ENV
from sigma_exporter.config.secret import Secret
from sigma_exporter.config.walker import Section


def read_secret_file(path: str, section: Section, name: str) -> Secret:
    """The stripped content of the secret file `path`, named `name` in `section` in any error."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise section.error(name, f"secret file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise section.error(name, f"secret file {path} cannot be read ({type(exc).__name__})") from None
    except ValueError:  # a NUL byte in the path
        raise section.error(name, f"secret file {path!r} is not a valid path") from None
    if not value:
        raise section.error(name, f"secret file {path} is empty")
    return Secret(value)


def resolve_secret(
    section: Section, name: str, environ: Mapping[str, str], env_name: str | None = None
) -> Secret | None:
    """`name_file` (preferred), then the plain `name`, then the environment twin."""
    path = section.text(f"{name}_file")
    plain = section.get(name)
    if path:
        return read_secret_file(path, section, f"{name}_file")
    if plain is not None:
        if not isinstance(plain, (str, int)) or isinstance(plain, bool) or not str(plain).strip():
            raise section.error(name, "should be a non-empty string")
        return Secret(str(plain).strip())
    env = environ.get(env_name or SECRET_ENV[name], "").strip()
    return Secret(env) if env else None
