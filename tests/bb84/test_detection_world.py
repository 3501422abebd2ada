"""End to end: the physics world's receiver -> simulated Swabian tagger -> real adapter -> detections."""

from __future__ import annotations

import numpy as np

from drivers.swabian.time_tagger import SimTimeTaggerConfig, SwabianTimeTagger
from qkdnode.bb84 import BASIS_X, BASIS_Z, DetectionConfig, DetectionProcessor
from sim_backends.physics.clock import ManualClock
from sim_backends.physics.params import load_scenario
from sim_backends.physics.world import TimebinWorld
from sim_backends.timetagger import vendor_api

CHANNELS = [1, 2, 3, 4]  # tagger inputs wired to Z, X+, X-, sync


async def test_world_tags_decode_to_alices_states_with_the_scenarios_error_rates() -> None:
    scenario = load_scenario("qd-timebin-120km")
    scenario = scenario.model_copy(update={"fibre": scenario.fibre.model_copy(update={"length_km": 10.0})})
    clock = ManualClock(0.0)
    world = TimebinWorld(scenario, seed=3, clock=clock)
    device = vendor_api.SimulatedTimeTagger(vendor_api.new_serial(), CHANNELS, world.tag_source(CHANNELS), clock)
    vendor_api.register_device(device)
    config = SimTimeTaggerConfig(
        driver="sim.timetagger",
        serial=device.serial,
        block_period_s=1e-6,
        channels=[{"channel": c, "trigger_level_v": 0.2, "dead_time_ps": 2000} for c in CHANNELS],
    )
    tagger = SwabianTimeTagger("tagger", config)
    processor = DetectionProcessor(
        DetectionConfig(
            period_ps=float(scenario.period_ps),
            timebin_separation_ps=float(scenario.timebin_separation_ps),
            window_ps=float(scenario.receiver.window_ps),
            window_start_ps=float(scenario.receiver.window_offset_ps),
            sync_channel=4,
            sync_divider=scenario.receiver.sync_divider,
            frame_slots=1 << 16,
        )
    )
    slots, bases, values = [], [], []
    try:
        await tagger.connect()
        await tagger.start_stream(CHANNELS)
        for _ in range(6):
            clock.advance(0.05)
            batch = processor.process(await tagger.read_block())
            slots.append(batch.slot)
            bases.append(batch.basis)
            values.append(batch.value)
    finally:
        await tagger.close()
        vendor_api.unregister_device(device.serial)
    slot = np.concatenate(slots)
    basis = np.concatenate(bases)
    value = np.concatenate(values)
    assert slot.size > 5000
    alice_basis, alice_value = world.alice.choices(slot)
    zz = (basis == BASIS_Z) & (alice_basis == BASIS_Z)
    xx = (basis == BASIS_X) & (alice_basis == BASIS_X)
    qber_z = float(np.mean(value[zz] != alice_value[zz]))
    qber_x = float(np.mean(value[xx] != 0))  # Alice's X state is |+>: Bob's X- detector is an error
    # intrinsic time-bin overlap 2.07 %; visibility 0.897 at the lock point: (1 - V) / 2 = 5.2 %
    assert abs(qber_z - scenario.encoder.intrinsic_z_error) < 0.015
    assert abs(qber_x - (1 - scenario.receiver.visibility) / 2) < 0.03
    # Alice sends Z with probability 2/3, Bob splits 50:50; the Z detector's share follows
    assert abs(np.mean(basis == BASIS_Z) - 0.5 / (0.5 + 0.5 * 0.5)) < 0.05
