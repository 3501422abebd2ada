"""`[bb84]` section: how the time-bin BB84 roles run and calibrate. Times in simulated seconds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TimebinSettings(BaseModel):
    """Device names, frame length and calibration parameters of a time-bin BB84 node."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    laser: str = Field("laser", description="Alice: excitation laser device")
    cryostat: str = Field("cryostat", description="Alice: cryostat temperature controller device")
    tagger: str = Field("tagger", description="Bob: time tagger device")
    piezo: str = Field("piezo", description="Bob: interferometer piezo device")
    cryostat_setpoint_k: float = Field(4.5, gt=0, le=300)
    cryostat_tolerance_k: float = Field(0.2, gt=0)
    cryostat_settle_timeout_s: float = Field(600, gt=0, description="wait at most this long (s) for a stable cryostat")
    source_check_interval_s: float = Field(0.5, gt=0, le=600, description="Alice: check the cryostat and the peer this often while running (s)")
    pi_pulse_points: int = Field(15, ge=5, le=200)
    pi_pulse_window_s: float = Field(2.0, gt=0, description="count-rate window per sweep point (s)")
    window_calibration_tags: int = Field(4000, ge=200, description="Z-detector tags used to place the detection windows")
    delay_search_slots: int = Field(64, ge=1, le=5000, description="search slot offsets in [-N, N]")
    delay_probe_detections: int = Field(1500, ge=100, description="Z detections disclosed for the delay search")
    max_qber_x: float = Field(
        0.15, gt=0, lt=0.5,
        description="X-basis error at the lock point above which no key is possible: the node goes to SECURITY_ABORT",
    )
    max_qber_z: float = Field(0.15, gt=0, lt=0.5, description="Z-basis error at the found delay above which no key is possible")
    security_window_events: int = Field(
        1000, ge=100, description="X-basis events over which max_qber_x is judged while running (above it: relock)"
    )
