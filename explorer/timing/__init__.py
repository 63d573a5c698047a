"""Measured time: devices and dtypes, the device lock and the Lab gate, latency, batch sweeps.

devices  where a run can go and in which number format (one table of dtypes)
gate     the process-wide device lock and the pause it imposes on Lab training
passes   the budget clock and the loop that times individual passes
memory   will a CPU run fit; the CUDA peak of one pass
measure  measure_latency and its result
sweep    latency and throughput across batch sizes
profile  where the time goes: per-layer times of the same model, checked against the whole
"""
from explorer.errors import LatencyError
from explorer.timing.devices import DEVICES, DTYPES, available_devices, device_label, resolve_device
from explorer.timing.gate import (
    GateWait, begin_training_step, device_lock, end_training_step, exclusive_measurement,
)
from explorer.timing.measure import LatencyResult, measure_latency
from explorer.timing.memory import measure_cuda_peak
from explorer.timing.passes import MeasurementCancelled
from explorer.timing.profile import ProfileResult, ProfileRow, profile_latency, stage_shares
from explorer.timing.sweep import SweepResult, batch_sweep, sweep_row

__all__ = [
    "DEVICES", "DTYPES", "GateWait", "LatencyError", "LatencyResult", "MeasurementCancelled", "ProfileResult",
    "ProfileRow", "SweepResult",
    "available_devices", "batch_sweep", "begin_training_step", "device_label", "device_lock",
    "end_training_step", "exclusive_measurement", "measure_cuda_peak", "measure_latency",
    "profile_latency", "resolve_device", "stage_shares", "sweep_row",
]
