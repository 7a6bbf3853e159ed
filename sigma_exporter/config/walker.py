"""One typed walker over parsed YAML, shared by the config file, reference files, the web config and the
simulator's scenarios, so that every error reads the same way: `FILE: KEY: problem`."""

from __future__ import annotations

import math
from pathlib import Path

from sigma_exporter.config.yamlload import YAMLError, parse_yaml


class ConfigError(ValueError):
    """A configuration problem, worded for the operator: `FILE: KEY: what is wrong` (`FILE: what is wrong`
    when no key is at fault). `source`, `key` and `problem` are kept apart for callers that show them."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


def kind_of(value: object) -> str:
    """What a YAML value is, in an error message's words (`a mapping`, `a list`, `nothing`)."""
    names = {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "nothing",
    }
    return names.get(type(value), f"a {type(value).__name__}")


def join_key(path: str, name: str) -> str:
    """The dotted key of `name` under `path`."""
    return f"{path}.{name}" if path else name


class Section:
    """One mapping of the document; every read names its dotted key in errors; `done()` rejects extras."""

    def __init__(self, data: object, path: str, source: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(source, path or "top level", f"should be a mapping, got {kind_of(data)}")
        self.data: dict[object, object] = data
        self.path = path
        self.source = source
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        """The dotted key of `name` in this section, as errors show it."""
        return join_key(self.path, name)

    def error(self, name: str, problem: str) -> ConfigError:
        """A ConfigError about the key `name` of this section."""
        return ConfigError(self.source, self.key(name), problem)

    def here(self, problem: str) -> ConfigError:
        """An error about this section as a whole."""
        return ConfigError(self.source, self.path, problem)

    def get(self, name: str) -> object:
        """The raw value of `name` (None when absent), marked as read for `done()`."""
        self._read.add(name)
        return self.data.get(name)

    def section(self, name: str) -> Section:
        """The mapping under `name` (empty when absent); an error when it is not a mapping."""
        return Section(self.get(name), self.key(name), self.source)

    def text(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        """A plain value as stripped text (numbers allowed), `default` when absent; `required` makes absence
        an error."""
        value = self.get(name)
        if value is None:
            if required:
                raise self.error(name, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(name, f"should be a string, got {kind_of(value)}")
        return utf8(str(value).strip(), self, name)

    def string(self, name: str) -> str | None:
        """A value that must be a YAML string (not a number read as text), kept as written; None or ""
        when absent or empty."""
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(name, f"should be a string, got {kind_of(value)}")
        return utf8(value, self, name) or None

    def number(self, name: str, default: float, *, minimum: float, maximum: float | None = None) -> float:
        """A finite number within [minimum, maximum], as a float; `default` when absent."""
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(name, f"should be a number, got {kind_of(value)}")
        if not math.isfinite(value):
            raise self.error(name, f"should be a finite number, got {value}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f"at least {minimum:g}"
            raise self.error(name, f"should be {bound}, got {value:g}")
        return float(value)

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        """A whole number within [minimum, maximum]; `default` when absent."""
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"should be a whole number, got {kind_of(value)}")
        if not minimum <= value <= maximum:
            raise self.error(name, f"should be between {minimum} and {maximum}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        """A YAML boolean; `default` when absent."""
        value = self.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"should be true or false, got {kind_of(value)}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        """A text value that must be one of `choices`; `default` when absent."""
        value = self.text(name, default)
        assert value is not None
        if value not in choices:
            raise self.error(name, f"should be one of {', '.join(choices)}, got {value!r}")
        return value

    def items(self, name: str) -> list[object]:
        """A list (empty when absent); an error when it is anything else."""
        value = self.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(name, f"should be a list, got {kind_of(value)}")
        return value

    def strings(self, name: str) -> tuple[str, ...] | None:
        """A list of YAML strings; None when absent."""
        if self.data.get(name) is None:
            self._read.add(name)
            return None
        result = []
        for index, item in enumerate(self.items(name)):
            if not isinstance(item, str):
                raise self.error(f"{name}[{index}]", f"should be a string, got {kind_of(item)}")
            result.append(utf8(item, self, f"{name}[{index}]"))
        return tuple(result)

    def done(self, allowed: tuple[str, ...] | None = None) -> None:
        """Reject keys that were never read; `allowed` lists them in the message."""
        unknown = sorted(str(k) for k in self.data if str(k) not in self._read)
        if unknown:
            hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
            raise self.error(unknown[0], f"unknown key{hint}")


def utf8(text: str, section: Section, name: str) -> str:
    """`text`, unless it cannot be written as UTF-8 (a lone surrogate from a YAML escape such as "\\ud800"
    would make every exposition fail to encode)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise section.error(name, "is not valid UTF-8 text") from None
    return text


def read_file(path: str, what: str) -> bytes:
    """The bytes of `path`; ConfigError says why it cannot be read, naming it the `what`."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "", f"cannot read the {what}: it does not exist") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read the {what}: {exc.strerror or type(exc).__name__}") from None


def parse_document(text: str | bytes, source: str) -> object:
    """Strict YAML (duplicate keys refused); ConfigError names the file and the line."""
    try:
        return parse_yaml(text, source)
    except YAMLError as exc:
        raise ConfigError(source, "", str(exc).removeprefix(f"{source}: ")) from None


def read_yaml_file(path: str, what: str) -> object:
    """The YAML document in `path`; ConfigError names the file and what went wrong (missing, unreadable,
    invalid YAML with its line)."""
    return parse_document(read_file(path, what), path)
