"""Every YAML file of the repository is valid YAML: no key twice in one mapping.

YAML forbids a repeated key, but PyYAML (and so `docker compose config` and Dagster's instance
loader, in their own ways) silently keeps one of the two: a variable defined twice in the
compose file's environment says two things and means one. The loader below refuses them;
overriding a merged key (`<<: *anchor`, then the key again) is YAML's way to override and stays
allowed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


class UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that raises on a key written twice in one mapping."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Checked before merging: a merged mapping's keys may be overridden, a written one not.
        A node is flattened once as a merge source and again when built, hence `checked`."""
        checked: set[int] = self.__dict__.setdefault("checked", set())
        if id(node) not in checked:
            checked.add(id(node))
            _refuse_repeated_keys(node)
        super().flatten_mapping(node)


def _refuse_repeated_keys(node: yaml.MappingNode) -> None:
    seen: dict[object, yaml.Node] = {}
    for key, _value in node.value:
        if key.tag == "tag:yaml.org,2002:merge" or not isinstance(key, yaml.ScalarNode):
            continue
        if key.value in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found the key {key.value!r} twice (first on line {seen[key.value].start_mark.line + 1})",
                key.start_mark,
            )
        seen[key.value] = key


def tracked_yaml_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "*.yml", "*.yaml"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / name for name in listed]


def test_the_repository_has_yaml_files_to_check():
    names = {path.relative_to(ROOT).as_posix() for path in tracked_yaml_files()}
    assert {"docker-compose.yml", "dagster.yaml", "deploy/dagster.yaml"} <= names


@pytest.mark.parametrize("path", tracked_yaml_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_yaml_file_writes_a_key_twice_in_one_mapping(path):
    list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader))


def test_the_loader_refuses_a_repeated_key_and_allows_overriding_a_merged_one():
    with pytest.raises(yaml.constructor.ConstructorError, match="'SMS_MAX_TPS' twice"):
        yaml.load("env:\n  SMS_MAX_TPS: 1\n  OTHER: 2\n  SMS_MAX_TPS: 3\n", Loader=UniqueKeyLoader)
    merged = "base: &base\n  a: 1\n  b: 2\nchild:\n  <<: *base\n  b: 3\nagain:\n  <<: *base\n"
    assert yaml.load(merged, Loader=UniqueKeyLoader) == {
        "base": {"a": 1, "b": 2},
        "child": {"a": 1, "b": 3},
        "again": {"a": 1, "b": 2},
    }
