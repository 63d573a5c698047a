"""Where a measurement can run and in which number format: devices, dtypes, labels, free memory."""
from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from explorer.errors import ConfigError
from explorer.vocab import DTYPE_BYTES

DEVICES = ("auto", "cpu", "cuda")    # accepted device names; "cuda:N" picks a GPU by index


@dataclass(frozen=True)
class DtypeInfo:
    """One number format a measurement can run in."""

    torch_dtype: torch.dtype
    on_cpu: bool        # runs on the CPU (every one runs on CUDA, bf16 where the GPU has it)


# The number formats of the shared vocabulary (vocab.DTYPE_BYTES), as torch runs them.
_TORCH_DTYPES = {"fp32": DtypeInfo(torch.float32, on_cpu=True), "bf16": DtypeInfo(torch.bfloat16, on_cpu=True),
                 "fp16": DtypeInfo(torch.float16, on_cpu=False)}
DTYPE_INFO: dict[str, DtypeInfo] = {name: _TORCH_DTYPES[name] for name in DTYPE_BYTES}
DTYPES = {name: info.torch_dtype for name, info in DTYPE_INFO.items()}    # name -> torch dtype


@lru_cache(maxsize=1)
def default_threads() -> int:
    """Torch's own CPU thread count in this process, read once: a measurement "at torch's
    default" runs at this count and says so, whatever the count is set to later."""
    return torch.get_num_threads()


# Read when the timing package is first imported, which happens before any training can change
# the count (the Lab imports the timing gate before it trains).
default_threads()


def available_devices() -> list[str]:
    """Devices this process can time on, best first: "cuda" (and "cuda:N" beyond the first), "cpu"."""
    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
        devices += [f"cuda:{i}" for i in range(1, torch.cuda.device_count())]
    devices.append("cpu")
    return devices


def resolve_device(device: str) -> torch.device:
    """`auto` -> CUDA when present, else CPU; raises ConfigError for a device that is not here."""
    if not isinstance(device, str):
        raise ConfigError("device", device, "one of " + ", ".join(DEVICES))
    if device == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError("device", device, "auto or cpu: no CUDA GPU is visible to torch here")
        index = device.partition(":")[2]
        if not index:
            return torch.device("cuda", torch.cuda.current_device())
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise ConfigError("device", device, "one of " + ", ".join(available_devices()))
        return torch.device("cuda", int(index))
    raise ConfigError("device", device, "one of " + ", ".join(DEVICES))


def check_dtype(dtype: Any, dev: torch.device) -> None:
    """ConfigError unless `dtype` is a format `dev` runs."""
    info = DTYPE_INFO.get(dtype) if isinstance(dtype, str) else None
    if info is None:
        raise ConfigError("dtype", dtype, "one of " + ", ".join(DTYPE_INFO))
    if dev.type == "cpu" and not info.on_cpu:
        runs = " or ".join(name for name, i in DTYPE_INFO.items() if i.on_cpu)
        raise ConfigError("dtype", dtype, f"{runs} on the CPU", f"{dtype} needs a CUDA GPU")
    if dev.type == "cuda" and dtype == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("dtype", dtype, "fp32 or fp16 on this GPU", "it has no bf16 support")


def cpu_model_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def short_cpu_name(name: str) -> str:
    """A CPU model name without trademarks, clock and filler: "Intel(R) Xeon(R) Processor" -> "Intel Xeon"."""
    name = re.sub(r"\((R|TM|C)\)|\bCPU\b|\bProcessor\b|\d+-Core|@.*$", " ", name, flags=re.IGNORECASE)
    return " ".join(name.split()) or "unknown model"


def device_label(device: str | torch.device, threads: int | None = None) -> str:
    """Human label that starts with the kind of device: "CUDA: NVIDIA H100 80GB HBM3, 79.1 GiB" or
    "CPU (Intel Xeon, 2 threads)" (threads None: torch's default count)."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"CUDA: {props.name}, {props.total_memory / 2**30:.1f} GiB"
    n = threads if threads is not None else default_threads()
    return f"CPU ({short_cpu_name(cpu_model_name())}, {n} thread{'s' if n != 1 else ''})"


def cpu_has_native_bf16() -> bool:
    """Whether /proc/cpuinfo lists a bf16 instruction set (True when it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 16)
    except OSError:
        return True  # unknown: do not warn
    return any(flag in text for flag in ("avx512_bf16", "amx_bf16", " bf16"))


def free_memory_bytes(dev: torch.device) -> int | None:
    """Memory free for activations on `dev` (None when unknown)."""
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return free
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
