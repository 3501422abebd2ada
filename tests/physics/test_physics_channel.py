"""The quantum channel between processes carries exactly the photons an in-process link would."""

import numpy as np
import zmq

from sim_backends.physics import AliceSide, BobSide, ManualClock, TimebinWorld
from sim_backends.physics.channel import ChannelReceiver, ChannelSender
from sim_backends.physics.timebin import PHOTON_DTYPE

from physics_helpers import timebin_scenario


def test_bob_behind_a_zeromq_channel_sees_the_same_tags_as_in_one_process():
    sc = timebin_scenario(fibre={"length_km": 25})
    ctx = zmq.Context()
    try:
        alice_clock, bob_clock = ManualClock(), ManualClock()
        alice = AliceSide(sc, seed=21, clock=alice_clock)
        sender = ChannelSender(alice.emitter, "inproc://qchan", alice_clock, context=ctx)
        receiver = ChannelReceiver("inproc://qchan", timeout_s=2.0, context=ctx)
        bob = BobSide(sc, seed=21, clock=bob_clock, photon_source=receiver)
        local = TimebinWorld(sc, seed=21, clock=ManualClock())
        for step in range(1, 6):
            alice_clock.set(step * 0.07)   # Alice's process pumps on its own schedule
            sender.pump(max_slots=1 << 21)
            t0, t1 = (step - 1) * 7 * 10**10, step * 7 * 10**10
            remote_ts, remote_ch = bob.tags(t0, t1)
            local_ts, local_ch = local.bob.tags(t0, t1)
            assert np.array_equal(remote_ts, local_ts) and np.array_equal(remote_ch, local_ch)
        assert remote_ts.size > 1000
        sender.close()
        receiver.close()
    finally:
        ctx.destroy(linger=0)


def test_photon_records_carry_only_slot_state_and_emission_delay():
    assert PHOTON_DTYPE.names == ("slot", "state", "delay_ps")
    assert PHOTON_DTYPE.itemsize == 13


def test_receiver_times_out_when_alice_has_not_sent_the_slots_yet():
    ctx = zmq.Context()
    try:
        receiver = ChannelReceiver("inproc://silent", timeout_s=0.05, context=ctx, bind=True)
        try:
            receiver.photons(0, 1000)
        except TimeoutError as exc:
            assert "1000" in str(exc)
        else:
            raise AssertionError("expected a timeout")
        receiver.close()
    finally:
        ctx.destroy(linger=0)


def test_tag_source_maps_the_detectors_onto_the_taggers_inputs():
    sc = timebin_scenario(fibre={"length_km": 10})
    world = TimebinWorld(sc, seed=3, clock=ManualClock())
    twin = TimebinWorld(sc, seed=3, clock=ManualClock())
    source = world.tag_source([5, 6, 7])
    ts, ch = source.tags_between(0, 10**11)
    ref_ts, ref_ch = twin.bob.tags(0, 10**11)
    assert set(np.unique(ch)) == {5, 6, 7}
    keep = ref_ch > 0  # sync is not wired when only three inputs are listed
    assert np.array_equal(ts, ref_ts[keep]) and np.array_equal(ch, ref_ch[keep] + 4)
    assert world.clock() == world.clock.now_s()


async def test_sender_task_keeps_the_channel_filled_while_the_clock_runs():
    import asyncio

    from qkdnode.clock import WallClock

    sc = timebin_scenario(fibre={"length_km": 50})
    ctx = zmq.Context()
    try:
        clock = WallClock(speed=100.0)
        alice = AliceSide(sc, seed=2, clock=clock)
        sender = ChannelSender(alice.emitter, "inproc://qrun", clock, context=ctx)
        receiver = ChannelReceiver("inproc://qrun", timeout_s=2.0, context=ctx)
        bob = BobSide(sc, seed=2, clock=clock, photon_source=receiver)
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(stop, period_s=0.5))
        await asyncio.sleep(0.05)  # 5 simulated seconds
        end = clock.now_ps() - 10**12
        ts, ch = await asyncio.to_thread(bob.tags, 0, end)
        stop.set()
        await task
        assert (ch == 1).sum() > 1000 and ts.max() < end
        sender.close()
        receiver.close()
    finally:
        ctx.destroy(linger=0)


def test_build_world_picks_the_world_for_the_scenario_kind():
    from sim_backends.physics import AtomWorld, build_world

    assert isinstance(build_world("qd-timebin-120km", 1, ManualClock()), TimebinWorld)
    assert isinstance(build_world("di-atoms-100km", 1, ManualClock()), AtomWorld)
    try:
        build_world("cv-coexistence-120km", 1, ManualClock())
    except ValueError as exc:
        assert "analytic" in str(exc)
    else:
        raise AssertionError("CV has no simulated world")


def test_settings_history_stays_short_in_long_runs():
    sc = timebin_scenario(fibre={"length_km": 100})
    world = TimebinWorld(sc, seed=1, clock=ManualClock())
    for step in range(2000):
        world.clock.set(step * 0.1)
        world.bob.set_piezo_voltage(step % 7)
        world.alice.set_laser_current(0.04 + 1e-6 * step)
        if step % 10 == 9:
            world.bob.read_until_now()
    assert len(world.bob.interferometer._piezo_v) < 20
    assert len(world.alice.source._current_a) < 200


def test_a_restarted_alice_resumes_at_now_and_the_missed_slots_are_dark():
    sc = timebin_scenario(fibre={"length_km": 5})
    ctx = zmq.Context()
    try:
        clock = ManualClock()
        receiver = ChannelReceiver("inproc://restart", timeout_s=2.0, context=ctx, bind=True)
        first = ChannelSender(AliceSide(sc, 1, clock).emitter, "inproc://restart", clock, context=ctx, bind=False)
        clock.set(0.01)
        first.pump()
        first.close()
        clock.set(0.05)  # Alice's process is down from 0.01 s to 0.05 s
        second = ChannelSender(AliceSide(sc, 1, clock).emitter, "inproc://restart", clock, context=ctx, bind=False)
        clock.set(0.08)
        second.pump()
        period = sc.period_ps
        photons = receiver.photons(0, int(0.08e12) // period)
        t = photons["slot"] * period
        assert ((t > 0.011e12) & (t < 0.049e12)).sum() == 0
        assert (t < 0.01e12).sum() > 100 and (t > 0.05e12).sum() > 100
        second.close()
        receiver.close()
    finally:
        ctx.destroy(linger=0)


def test_a_silent_channel_can_count_as_dark_instead_of_failing():
    ctx = zmq.Context()
    try:
        receiver = ChannelReceiver("inproc://dark", timeout_s=0.05, context=ctx, bind=True, dark_when_silent=True)
        assert receiver.photons(0, 1000).size == 0 and receiver.silent_slots == 1000
        receiver.close()
    finally:
        ctx.destroy(linger=0)
