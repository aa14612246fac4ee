"""Configuration loading and `orderd check-config`."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
import zmq.auth

from actors.circuit.breakers import MAX_ERRORS_PER_MINUTE, MAX_WINDOW_MINUTES
from actors.exchange.retry import MAX_BACKOFF_BASE
from daemon.config import load_config
from daemon.config_loader import ConfigError
from daemon.wiring import order_settings, streamed
from tests.helpers import ROOT
from venue.limits import VenueLimits


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "orderd.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    config = load_config(None)
    assert config.control.endpoint == "tcp://127.0.0.1:5555"
    assert config.default_exchange == "paper"


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'state_dir = "here"\n'))
    assert config.state_dir == tmp_path / "here"


def test_shipped_config_is_valid() -> None:
    assert load_config(ROOT / "etc" / "orderd.toml").exchanges[0].driver == "paper"


@pytest.mark.parametrize("text,key", [
    ("colour = 1\n", "colour"),
    ("[control]\nendpoint = 5\n", "control.endpoint"),
    ('[control]\nendpoint = "http://x:1"\n', "control.endpoint"),
    ('[control]\nendpoint = "tcp://127.0.0.1:99999"\n', "control.endpoint"),
    ("[control]\nmax_request_bytes = true\n", "control.max_request_bytes"),
    ('[events]\nendpont = "tcp://127.0.0.1:1"\n', "events.endpont"),
    ('[[exchanges]]\nname = "p"\ndriver = "nasdaq"\n', "exchanges[0].driver"),
    ('[[exchanges]]\nname = "p"\n[exchanges.faults]\nerror_rate = 2\n',
     "exchanges[0].faults.error_rate"),
    ('[[exchanges]]\nname = "p"\n[exchanges.limits]\nweight_per_minute = -1\n',
     "exchanges[0].limits.weight_per_minute"),
    ('[[exchanges]]\nname = "p"\n[exchanges.limits]\norders_per_10s = 1.5\n',
     "exchanges[0].limits.orders_per_10s"),
    ('[[exchanges]]\nname = "p"\n[exchanges.limits]\norders_per_day = true\n',
     "exchanges[0].limits.orders_per_day"),
    ('[[exchanges]]\nname = "p"\n[exchanges.limits]\nweight = 5\n',
     "exchanges[0].limits.weight"),
    ('[[exchanges]]\nname = "p"\nlimits = 5\n', "exchanges[0].limits"),
    ("state_dir = [1]\n", "state_dir"),
    ("[orders]\nmax_backlog = 0\n", "orders.max_backlog"),
    ("[resolution]\nclock_skew_s = -1.0\n", "resolution.clock_skew_s"),
    ('cpu = "fastest"\n', "cpu"),
    ("cpu = -1\n", "cpu"),
    ("cpu = true\n", "cpu"),
    ("cpu = 1.0\n", "cpu"),
])
def test_bad_values_name_their_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert str(caught.value).startswith(f"{key}:")


def test_check_config_command(tmp_path: Path) -> None:
    bad = write(tmp_path, "[control]\nendpoint = 5\n")
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "check-config", "--config",
                             str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "control.endpoint" in result.stderr
    good = subprocess.run([sys.executable, "-m", "daemon.cli", "check-config", "--config",
                           str(ROOT / "etc" / "orderd.toml")], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert good.returncode == 0, good.stderr


def test_daemon_refuses_bad_config_with_status_2(tmp_path: Path) -> None:
    bad = write(tmp_path, "unknown_key = 1\n")
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(bad)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown_key" in result.stderr


BINANCE = '[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "http://127.0.0.1:8765"\n'


def test_binance_credentials_from_the_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BINANCE + 'api_key = "k1"\nsecret = "s3cr3t-1"\n'))
    exchange = config.exchange("bx")
    assert exchange.credentials() == ("k1", "s3cr3t-1")
    assert "s3cr3t-1" not in repr(config) and "k1" not in repr(exchange)


def test_binance_credentials_from_files_are_stripped(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k2\n")
    (tmp_path / "secret").write_text("  s3cr3t-2\n")
    config = load_config(write(tmp_path, BINANCE + 'api_key_file = "key"\n'
                                                   'secret_file = "secret"\n'))
    assert config.exchange("bx").credentials() == ("k2", "s3cr3t-2")


def test_binance_credentials_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERD_BX_API_KEY", "k3")
    monkeypatch.setenv("ORDERD_BX_SECRET", "s3cr3t-3")
    assert load_config(write(tmp_path, BINANCE)).exchange("bx").credentials() == (
        "k3", "s3cr3t-3")


def test_missing_binance_secret_names_its_sources(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERD_BX_SECRET", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, BINANCE + 'api_key = "k4"\n'))
    message = str(caught.value)
    assert message.startswith("exchanges[0].secret:")
    assert "secret_file" in message and "ORDERD_BX_SECRET" in message
    assert "k4" not in message


def test_paper_limits_are_off_unless_asked_and_binances_when_asked(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, '[[exchanges]]\nname = "p"\n')).exchanges[0].limits \
        is None
    asked = load_config(write(tmp_path, '[[exchanges]]\nname = "p"\n[exchanges.limits]\n'
                                        "orders_per_10s = 10\n")).exchanges[0].limits
    assert asked == VenueLimits(weight_per_minute=6000, orders_per_10s=10,
                                orders_per_day=200_000, raw_requests_per_5m=61_000)


def test_only_the_paper_driver_simulates_limits(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^exchanges\[0\]\.limits: only the paper driver"):
        load_config(write(tmp_path, BINANCE + 'api_key = "k"\nsecret = "s"\n'
                                              "[exchanges.limits]\nweight_per_minute = 60\n"))


@pytest.mark.parametrize("extra,key", [
    ('api_key = "k"\nsecret = "s3cr3t"\nsecret_file = "f"\n', "exchanges[0].secret"),
    ('api_key = "k"\nsecret_file = "missing"\n', "exchanges[0].secret_file"),
    ('api_key = "k"\nsecret = "s3cr3t"\ntimeout_ms = 5\n', "exchanges[0].timeout_ms"),
    ('api_key = "k"\nsecret = "s3cr3t"\nrecv_window_ms = 60001\n', "exchanges[0].recv_window_ms"),
    ('api_key = "k"\nsecret = "s3cr3t"\nrate_limit_per_s = -1\n', "exchanges[0].rate_limit_per_s"),
])
def test_bad_binance_settings_name_their_key(tmp_path: Path, extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, BINANCE + extra))
    assert str(caught.value).startswith(key + ":")
    assert "s3cr3t" not in str(caught.value)


def test_empty_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match=r"exchanges\[0\]\.secret_file: .* is empty"):
        load_config(write(tmp_path, BINANCE + 'api_key = "k"\nsecret_file = "empty"\n'))


@pytest.mark.parametrize("extra,key", [
    ('api_url = "http://127.0.0.1:1"\n', "exchanges[0].api_url"),
    ('secret = "s3cr3t"\n', "exchanges[0].secret"),
])
def test_paper_driver_takes_no_credentials(tmp_path: Path, extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, '[[exchanges]]\nname = "p"\n' + extra))
    assert str(caught.value).startswith(key + ":")
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize("url", ["ftp://x", "http://127.0.0.1:99999", "http://:8080",
                                 "http://127.0.0.1:0", "https://host:port"])
def test_api_url_must_be_a_base_url(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match=r"exchanges\[0\]\.api_url"):
        load_config(write(tmp_path, BINANCE.replace("http://127.0.0.1:8765", url)
                          + 'api_key = "k"\nsecret = "s"\n'))


def test_an_api_url_with_a_port_or_ipv6_host_is_taken(tmp_path: Path) -> None:
    for url in ("https://api.binance.com", "http://[::1]:8080/", "http://127.0.0.1:65535"):
        config = load_config(write(tmp_path, BINANCE.replace("http://127.0.0.1:8765", url)
                                   + 'api_key = "k"\nsecret = "s"\n'))
        assert config.exchanges[0].api_url == url


def test_a_backlog_is_no_longer_than_the_exchange_can_send_before_the_deadline(
        tmp_path: Path) -> None:
    """Orders accepted beyond what the exchange's pace sends within send_deadline_s
    would expire unsent: the limit comes down to it (three requests an order)."""
    orders = "[orders]\nsend_deadline_s = 30.0\nmax_backlog = 5000\n"
    slow = BINANCE + 'api_key = "k"\nsecret = "s"\nrate_limit_per_s = 2.0\n'
    paper = '[[exchanges]]\nname = "p"\ndriver = "paper"\n'
    config = load_config(write(tmp_path, orders + slow + paper))
    assert order_settings(config).backlogs == {"bx": 20, "p": 5000}


@pytest.mark.parametrize("section", ["control", "events"])
def test_an_abstract_ipc_endpoint_needs_curve(tmp_path: Path, section: str) -> None:
    """ipc://@name has no socket file, so no permission keeps other local users out."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f'[{section}]\nendpoint = "ipc://@orderd-{section}"\n'))
    message = str(caught.value)
    assert message.startswith(f"{section}.endpoint:")
    assert "abstract" in message and "control.curve_secret_key_file" in message


