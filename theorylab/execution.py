"""How theorylab starts Jupyter kernels (for ``reproduce`` and the grader)."""

from __future__ import annotations

import os
import uuid

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import CaselessStrEnum


class IpcKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels talk over Unix sockets (IPC) instead of TCP ports: nothing listens
    on the machine's network, and ipykernel has no unencrypted-TCP warning to print.

    The sockets get an absolute path in Jupyter's runtime folder: jupyter_client's default is relative
    (``kernel-ipc``), which breaks as soon as the kernel runs in another working folder than ours.
    """

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    def _ip_default(self) -> str:
        folder = jupyter_runtime_dir()
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, f"theorylab-{uuid.uuid4().hex[:12]}-ipc")
