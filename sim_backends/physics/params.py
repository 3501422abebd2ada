"""Physical parameters of the simulated links as pydantic models (unknown keys are errors).

One scenario TOML under ``configs/scenarios/`` fills one of :class:`TimebinScenario`,
:class:`AtomScenario` or :class:`CVScenario`, chosen by its ``kind``.  Units are in the names.
"""

from __future__ import annotations

import importlib.util
import math
import tomllib
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator


def _scenario_dir() -> Path:
    """configs/scenarios of a source checkout, else the copy installed as the `qkdnode.configs` data package."""
    checkout = Path(__file__).resolve().parents[2] / "configs" / "scenarios"
    if checkout.is_dir():
        return checkout
    spec = importlib.util.find_spec("qkdnode.configs")  # a data lookup by name, no qkdnode code
    if spec is None or not spec.submodule_search_locations:
        return checkout
    return Path(next(iter(spec.submodule_search_locations))) / "scenarios"


SCENARIO_DIR = _scenario_dir()


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ClassicalChannel(_Model):
    """A classical WDM channel sharing the fibre; its spontaneous Raman light is the noise."""

    wavelength_nm: float = Field(gt=0)
    launch_power_dbm: float
    direction: Literal["co", "counter"]
    raman_coefficient_per_km_nm: float | None = Field(default=None, ge=0)


class FibreParams(_Model):
    """Standard single-mode fibre: loss alpha_dB * L; Raman noise from classical channels."""

    length_km: float = Field(ge=0)
    loss_db_per_km: float = Field(ge=0)
    raman_coefficient_per_km_nm: float = Field(default=3e-9, ge=0)
    classical_channels: list[ClassicalChannel] = Field(default_factory=list)


class SourceParams(_Model):
    """Quantum-dot single-photon source under resonant pulsed excitation.

    P_exc = sin^2(theta/2), theta = pi * sqrt(P_laser / P_pi), P_laser = slope * (I - I_th).
    Brightness falls with temperature as the phonon-broadened line (FWHM
    Gamma(T) = Gamma_0 + Gamma_ph / (exp(E_ph / kT) - 1)) leaves the spectral filter:
    transmission (2/pi) arctan(B_filter / Gamma(T)).
    """

    wavelength_nm: float = Field(default=1560.6, gt=0)
    repetition_rate_hz: float = Field(default=75.947e6, gt=0)
    lifetime_ps: float = Field(default=1018.0, gt=0)
    g2_zero: float = Field(default=0.0085, ge=0, le=1)
    mean_photons_pi: float = Field(default=1.473e-3, gt=0, le=1)
    laser_threshold_a: float = Field(default=0.020, ge=0)
    laser_slope_w_per_a: float = Field(default=0.05, gt=0)
    pi_pulse_power_w: float = Field(default=1.0e-3, gt=0)
    reference_temperature_k: float = Field(default=4.0, gt=0)
    linewidth_zero_ghz: float = Field(default=1.0, gt=0)
    phonon_broadening_ghz: float = Field(default=10.0, ge=0)
    phonon_energy_mev: float = Field(default=2.0, gt=0)
    filter_bandwidth_ghz: float = Field(default=10.0, gt=0)

    @property
    def pi_pulse_current_a(self) -> float:
        """Laser current (A) that gives a pi pulse."""
        return self.laser_threshold_a + self.pi_pulse_power_w / self.laser_slope_w_per_a


class EncoderParams(_Model):
    """Three-state time-bin encoding: Z (early/late) with p_z, X(+) otherwise."""

    p_z: float = Field(default=2.0 / 3.0, gt=0, lt=1)
    timebin_separation_ps: int | None = Field(default=None, gt=0)
    intrinsic_z_error: float = Field(default=0.0207, ge=0, le=0.5)


