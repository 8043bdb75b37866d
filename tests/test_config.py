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
    assert apply_overrides({"paper": None}, ["paper.broker=sim"]) == {"paper": {"broker": "sim"}}  # an empty section


def test_dump_round_trips(tmp_path: Path) -> None:
    cfg = load_config(REPO / "configs" / "quickstart.yaml")
    p = tmp_path / "resolved.yaml"
    p.write_text(dump_config(cfg))
    assert load_config(p) == cfg


def test_an_impossible_date_names_its_field(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  splits:\n    test: {start: 2019-11-01, end: 2019-11-31}\n")
    expected = r"c\.yaml: invalid configuration\n  data\.splits\.test\.end: .*outside expected range \(got .2019-11-31.\)$"
    with pytest.raises(ConfigError, match=expected):
        load_config(p)
    with pytest.raises(ConfigError, match=r"data\.start: .*2019-02-29"):
        load_config(None, ["data.start=2019-02-29"])


def test_values_of_secret_looking_keys_are_never_echoed() -> None:
    for overrides in (
        ["data.alpaca.secret_key=hunter2"],  # unknown key
        ["data.alpaca.api_key=[hunter2"],  # bad YAML
        ["data.alpaca={feed: iex, api_token: hunter2}"],  # unknown key inside a section value
        ["data.alpaca=hunter2", "data.alpaca.password=hunter2"],  # a value, not a section
        ["data.synthetic={num_tickers: -1, password: hunter2}"],
    ):
        with pytest.raises(ConfigError) as info:
            load_config(None, overrides)
        assert "hunter2" not in str(info.value), (overrides, str(info.value))
    with pytest.raises(ConfigError, match=r"data\.synthetic\.num_tickers.*got -1"):  # other values still shown
        load_config(None, ["data.synthetic.num_tickers=-1"])


def test_data_path_is_relative_to_the_config_file_and_an_override_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "c.yaml").write_text("data:\n  source: csv\n  path: ../data/bars.csv\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert load_config(folder / "c.yaml").data.path == str(tmp_path / "data" / "bars.csv")
    assert load_config(folder / "c.yaml", ["data.path=mine.csv"]).data.path == str(work / "mine.csv")
    assert load_config(folder / "c.yaml", [f"data.path={tmp_path / 'abs.csv'}"]).data.path == str(tmp_path / "abs.csv")
    assert load_config(folder / "c.yaml", ["data.path=~/x.csv"]).data.path == "~/x.csv"  # expanded when read
    # a stored (resolved) config points at the same file from anywhere
    stored = tmp_path / "run" / "config.yaml"
    stored.parent.mkdir()
    stored.write_text(dump_config(load_config(folder / "c.yaml")))
    assert load_config(stored).data.path == str(tmp_path / "data" / "bars.csv")


def test_shipped_file_configs_point_at_the_shared_data() -> None:
    for name in ("sp500_csv.yaml", "crypto_csv.yaml"):
        path = Path(load_config(REPO / "configs" / name).data.path or "")
        assert path.parent == REPO.parent / "shared" / "data", name


def test_date_format_timezone_and_extra_features_are_checked() -> None:
    assert load_config(None, ["data.date_format='%d/%m/%Y'"]).data.date_format == "%d/%m/%Y"
    with pytest.raises(ConfigError, match=r"data\.date_format: .*ISO8601 or a strftime format"):
        load_config(None, ["data.date_format=mixed"])
    assert load_config(None, ["data.timezone=America/New_York"]).data.timezone == "America/New_York"
    with pytest.raises(ConfigError, match=r"data\.timezone: .*not a known IANA timezone"):
        load_config(None, ["data.timezone=Mars/Olympus"])
    with pytest.raises(ConfigError, match=r"data\.extra_features: .*row index pandas wrote"):
        load_config(None, ["data.extra_features=['Unnamed: 0']"])
    with pytest.raises(ConfigError, match=r"data\.extra_features: .*\['close'\] are not extra features"):
        load_config(None, ["data.extra_features=[close]"])
    with pytest.raises(ConfigError, match=r"data\.cleaning\.max_price_jump"):
        load_config(None, ["data.cleaning.max_price_jump=0.5"])


def test_evaluated_splits_must_be_defined(tmp_path: Path) -> None:
    """A config whose data.splits lacks a split that training evaluates on loads (other commands, such as `data
    prepare` or `ensemble`, do not use train.eval_splits), and a training run refuses it before it touches the data."""
    from finrl_lite.train.pipeline import check_run

    cfg = tmp_path / "no_validation.yaml"
    splits = "    train: {start: 2015-01-02, end: 2017-12-31}\n    test: {start: 2018-01-01, end: 2018-12-31}\n"
    cfg.write_text("data:\n  splits:\n" + splits)
    with pytest.raises(ConfigError, match=r"data.splits has no split 'validation'.*splits: \['test', 'train'\]"):
        check_run(load_config(cfg))
    with pytest.raises(ConfigError, match=r"no split 'learn'"):
        check_run(load_config(cfg, ["train.train_split=learn", "train.eval_splits=[test]"]))
