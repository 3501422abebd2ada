"""The Swabian Time Tagger adapter, run against the in-process simulated vendor API."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from drivers.errors import LimitError, TransportError
from drivers.registry import registry
from drivers.supervision import DeviceHealth, DeviceSupervisor
from drivers.swabian.time_tagger import SimTimeTaggerConfig, SwabianTimeTagger
from sim_backends.emulators import start_emulator
from sim_backends.timetagger import vendor_api
from sim_backends.timetagger.sources import ManualClock, PoissonDarkCounts

CHANNELS = [1, 2, 3]


class RecordingSource:
    """Wraps a tag source and records every interval it was asked for."""

    def __init__(self, inner: PoissonDarkCounts) -> None:
        self.inner = inner
        self.calls: list[tuple[int, int]] = []

    def tags_between(self, t0_ps: int, t1_ps: int) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append((t0_ps, t1_ps))
        return self.inner.tags_between(t0_ps, t1_ps)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start_s=1.0)


@pytest.fixture
def device(clock: ManualClock) -> Iterator[vendor_api.SimulatedTimeTagger]:
    source = PoissonDarkCounts(CHANNELS, rate_hz=[2e5, 1e5, 5e4], dead_time_ps=50_000, seed=7)
    sim = vendor_api.SimulatedTimeTagger(vendor_api.new_serial(), CHANNELS, source, clock)
    vendor_api.register_device(sim)
    yield sim
    vendor_api.unregister_device(sim.serial)


def make_config(serial: str, **overrides: object) -> SimTimeTaggerConfig:
    data: dict[str, object] = {
        "driver": "sim.timetagger",
        "serial": serial,
        "block_period_s": 0.001,
        "channels": [
            {"channel": 1, "trigger_level_v": 0.1, "delay_ps": 0, "dead_time_ps": 20_000},
            {"channel": 2, "trigger_level_v": 0.1, "delay_ps": 1500, "dead_time_ps": 20_000},
            {"channel": 3, "trigger_level_v": 0.1, "delay_ps": -700, "dead_time_ps": 20_000},
        ],
    }
    data.update(overrides)
    return SimTimeTaggerConfig.model_validate(data)


@pytest.fixture
async def tagger(device: vendor_api.SimulatedTimeTagger) -> SwabianTimeTagger:
    instrument = SwabianTimeTagger("tagger", make_config(device.serial))
    await instrument.connect()
    yield instrument
    await instrument.close()


def test_registry_offers_real_and_simulated_entries() -> None:
    entries = registry()
    assert entries["swabian.timetagger"].config_model.__name__ == "SwabianTimeTaggerConfig"
    assert entries["sim.timetagger"].emulator == "swabian.timetagger"


def test_config_rejects_settings_outside_limits() -> None:
    with pytest.raises(ValueError, match="trigger_level_v"):
        make_config("x", channels=[{"channel": 1, "trigger_level_v": 3.0}])
    with pytest.raises(ValueError, match="listed twice"):
        make_config("x", channels=[{"channel": 1}, {"channel": 1}])
    with pytest.raises(ValueError, match="extra"):
        make_config("x", channels=[{"channel": 1, "gain": 2}])


async def test_connect_applies_config_and_returns_applied_values(tagger: SwabianTimeTagger, device: vendor_api.SimulatedTimeTagger) -> None:
    assert device.delay_ps == {1: 0, 2: 1500, 3: -700}
    assert device.dead_time_ps[1] == 20_000
    applied_level = await tagger.set_trigger_level_v(1, 0.1234)
    assert applied_level == pytest.approx(0.1234, abs=device.trigger_step_v / 2)
    assert applied_level != 0.1234  # the DAC quantised it; the adapter reports what was applied
    assert await tagger.set_dead_time_ps(1, 50_900) == 50_000  # rounded to the 2 ns clock cycle
    assert await tagger.set_delay_ps(2, 2500) == 2500
    snap = await tagger.snapshot()
    assert snap["channels"]["2"]["delay_ps"] == 2500


async def test_out_of_range_settings_are_rejected_before_the_vendor_call(tagger: SwabianTimeTagger, device: vendor_api.SimulatedTimeTagger) -> None:
    before = (dict(device.trigger_level_v), dict(device.delay_ps), dict(device.dead_time_ps))
    device.disconnect()  # any vendor call would now raise TransportError, not LimitError
    with pytest.raises(LimitError, match="trigger level"):
        await tagger.set_trigger_level_v(1, 2.6)
    with pytest.raises(LimitError, match="delay"):
        await tagger.set_delay_ps(1, 3_000_000)
    with pytest.raises(LimitError, match="dead time"):
        await tagger.set_dead_time_ps(1, -5)
    with pytest.raises(LimitError, match="not configured"):
        await tagger.set_delay_ps(7, 0)
    assert (device.trigger_level_v, device.delay_ps, device.dead_time_ps) == before


async def test_tag_blocks_are_int64_ps_and_int16_channels_in_time_order(tagger: SwabianTimeTagger, clock: ManualClock) -> None:
    await tagger.start_stream(CHANNELS)
    clock.advance(0.05)
    block = await tagger.read_block()
    assert block.timestamps_ps.dtype == np.int64 and block.channels.dtype == np.int16
    assert block.timestamps_ps.shape == block.channels.shape
    assert np.all(np.diff(block.timestamps_ps) >= 0)
    assert set(np.unique(block.channels).tolist()) <= set(CHANNELS)
    assert block.start_ps <= block.timestamps_ps[0] and block.timestamps_ps[-1] < block.end_ps
    assert not block.overflow
    # 0.05 s of (2e5, 1e5, 5e4) /s Poisson counts thinned by the 50 ns detector dead time
    counts = np.bincount(block.channels, minlength=4)[1:]
    expected = np.array([2e5, 1e5, 5e4]) * 0.05 / (1 + np.array([2e5, 1e5, 5e4]) * 50e-9)
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    clock.advance(0.01)
    second = await tagger.read_block()
    assert second.start_ps == block.end_ps


async def test_delays_and_dead_time_are_applied_as_the_hardware_does(tagger: SwabianTimeTagger, clock: ManualClock) -> None:
    await tagger.set_dead_time_ps(1, 1_000_000)  # 1 us: far above the 50 ns detector dead time
    await tagger.start_stream([1])
    clock.advance(0.05)
    block = await tagger.read_block()
    assert np.diff(block.timestamps_ps).min() >= 1_000_000


async def test_buffer_overflow_is_flagged_and_tags_dropped(tagger: SwabianTimeTagger, device: vendor_api.SimulatedTimeTagger, clock: ManualClock) -> None:
    await tagger.start_stream(CHANNELS)
    clock.advance(0.01)
    device.inject_overflow(20_000_000_000)  # 20 ms
    clock.advance(0.03)
    block = await tagger.read_block()
    assert block.overflow and block.missed_tags > 0
    t_over = device.now_ps() - 30_000_000_000
    inside = (block.timestamps_ps >= t_over) & (block.timestamps_ps < t_over + 20_000_000_000)
    assert not inside.any()
    expected_missed = 0.02 * (2e5 + 1e5 + 5e4) / 1.01
    assert abs(block.missed_tags - expected_missed) < 5 * np.sqrt(expected_missed)


async def test_disconnect_is_reconnected_by_the_supervisor_with_settings_reapplied(
    tagger: SwabianTimeTagger, device: vendor_api.SimulatedTimeTagger, clock: ManualClock
) -> None:
    await tagger.set_trigger_level_v(2, 0.3)
    await tagger.start_stream(CHANNELS)
    supervisor = DeviceSupervisor(tagger, backoff_initial_s=0.001, backoff_max_s=0.01, down_after=2)
    device.disconnect()
    with pytest.raises(TransportError):
        await tagger.check_health()
    reconnect_later = __import__("asyncio").get_running_loop().call_later(0.05, device.reconnect)
    health = await supervisor.check_once()
    reconnect_later.cancel()
    assert health is DeviceHealth.OK and supervisor.reconnects == 1
    assert device.trigger_level_v[2] == pytest.approx(0.3, abs=device.trigger_step_v)  # remembered setpoint
    assert device.delay_ps[2] == 1500 and device.dead_time_ps[3] == 20_000  # config settings
    clock.advance(0.01)
    block = await tagger.read_block()  # the stream was re-opened too
    assert len(block) > 0


def test_simulated_device_powers_up_with_defaults_after_reconnect(device: vendor_api.SimulatedTimeTagger) -> None:
    handle = vendor_api.createTimeTagger(device.serial)
    handle.setTriggerLevel(1, 0.2)
    device.disconnect()
    with pytest.raises(RuntimeError):
        handle.getTriggerLevel(1)
    with pytest.raises(RuntimeError, match="No Time Tagger"):
        vendor_api.createTimeTagger(device.serial)
    device.reconnect()
    with pytest.raises(RuntimeError):
        handle.getTriggerLevel(1)  # old handles stay invalid
    assert vendor_api.createTimeTagger(device.serial).getTriggerLevel(1) == pytest.approx(0.5, abs=0.002)


async def test_count_rates_match_the_simulated_dark_counts() -> None:
    rates_hz = [2e4, 1e4, 5e3]
    source = PoissonDarkCounts(CHANNELS, rate_hz=rates_hz, dead_time_ps=50_000, seed=3)
    sim = vendor_api.SimulatedTimeTagger(vendor_api.new_serial(), CHANNELS, source, vendor_api.AcceleratedClock(speedup=10.0))
    vendor_api.register_device(sim)
    instrument = SwabianTimeTagger("tagger", make_config(sim.serial))
    try:
        await instrument.connect()
        rates = await instrument.count_rates_hz([1, 3], 0.5)
    finally:
        await instrument.close()
        vendor_api.unregister_device(sim.serial)
    for channel, rate in ((1, rates_hz[0]), (3, rates_hz[2])):
        expected = rate / (1 + rate * 50e-9)
        assert abs(rates[channel] - expected) < 5 * np.sqrt(expected * 0.5) / 0.5


async def test_emulator_starter_points_the_driver_at_a_registered_device() -> None:
    config = make_config("", sim_dark_count_rate_hz=1000.0)
    running = start_emulator("swabian.timetagger", config)
    try:
        updated = config.model_copy(update=running.config_updates)
        assert updated.vendor_module == "sim_backends.timetagger.vendor_api"
        instrument = SwabianTimeTagger("tagger", updated)
        await instrument.connect()
        assert (await instrument.snapshot())["serial"] == running.config_updates["serial"]
        await instrument.close()
    finally:
        running.stop()


async def test_missing_vendor_package_is_a_transport_error() -> None:
    instrument = SwabianTimeTagger("tagger", make_config("x", vendor_module="no_such_vendor_module"))
    with pytest.raises(TransportError, match="cannot import"):
        await instrument.connect()