def test_a_filesystem_ipc_path_needs_no_curve(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, f'[control]\nendpoint = "ipc://{tmp_path}/c.sock"\n'
                                         f'[events]\nendpoint = "ipc://{tmp_path}/e.sock"\n'))
    assert config.control.endpoint == f"ipc://{tmp_path}/c.sock" and not config.control.curve


def test_an_abstract_ipc_endpoint_with_curve_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "clients").mkdir()
    zmq.auth.create_certificates(tmp_path, "server")
    config = load_config(write(
        tmp_path, '[control]\nendpoint = "ipc://@orderd-c"\n'
                  'curve_secret_key_file = "server.key_secret"\ncurve_clients_dir = "clients"\n'
                  '[events]\nendpoint = "ipc://@orderd-e"\n'))
    assert config.control.curve and config.events.endpoint == "ipc://@orderd-e"


def test_check_config_refuses_an_abstract_endpoint_with_status_2(tmp_path: Path) -> None:
    bad = write(tmp_path, '[control]\nendpoint = "ipc://@orderd-c"\n')
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "check-config", "--config",
                             str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "control.endpoint" in result.stderr and "abstract" in result.stderr


@pytest.mark.parametrize("text,key", [
    ('[[exchanges]]\nname = "p"\nconcurrency = 0\n', "exchanges[0].concurrency"),
    ('[[exchanges]]\nname = "p"\n[exchanges.budget]\nreserve = 0.9\n',
     "exchanges[0].budget.reserve"),
    ('[[exchanges]]\nname = "p"\n[exchanges.risk]\nsymbols = ["BTC"]\n',
     "exchanges[0].risk.symbols"),
    ("[tracking]\nyoung_age_s = -1.0\n", "tracking.young_age_s"),
    ('[schedule]\ntime = "24:00"\n', "schedule.time"),
    ("[reporting]\nhistory_days = 0\n", "reporting.history_days"),
    ("[reconciliation]\nmin_age_s = -1.0\n", "reconciliation.min_age_s"),
    ('[retry]\nretryable_errors = ["Nope"]\n', "retry.retryable_errors"),
    ("[circuit_breaker]\nhalf_open_max_calls = 0\n", "circuit_breaker.half_open_max_calls"),
    ("[circuit_breaker]\nerror_threshold = 1e308\n", "circuit_breaker.error_threshold"),
    ("[circuit_breaker]\nwindow_size_minutes = 1e308\n", "circuit_breaker.window_size_minutes"),
    ("[retry]\nbackoff_base = 1e17\n", "retry.backoff_base"),
    ("[supervisor]\nintensity = 0\n", "supervisor.intensity"),
    ('[metrics]\nlisten = "nowhere"\n', "metrics.listen"),
    ("[alerts]\nretries = 11\n", "alerts.retries"),
    ('[events]\nendpoint = "tcp://127.0.0.1:5555"\n', "events.endpoint"),
])
def test_every_section_refuses_a_value_with_its_full_key(
        tmp_path: Path, text: str, key: str) -> None:
    """Wherever a section is defined, its refusal reaches the user as one ConfigError
    carrying the whole dotted key and, apart, what is wrong."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.key == key
    assert caught.value.why and str(caught.value) == f"{key}: {caught.value.why}"


def test_which_streams_are_listened_to(tmp_path: Path) -> None:
    """binance's and paper's streams by default, unless the entry says `stream = false`;
    `[tracking] stream = false` none at all."""
    entries = (BINANCE + 'api_key = "k"\nsecret = "s"\n'
               '[[exchanges]]\nname = "pushed"\n'
               '[[exchanges]]\nname = "quiet"\nstream = false\n'
               '[[exchanges]]\nname = "muted"\ndriver = "binance"\napi_key = "k"\n'
               'secret = "s"\nstream = false\n')
    config = load_config(write(tmp_path, entries))
    assert [e.name for e in streamed(config)] == ["bx", "pushed"]
    off = load_config(write(tmp_path, "[tracking]\nstream = false\n" + entries))
    assert streamed(off) == []


@pytest.mark.parametrize("text,key", [
    ("[circuit_breaker]\nwindow_size_minutes = inf\n", "circuit_breaker.window_size_minutes"),
    ("[circuit_breaker]\ncool_down_seconds = nan\n", "circuit_breaker.cool_down_seconds"),
    ("[orders]\nsend_deadline_s = nan\n", "orders.send_deadline_s"),
    ("[tracking]\nsafety_interval_s = -inf\n", "tracking.safety_interval_s"),
    ('[[exchanges]]\nname = "p"\nretry_budget = inf\n', "exchanges[0].retry_budget"),
])
def test_a_number_that_is_not_finite_is_refused(tmp_path: Path, text: str, key: str) -> None:
    """TOML has inf and nan; no setting means anything by them, and some stopped the
    daemon at start with a traceback after check-config had called the file valid."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert str(caught.value) == f"{key}: expected a finite number"


