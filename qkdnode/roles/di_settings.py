"""`[di]` section: how the DI-QKD heralding station and atom nodes run and calibrate.

Times of the atom nodes' checks are simulated/lab seconds on the link clock; angles in rad
(equatorial plane of the atomic qubit); probabilities dimensionless.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qkdnode.channel import ChannelConfig
from qkdnode.control_loops.phase_lock import PhaseLockSettings
from qkdnode.di.chsh import win_from_s
from qkdnode.di.eat import EatParameters


class StationSettings(BaseModel):
    """Heralding station: tagger channels, attempt grid and the interferometer lock."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tagger: str = Field("tagger", description="time tagger device")
    piezo: str = Field("piezo", description="piezo controller of the station interferometer's fibre stretcher")
    piezo_channel: str = Field("x", description="piezo channel driving the stretcher")
    herald_channels: tuple[int, int] = Field((1, 2), description="tagger inputs of the psi+ and psi- detectors")
    reference_channels: tuple[int, int] = Field((3, 4), description="tagger inputs of the reference light's dark and bright ports")
    attempt_rate_hz: float = Field(5000.0, gt=0, description="excitation attempts per second (sets the herald grid)")
    attempt_offset_ps: int = Field(0, description="time of attempt 0 on the tagger axis (ps)")
    gate_ps: int = Field(15_000, gt=0, description="clicks further than this from an attempt do not herald (ps)")
    v2pi_guess_v: float = Field(10.0, gt=0, description="fibre-stretcher voltage per 2 pi (V), a start for the fringe fit")
    scan_span_v: float = Field(15.0, gt=0, description="voltage span of the fringe scan (V)")
    scan_points: int = Field(24, ge=8, le=200)
    max_reference_error: float = Field(0.04, gt=0, lt=0.5, description="a block whose reference dark-port share exceeds this does not count")
    phase_lock: PhaseLockSettings = Field(default_factory=lambda: PhaseLockSettings(events_per_step=200, dither_rad=0.1))


class AtomNodeSettings(BaseModel):
    """Atom node: trap lasers, loading, fluorescence threshold, excitation and settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trap: str = Field("trap", description="atom-trap device (AtomTrapLasers)")
    cooling_detuning_mhz: float = Field(-12.0, description="cooling laser detuning from the cycling transition (MHz)")
    repump_detuning_mhz: float = Field(0.0, description="repump laser detuning (MHz)")
    trap_depth_mk: float = Field(1.0, gt=0, le=5, description="dipole-trap depth (mK)")
    fluorescence_window_s: float = Field(0.02, gt=0, le=1, description="photon-counting window of one atom check (s)")
    threshold_sigma: float = Field(5.0, gt=0, description="an atom must lift the counts this many background sigmas")
    background_windows: int = Field(20, ge=3, description="windows with the trap off to learn the background")
    loading_timeout_s: float = Field(120.0, gt=0, description="give up a load after this long (wall s)")
    check_interval_s: float = Field(0.05, gt=0, description="wall seconds between atom checks while running")
    lock_check_every: int = Field(20, ge=1, description="check the laser locks every N atom checks")
    excitation_rate_hz: float = Field(5000.0, gt=0, description="excitation attempts per second (Hz)")
    alice_rad: tuple[float, float] = (0.0, math.pi / 2)
    bob_rad: tuple[float, float, float] = Field((math.pi / 4, -math.pi / 4, 0.0), description="b0, b1 (test) and b_key")
    sift_timeout_s: float = Field(30.0, gt=0, description="wait at most this long (wall s) for the peer during sifting")


class ProtocolSettings(BaseModel):
    """Key and test rounds, the CHSH abort threshold and the security parameters of the EAT bound."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    test_probability: float = Field(0.1, gt=0, lt=1, description="Bob tests (y in {0,1}) with this probability")
    expected_s: float = Field(2.45, gt=2, le=2 * math.sqrt(2), description="CHSH S the link is expected to reach")
    s_tolerance: float = Field(0.05, gt=0, description="abort below S = expected_s - s_tolerance")
    block_rounds: int = Field(1_000_000, ge=100, description="kept rounds per key block")
    qber_estimate: float = Field(0.07, ge=0, lt=0.5, description="QBER used for the key length shown in status (the worker uses the measured one)")
    noisy_preprocessing_flip: float = Field(0.0, ge=0, lt=0.5, description="Alice flips each key bit with this probability before distillation (Ho et al. 2020); 0 = off")
    confidence: float = Field(0.99, gt=0.5, lt=1, description="one-sided confidence of the reported S lower bound")
    eps_smooth: float = Field(1e-10, gt=0, lt=1)
    eps_eat: float = Field(1e-10, gt=0, lt=1)
    eps_pa: float = Field(1e-10, gt=0, lt=1)
    eps_cor: float = Field(1e-15, gt=0, lt=1)
    ec_efficiency: float = Field(1.1, ge=1)

    @model_validator(mode="after")
    def _threshold_above_classical(self) -> ProtocolSettings:
        if self.expected_s - self.s_tolerance <= 2:
            raise ValueError("expected_s - s_tolerance must exceed 2, or no key could ever come out")
        return self

    @property
    def omega_threshold(self) -> float:
        return win_from_s(self.expected_s - self.s_tolerance)

    @property
    def eat(self) -> EatParameters:
        return EatParameters(self.eps_smooth, self.eps_eat, self.eps_pa, self.eps_cor, self.ec_efficiency)


CHANNELS = {"station": {"alice", "bob"}, "alice": {"station", "peer"}, "bob": {"station", "peer"}}


class DiSettings(BaseModel):
    """The `[di]` section of a charlie, alice or bob node config.

    `channels` names this node's authenticated links: the station has `alice` and `bob`; an
    atom node has `station` (to charlie) and `peer` (alice <-> bob, for sifting). Each is a
    full `ChannelConfig` (`[di.channels.NAME]`); empty when the caller supplies the channels.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["station", "alice", "bob"]
    station: StationSettings = Field(default_factory=StationSettings)
    node: AtomNodeSettings = Field(default_factory=AtomNodeSettings)
    protocol: ProtocolSettings = Field(default_factory=ProtocolSettings)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    time_axis_epoch_unix_s: float | None = Field(
        None, gt=0,
        description="lab atom nodes: Unix time (s) of t = 0 on the station tagger's time axis (the tagger started on, "
        "or disciplined to, the link's shared reference: White Rabbit / PPS); the node's clock counts from it so "
        "herald times and atom checks compare. A simulated link takes [simulation] epoch_unix_s instead",
    )

    @model_validator(mode="after")
    def _channel_names(self) -> DiSettings:
        if self.channels and set(self.channels) != CHANNELS[self.role]:
            raise ValueError(f"channels of a {self.role} are {sorted(CHANNELS[self.role])}, got {sorted(self.channels)}")
        return self
