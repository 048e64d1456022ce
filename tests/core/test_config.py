from dataclasses import dataclass, field
from typing import Literal

import pytest

from visionzoo.core.config import apply_overrides, from_dict, load_config, to_dict
from visionzoo.core.errors import ConfigError


@dataclass
class Inner:
    lr: float = 0.1
    widths: list[float] = field(default_factory=lambda: [1.0, 0.5])
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    name: str = "x"
    steps: int = 10
    inner: Inner = field(default_factory=Inner)
    maybe: int | None = None


def test_yaml_with_overrides_builds_typed_dataclasses(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: run\ninner:\n  lr: 1\n")
    cfg = load_config(Outer, path, ["inner.widths=[1.0,0.25]", "steps=3", "maybe=null"])
    assert cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.widths == [1.0, 0.25] and cfg.steps == 3 and cfg.maybe is None
    assert to_dict(cfg)["inner"] == {"lr": 1.0, "widths": [1.0, 0.25], "mode": "a"}


def test_unknown_key_names_the_file_and_dotted_key(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("inner:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: inner\.lrr: unknown key"):
        load_config(Outer, path)


@pytest.mark.parametrize("override, key", [("steps=abc", "steps"), ("inner.lr=true", "inner.lr"),
                                           ("inner.mode=c", "inner.mode"), ("inner.widths=3", "inner.widths")])
def test_wrong_type_names_the_key(tmp_path, override, key):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\n")
    with pytest.raises(ConfigError, match=rf"r\.yaml: {key}"):
        load_config(Outer, path, [override])


def test_bool_is_not_accepted_as_int():
    with pytest.raises(ConfigError, match="steps: expected int"):
        from_dict(Outer, {"steps": True})


def test_invalid_yaml_reports_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_config(Outer, path)


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["steps"])
