"""Every space YAML composes with Hydra, validates, and declares valid Keras Tuner hyperparameters."""

from pathlib import Path

import keras_tuner
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from data.errors import UserError
from search.config import register_configs
from search.plan.space import candidates, declare, validate_space
from tests.conftest import CONV_LSTM_TUNED

CONF = Path(__file__).resolve().parent.parent / "conf"
SPACES = sorted(p.stem for p in (CONF / "space").glob("*.yaml"))
register_configs()


def compose_config(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def specs_of(cfg):
    return validate_space(OmegaConf.to_container(cfg.space, resolve=True))


@pytest.mark.parametrize("space", SPACES)
def test_space_composes_and_yields_values_in_range(space):
    specs = specs_of(compose_config(f"+space={space}"))
    hp = keras_tuner.HyperParameters()
    values = declare(hp, specs)
    assert values["model"] == space
    for name, spec in specs.items():
        value = values[name]
        if spec["kind"] in ("int", "float"):
            assert spec["min"] <= value <= spec["max"], name
        else:
            assert value in candidates(spec), name
    assert set(hp.values) == set(specs)


def test_conv_lstm_tunes_what_the_users_asked_for():
    specs = specs_of(compose_config("+space=conv_lstm"))
    wanted = set(CONV_LSTM_TUNED)
    tunable = {name for name, spec in specs.items() if spec["kind"] != "fixed"}
    assert wanted <= tunable
    assert specs["learning_rate"]["log"] is True


def test_command_line_overrides_reach_the_space():
    cfg = compose_config("+space=conv_lstm", "space.lstm_units.max=128", "space.bidirectional.value=true", "tuner.max_epochs=30")
    specs = specs_of(cfg)
    assert specs["lstm_units"]["max"] == 128 and cfg.tuner.max_epochs == 30
    values = declare(keras_tuner.HyperParameters(), specs)
    assert values["bidirectional"] is True


@pytest.mark.parametrize(
    "override,field",
    [
        ("space.lstm_units.min=100", "space.lstm_units.min"),
        ("space.filters.values=[]", "space.filters.values"),
        ("space.filters.kind=gaussian", "space.filters.kind"),
        ("space.optimizer.value=adamw", "space.optimizer"),
        ("space.loss.value=hinge", "space.loss"),
        ("space.model.value=transformer", "space.model"),
        ("space.batch_size.values=[0,32]", "space.batch_size"),
    ],
)
def test_impossible_spaces_name_the_field(override, field):
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        specs_of(compose_config("+space=conv_lstm", override))


def test_a_name_the_builder_does_not_take_is_refused():
    space = OmegaConf.to_container(compose_config("+space=conv_lstm").space)
    space["units"] = {"kind": "int", "min": 1, "max": 2}
    with pytest.raises(UserError, match=r"space\.units is not a hyperparameter of model 'conv_lstm'"):
        validate_space(space)


def test_each_spec_reads_as_one_line_on_the_parent_run():
    from search.plan.space import describe

    assert describe({"kind": "int", "min": 20, "max": 60, "step": 10}) == "int 20..60 step 10"
    assert describe({"kind": "int", "min": 1, "max": 2}) == "int 1..2"
    assert describe({"kind": "float", "min": 1e-4, "max": 1e-2, "log": True}) == "float 0.0001..0.01 log"
    assert describe({"kind": "choice", "values": [32, 64]}) == "choice [32, 64]"
    assert describe({"kind": "bool"}) == "bool"
    assert describe({"kind": "int", "min": 1, "max": 3, "value": 2}) == "fixed 2"  # pinned


def test_seasonal_scaling_and_the_ar_skip_follow_the_season():
    """`seasonal` scaling is searched only where data.season_length is set (a note says when it is left out; pinned
    without a season it is an error naming both keys); `ar_skip` with `per: season` counts in seasons."""
    from search.plan.space import in_points, input_lengths, narrowed_to_season

    specs = specs_of(compose_config("+space=dnn"))
    assert "seasonal" in specs["scaling"]["values"] and specs["ar_skip"]["values"] == [0, 24]
    narrowed, note = narrowed_to_season(specs, 0)
    assert narrowed["scaling"]["values"] == ["standard", "last_value", "window"]
    assert "space.scaling: seasonal, profile left out: data.season_length=0" in note
    kept, _ = narrowed_to_season(specs, 12)
    assert "seasonal" in kept["scaling"]["values"]
    pinned = specs_of(compose_config("+space=dnn", "space.scaling.value=seasonal"))
    with pytest.raises(UserError, match="space.scaling=seasonal needs a season: set data.season_length"):
        narrowed_to_season(pinned, 0)
    per_season = specs_of(compose_config("+space=dnn", "space.ar_skip.values=[0,1]", "space.ar_skip.per=season"))
    assert in_points(per_season, 1, 365)["ar_skip"]["values"] == [0, 365]
    assert in_points(per_season, 1, 0)["ar_skip"]["values"] == [0]  # no season: no skip
    # seasonal scaling reads one season more than its window; a skip may reach past it
    assert max(input_lengths(kept, 12)) == max(60, 24) + 12


def test_seasonal_scaling_is_left_out_where_seasonal_naive_forecasts_the_past_worse_than_naive(tmp_path, capsys):
    """Planning drops `seasonal` from a scaling choice where the series says it cannot pay (the synthetic default:
    seasonal naive ~3x naive's error), keeps it on a sharply seasonal monthly series at horizon 24, and keeps it
    when the user pinned it; a note names what was left out and how to search it anyway. `profile` is dropped
    where the season's average change holds nothing (a random walk), kept on the synthetic default (its smoothed
    profile forecasts better than naive)."""
    import pandas as pd

    from bench.short_series import DATA, write_series
    from search.plan.planning import Request, make_plan

    def plan_config(*overrides):
        return make_plan(Request.of(compose_config("+space=dnn", *overrides)))

    default = plan_config()
    assert default.specs["scaling"]["values"] == ["standard", "last_value", "window", "profile"]
    note = capsys.readouterr().out
    assert "space.scaling: seasonal left out: before the test tail seasonal naive's MAE" in note
    assert "space.scaling.value=seasonal searches it anyway" in note
    assert "profile left out" not in note

    walk = tmp_path / "walk.csv"
    pd.DataFrame({"value": np.random.default_rng(0).standard_normal(600).cumsum()}).to_csv(walk, index=False)  # no season in it
    no_season = plan_config("data=csv", "data.column=value", "data.season_length=52", f"data.path={walk}")
    assert "profile" not in no_season.specs["scaling"]["values"]
    note = capsys.readouterr().out
    assert "space.scaling: profile left out: the season's average change" in note
    assert "space.scaling.value=profile searches it anyway" in note

    monthly = write_series("course300", tmp_path)
    short = plan_config(*DATA, f"data.path={monthly}")
    assert {"seasonal", "profile"} <= set(short.specs["scaling"]["values"])
    assert "left out" not in capsys.readouterr().out

    pinned = plan_config("space.scaling.value=seasonal")
    assert candidates(pinned.specs["scaling"]) == ["seasonal"]
