"""Measured time: devices and dtypes, the device lock and the Lab gate, latency, batch sweeps.

devices  where a run can go and in which number format; torch's default thread count, read once
gate     the process-wide device lock and the pause it imposes on Lab training
passes   the budget clock, warm-up, one timed pass, the sample loop and its spread
core     one run's settings checked once, the private device copy, how a failed pass reads
memory   will a CPU run fit; the CUDA peak of one pass
results  LatencyResult, SweepResult, ProfileResult: what the CLI and the app render
measure  measure_latency
sweep    latency and throughput across batch sizes
profile  where the time goes: per-layer times of the same model, checked against the whole
"""
from explorer.errors import LatencyError
from explorer.timing.core import TimingSettings
from explorer.timing.devices import (
    DEVICES, DTYPES, available_devices, default_threads, device_label, resolve_device,
)
from explorer.timing.gate import (
    GateWait, begin_training_step, device_lock, end_training_step, exclusive_measurement,
)
from explorer.timing.measure import measure_latency
from explorer.timing.memory import measure_cuda_peak
from explorer.timing.passes import NOISY_IQR, MeasurementCancelled
from explorer.timing.profile import profile_latency
from explorer.timing.results import (
    PROFILE_TOP, STOP_TEXT, LatencyResult, ProfileResult, ProfileRow, SkippedBatch, StageTime, StopReason,
    SweepResult, SweepRow, stage_shares,
)
from explorer.timing.sweep import batch_sweep

__all__ = [
    "DEVICES", "DTYPES", "NOISY_IQR", "PROFILE_TOP", "STOP_TEXT", "GateWait", "LatencyError", "LatencyResult",
    "MeasurementCancelled", "ProfileResult", "ProfileRow", "SkippedBatch", "StageTime", "StopReason",
    "SweepResult", "SweepRow", "TimingSettings",
    "available_devices", "batch_sweep", "begin_training_step", "default_threads", "device_label", "device_lock",
    "end_training_step", "exclusive_measurement", "measure_cuda_peak", "measure_latency",
    "profile_latency", "resolve_device", "stage_shares",
]