class DetectorParams(_Model):
    """SNSPD: efficiency, dark counts, dead time, Gaussian jitter (FWHM), afterpulsing."""

    efficiency: float = Field(default=0.74, ge=0, le=1)
    dark_count_rate_hz: float = Field(default=100.0, ge=0)
    dead_time_ps: int = Field(default=50_000, ge=0)
    jitter_fwhm_ps: float = Field(default=50.0, ge=0)
    afterpulse_probability: float = Field(default=0.001, ge=0, lt=1)
    afterpulse_time_constant_ps: float = Field(default=100_000.0, gt=0)


class ReceiverParams(_Model):
    """Bob: passive 50:50 basis split, unbalanced interferometer, 3 detectors (Z, X+, X-).

    Phase = offset + drift (random walk + ramp) + 2 pi V_piezo / V_2pi; X outputs split as
    (1 +- V cos phase) / 2.
    """

    internal_transmission: float = Field(default=1.0, gt=0, le=1)
    z_split: float = Field(default=0.5, gt=0, lt=1)
    filter_bandwidth_nm: float = Field(default=0.8, gt=0)
    visibility: float = Field(default=0.897, ge=0, le=1)
    v2pi_v: float = Field(default=10.0, gt=0)
    phase_offset_rad: float = 0.0
    drift_diffusion_rad2_per_s: float = Field(default=1e-3, ge=0)
    drift_ramp_rad_per_s: float = 2e-4
    drift_step_s: float = Field(default=0.1, gt=0)
    window_ps: int = Field(default=1800, gt=0)
    window_offset_ps: int = -300
    sync_divider: int = Field(default=65536, ge=1)
    detector: DetectorParams = Field(default_factory=DetectorParams)


class EveParams(_Model):
    """Eavesdroppers: intercept-resend on a fraction of pulses; beam-splitting on the lossy line."""

    intercept_fraction: float = Field(default=0.0, ge=0, le=1)
    beam_splitting: bool = False


class SecurityParams(_Model):
    eps_sec: float = Field(default=1e-10, gt=0, lt=1)
    eps_cor: float = Field(default=1e-15, gt=0, lt=1)
    block_duration_s: float = Field(default=21600.0, gt=0)
    reconciliation_efficiency: float = Field(default=1.1, ge=1)


class TimebinScenario(_Model):
    """Time-bin BB84 link with a quantum-dot source (qd-timebin-120km)."""

    kind: Literal["timebin"]
    name: str
    description: str = ""
    source: SourceParams = Field(default_factory=SourceParams)
    encoder: EncoderParams = Field(default_factory=EncoderParams)
    fibre: FibreParams
    receiver: ReceiverParams = Field(default_factory=ReceiverParams)
    eve: EveParams = Field(default_factory=EveParams)
    security: SecurityParams = Field(default_factory=SecurityParams)

    @property
    def period_ps(self) -> int:
        """Slot period (ps), the laser clock rounded to a whole picosecond."""
        return int(round(1e12 / self.source.repetition_rate_hz))

    @property
    def timebin_separation_ps(self) -> int:
        """Early-late separation = interferometer delay (ps); default half a period."""
        return self.encoder.timebin_separation_ps or self.period_ps // 2

    @model_validator(mode="after")
    def _windows_fit(self) -> "TimebinScenario":
        if self.receiver.window_ps > self.timebin_separation_ps:
            raise ValueError("receiver.window_ps must not exceed the time-bin separation")
        if 2 * self.timebin_separation_ps > self.period_ps + self.receiver.window_ps:
            raise ValueError("encoder.timebin_separation_ps too large for the repetition period")
        return self


class AtomNodeParams(_Model):
    """One Rb-87 atom in a dipole trap; atom-photon entanglement by weak excitation."""

    loading_probability: float = Field(default=0.125, gt=0, le=1)
    loading_time_s: float = Field(default=0.5, gt=0)
    trap_lifetime_s: float = Field(default=4.0, gt=0)
    fluorescence_rate_hz: float = Field(default=2000.0, ge=0)
    fluorescence_background_hz: float = Field(default=200.0, ge=0)
    excitation_probability: float = Field(default=0.03, gt=0, lt=1)
    collection_efficiency: float = Field(default=0.04, gt=0, le=1)
    conversion_efficiency: float = Field(default=0.47, gt=0, le=1)
    readout_fidelity: float = Field(default=0.985, ge=0.5, le=1)
    memory_coherence_s: float = Field(default=0.3, gt=0)