def test_check_config_and_the_daemon_refuse_an_infinite_window(tmp_path: Path) -> None:
    bad = write(tmp_path, "[circuit_breaker]\nwindow_size_minutes = inf\n")
    for command in (["check-config", "--config", str(bad)], ["--config", str(bad)]):
        result = subprocess.run([sys.executable, "-m", "daemon.cli", *command], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "circuit_breaker.window_size_minutes: expected a finite number" in result.stderr
        assert "Traceback" not in result.stderr


def test_the_largest_breaker_and_backoff_settings_are_usable(tmp_path: Path) -> None:
    """What the checks accept, the daemon can build and use: the failures that trip a
    breaker are a count, and the last retry's delay is within its cap."""
    config = load_config(write(tmp_path, (
        f"[circuit_breaker]\nerror_threshold = {MAX_ERRORS_PER_MINUTE}.0\n"
        f"window_size_minutes = {MAX_WINDOW_MINUTES}.0\n"
        f"[retry]\nmax_retries = 20\nbackoff_base = {MAX_BACKOFF_BASE}\nmax_delay = 10.0\n")))
    assert config.circuit_breaker.fail_max == MAX_ERRORS_PER_MINUTE * MAX_WINDOW_MINUTES + 1
    assert 0 <= config.retry.delay(20, random.Random(1)) <= 10.0
