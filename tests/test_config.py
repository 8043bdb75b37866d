from __future__ import annotations

from pathlib import Path

import pytest

from finrl_lite.config import AppConfig, apply_overrides, dump_config, load_config
from finrl_lite.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_every_shipped_config_loads(name: str) -> None:
    cfg = load_config(REPO / "configs" / name)
    assert isinstance(cfg, AppConfig)


def test_defaults_without_file() -> None:
    cfg = load_config(None)
    assert cfg.data.source == "synthetic"
    assert cfg.data.indicators[0] == "macd"


def test_overrides_parse_yaml_values() -> None:
    cfg = load_config(
        REPO / "configs" / "quickstart.yaml", ["data.synthetic.num_tickers=3", "data.tickers=[A, B, C]", "data.vix=false"]
    )
    assert cfg.data.synthetic.num_tickers == 3
    assert cfg.data.tickers == ["A", "B", "C"]
    assert cfg.data.vix is False


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_wrong_type_names_file_and_field(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  synthetic:\n    num_tickers: many\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert str(p) in msg and "data.synthetic.num_tickers" in msg and "'many'" in msg


def test_unknown_key_lists_allowed(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  sorce: csv\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert "data.sorce: unknown key" in str(err.value)
    assert "source" in str(err.value) and "indicators" in str(err.value)


def test_out_of_range_and_literal() -> None:
    with pytest.raises(ConfigError, match=r"data\.synthetic\.num_tickers.*greater than or equal to 1"):
        load_config(None, ["data.synthetic.num_tickers=0"])
    with pytest.raises(ConfigError, match=r"data\.source.*'synthetic'.*'alpaca'"):
        load_config(None, ["data.source=bloomberg"])
    with pytest.raises(ConfigError, match=r"start 2020-01-01 is after end 2019-01-01"):
        load_config(None, ["data.start=2020-01-01", "data.end=2019-01-01"])


def test_bad_yaml_and_bad_override(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(None, ["data.source"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"data": {"source": "csv"}}, ["data.source.x=1"])


def test_dump_round_trips(tmp_path: Path) -> None:
    cfg = load_config(REPO / "configs" / "quickstart.yaml")
    p = tmp_path / "resolved.yaml"
    p.write_text(dump_config(cfg))
    assert load_config(p) == cfg


def test_evaluated_splits_must_be_defined(tmp_path: Path) -> None:
    """A config whose data.splits lacks a split train evaluates on fails at load, naming the field (not after the data)."""
    cfg = tmp_path / "no_validation.yaml"
    splits = "    train: {start: 2015-01-02, end: 2017-12-31}\n    test: {start: 2018-01-01, end: 2018-12-31}\n"
    cfg.write_text("data:\n  splits:\n" + splits)
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    message = str(info.value)
    assert "no_validation.yaml" in message and "train.eval_splits names split(s) ['validation']" in message
    assert "it defines ['test', 'train']" in message and "{'data'" not in message  # not the whole file echoed back
    assert load_config(cfg, ["train.eval_splits=[test]"]).train.eval_splits == ["test"]
    with pytest.raises(ConfigError, match=r"train.train_split names split\(s\) \['learn'\]"):
        load_config(cfg, ["train.train_split=learn", "train.eval_splits=[test]"])