class StationParams(_Model):
    """Heralding station: single-photon interference on a beam splitter, two SNSPDs."""

    detector_efficiency: float = Field(default=0.8, gt=0, le=1)
    dark_count_rate_hz: float = Field(default=10.0, ge=0)
    gate_ps: int = Field(default=15_000, gt=0)
    tpi_visibility: float = Field(default=0.991, ge=0, le=1)
    phase_noise_rad: float = Field(default=0.28, ge=0)
    phase_offset_rad: float = 0.0


class CHSHSettings(_Model):
    """Measurement angles (rad, equatorial plane). Alice a0,a1; Bob b0,b1 (CHSH) and b_key."""

    alice_rad: tuple[float, float] = (0.0, math.pi / 2)
    bob_rad: tuple[float, float] = (math.pi / 4, -math.pi / 4)
    bob_key_rad: float = 0.0


class AtomScenario(_Model):
    """DI-QKD between two trapped atoms heralded at a middle station (di-atoms-100km)."""

    kind: Literal["atoms"]
    name: str
    description: str = ""
    fibre: FibreParams
    attempt_rate_hz: float = Field(default=5000.0, gt=0)
    node: AtomNodeParams = Field(default_factory=AtomNodeParams)
    station: StationParams = Field(default_factory=StationParams)
    settings: CHSHSettings = Field(default_factory=CHSHSettings)
    key_fraction: float = Field(default=0.5, gt=0, lt=1)
    security: SecurityParams = Field(default_factory=SecurityParams)


class CVParams(_Model):
    """Gaussian-modulated coherent states, heterodyne detection, reverse reconciliation."""

    quantum_wavelength_nm: float = Field(default=1550.0, gt=0)
    symbol_rate_hz: float = Field(default=100e6, gt=0)
    modulation_variance_snu: float = Field(default=4.0, gt=0)
    detector_efficiency: float = Field(default=0.7, gt=0, le=1)
    electronic_noise_snu: float = Field(default=0.1, ge=0)
    reconciliation_efficiency: float = Field(default=0.95, gt=0, le=1)
    intrinsic_excess_noise_snu: float = Field(default=0.01, ge=0)


class CVScenario(_Model):
    """CV-QKD beside classical WDM traffic (cv-coexistence-120km); analytic only."""

    kind: Literal["cv"]
    name: str
    description: str = ""
    fibre: FibreParams
    cv: CVParams = Field(default_factory=CVParams)


Scenario = Annotated[Union[TimebinScenario, AtomScenario, CVScenario], Field(discriminator="kind")]
_ADAPTER: TypeAdapter[TimebinScenario | AtomScenario | CVScenario] = TypeAdapter(Scenario)


def scenario_path(name_or_path: str | Path) -> Path:
    """A scenario name (``qd-timebin-120km``) resolves to ``configs/scenarios/NAME.toml``."""
    p = Path(name_or_path)
    if p.suffix == ".toml":
        return p
    return SCENARIO_DIR / f"{name_or_path}.toml"


def parse_scenario(data: dict) -> TimebinScenario | AtomScenario | CVScenario:
    """Validate a scenario mapping (raises pydantic.ValidationError)."""
    return _ADAPTER.validate_python(data)


def load_scenario(name_or_path: str | Path) -> TimebinScenario | AtomScenario | CVScenario:
    """Read and validate a scenario TOML (OSError, tomllib.TOMLDecodeError, ValidationError)."""
    with open(scenario_path(name_or_path), "rb") as fh:
        return parse_scenario(tomllib.load(fh))
