"""Strict YAML loading: safe types only, duplicate keys are an error, errors name file and line."""

from __future__ import annotations

from typing import Any

import yaml


class YAMLError(ValueError):
    """A YAML document that cannot be loaded: invalid, with a duplicate or non-plain key, or unreadable; the
    message names the source and, where known, the line."""

    pass


class _StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise YAMLError(f"line {key_node.start_mark.line + 1}: a mapping key must be a plain value")
        if key in result:
            raise YAMLError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_yaml(text: str | bytes, source: str) -> object:
    """The document in `text`; raises YAMLError with `source` and the line of the problem."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except YAMLError as exc:
        raise YAMLError(f"{source}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        raise YAMLError(f"{source}: invalid YAML at {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise YAMLError(f"{source}: invalid YAML: {type(exc).__name__}") from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise YAMLError(f"{source}: unreadable YAML: {type(exc).__name__}") from None
