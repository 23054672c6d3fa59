"""`RunnerConfig`: the runner's settings, read, defaulted and checked once."""

import dataclasses
import math

import pytest
from moat.util import P

from distkv_ext.codekit.core.errors import BadArguments
from distkv_ext.run import RUNNER_DEFAULTS, RunnerConfig


def test_defaults():
    c = RunnerConfig()
    assert (c.heartbeat, c.timeout, c.settle, c.rebalance, c.rebalance_delay) == (0.5, 2.0, 0.25, True, 2.0)
    assert (c.weight, c.stop_timeout, c.output_lines, c.output_runs) == (1.0, 10.0, 200, 5)
    assert c.kill_grace == 5.0
    assert c.output == P(":.distkv.output")
    assert RUNNER_DEFAULTS == dataclasses.asdict(c)


def test_load_ignores_distkvs_keys_and_none():
    runner = {"prefix": P(":.distkv.run"), "state": P(":.distkv.state"), "ping": 99, "weight": 3, "settle": None}
    c = RunnerConfig.load(runner)
    assert (c.weight, c.settle) == (3.0, 0.25)


def test_overrides_win_none_is_not_given():
    c = RunnerConfig.load({"weight": 3, "timeout": 4}, weight=0, timeout=None, heartbeat=2)
    assert (c.weight, c.timeout, c.heartbeat) == (0.0, 4.0, 2.0)


def test_it_is_a_frozen_value():
    c = RunnerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.weight = 2
    assert c.replace(weight=2).weight == 2.0 and c.weight == 1.0
    assert c.replace(weight=None) == c


def test_normalized():
    c = RunnerConfig.load({"heartbeat": 1, "output_lines": 10.0, "output": "my.out", "rebalance": 0})
    assert c.heartbeat == 1.0 and isinstance(c.heartbeat, float)
    assert c.output_lines == 10 and isinstance(c.output_lines, int)
    assert c.output == P("my.out") and c.rebalance is False
    assert RunnerConfig(output=["a", "b"]).output == P("a.b")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"heartbeat": 0}, "runner.heartbeat must be at least 0.01, not 0"),
        ({"heartbeat": -1}, "runner.heartbeat must be at least 0.01, not -1"),
        ({"heartbeat": 0.0001, "timeout": 1}, "runner.heartbeat must be at least 0.01, not 0.0001"),
        ({"heartbeat": 1e9}, "runner.heartbeat must be at most 3600, not 1e+09"),
        ({"weight": 1e6}, "runner.weight must be at most 1000, not 1e+06"),
        ({"heartbeat": math.inf}, "runner.heartbeat must be a finite number, not inf"),
        ({"timeout": math.nan}, "runner.timeout must be a finite number, not nan"),
        ({"timeout": "2"}, "runner.timeout must be a number, not '2'"),
        ({"timeout": True}, "runner.timeout must be a number, not True"),
        ({"heartbeat": 1, "timeout": 1.5}, "runner.timeout (1.5) must be at least twice runner.heartbeat (1)"),
        ({"weight": -0.5}, "runner.weight must be at least 0, not -0.5"),
        ({"settle": -1}, "runner.settle must be at least 0, not -1"),
        ({"rebalance_delay": -1}, "runner.rebalance_delay must be at least 0, not -1"),
        ({"stop_timeout": -1}, "runner.stop_timeout must be at least 0, not -1"),
        ({"kill_grace": -1}, "runner.kill_grace must be at least 0, not -1"),
        ({"kill_grace": "5"}, "runner.kill_grace must be a number, not '5'"),
        ({"output_lines": 0}, "runner.output_lines must be a whole number of at least 1, not 0"),
        ({"output_runs": 2.5}, "runner.output_runs must be a whole number of at least 1, not 2.5"),
        ({"output_runs": "5"}, "runner.output_runs must be a whole number of at least 1, not '5'"),
        ({"rebalance": "no"}, "runner.rebalance must be true or false, not 'no'"),
        ({"output": 42}, "runner.output must be a DistKV path, not 42"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(setting, message):
    with pytest.raises(BadArguments) as e:
        RunnerConfig.load(setting)
    assert str(e.value) == message and "\n" not in str(e.value)


def test_bad_override_is_refused():
    with pytest.raises(BadArguments, match=r"runner\.weight must be at least 0, not -1"):
        RunnerConfig.load({}, weight=-1)
    with pytest.raises(BadArguments, match="unknown runner setting: wieght"):
        RunnerConfig.load({}, wieght=2)
    with pytest.raises(BadArguments, match="twice"):
        RunnerConfig().replace(heartbeat=5)


def test_zero_weight_and_settle_are_allowed():
    c = RunnerConfig.load({"weight": 0, "settle": 0, "rebalance_delay": 0, "stop_timeout": 0})
    assert (c.weight, c.settle, c.rebalance_delay, c.stop_timeout) == (0, 0, 0, 0)
