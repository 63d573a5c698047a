"""Measured time: devices and dtypes, the device lock and the Lab gate, latency, batch sweeps."""
from explorer.errors import LatencyError
from explorer.timing.latency import (
    DEVICES, DTYPES, LatencyResult, MeasurementCancelled, SweepResult, available_devices, batch_sweep,
    begin_training_step, device_label, device_lock, end_training_step, exclusive_measurement,
    measure_cuda_peak, measure_latency, resolve_device, sweep_row,
)

__all__ = [
    "DEVICES", "DTYPES", "LatencyError", "LatencyResult", "MeasurementCancelled", "SweepResult",
    "available_devices", "batch_sweep", "begin_training_step", "device_label", "device_lock",
    "end_training_step", "exclusive_measurement", "measure_cuda_peak", "measure_latency",
    "resolve_device", "sweep_row",
]
