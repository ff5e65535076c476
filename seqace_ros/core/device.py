"""Torch device selection: CUDA when present, CPU otherwise."""

from __future__ import annotations

import torch

from seqace_ros.core.errors import SeqaceError


class DeviceError(SeqaceError, ValueError):
    """A torch device that does not exist or is not available on this machine."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else CPU; anything else is checked and passed to
    torch.

    Raises:
        DeviceError: an unknown device name, or CUDA asked for where torch has none.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise DeviceError(f"unknown torch device {device!r} ({error})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} asked for, but torch sees no CUDA device here; "
                          "use cpu or auto")
    return resolved
