"""Starts the servers `assistant up` manages as child processes, waits for their health checks, and
stops them all (whole process groups, so no grandchild is orphaned) on exit, Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from assistant.contracts import AssistantError, ServiceSpec

PR_SET_PDEATHSIG = 1
__all__ = ["ServiceSpec"]


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python_in(env: Path | None) -> Path:
    """The Python of a virtual environment (None: this process's own); raises ServiceFailed when it is missing."""
    python = env / "bin" / "python" if env else Path(sys.executable)
    if not python.exists():
        raise ServiceFailed(f"no Python at {python}: run scripts/setup.sh (it builds the environments)")
    return python


def _ready(spec: ServiceSpec, response: httpx.Response) -> bool:
    return spec.ready(response) if spec.ready is not None else response.status_code == 200


class ServiceFailed(AssistantError):
    pass


def die_with_parent() -> None:
    """In the child: get SIGTERM if `assistant up` itself dies, even by SIGKILL."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Finished:
    returncode: int
    last_lines: list[str]


def run_tool(
    command: list[str], env: dict[str, str], on_line: Callable[[str], None], cwd: Path | None = None
) -> Finished:
    """Run a training tool to its end (killed with us), handing each output line to ``on_line`` (carriage
    returns split progress bars into lines); returns its exit code and the last 30 lines, for the error."""
    last: deque[str] = deque(maxlen=30)
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        preexec_fn=die_with_parent,  # a killed retrain leaves no training behind
    )
    assert process.stdout is not None
    for line in _lines(process.stdout):
        last.append(line)
        on_line(line)
    process.wait()
    return Finished(process.returncode, list(last))


def _lines(stream: Iterator[str]) -> Iterator[str]:
    for raw in stream:
        yield from (line for line in raw.replace("\r", "\n").splitlines() if line.strip())


@dataclass
class Running:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    log_path: Path


class Supervisor:
    def __init__(self, log_dir: Path, console: Console | None = None) -> None:
        self.log_dir = log_dir
        self.console = console or Console()
        self.running: list[Running] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, spec: ServiceSpec) -> Running:
        log_path = self.log_dir / f"{spec.name}.log"
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                spec.command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=spec.cwd,
                env={**os.environ, **spec.env},
                start_new_session=True,  # its own process group: stopping it stops its children too
                preexec_fn=die_with_parent,
            )
        running = Running(spec, process, log_path)
        self.running.append(running)
        return running

    def wait_healthy(self, services: list[Running]) -> None:
        """Poll every service's health check until all pass; fail fast if one exits or times out."""
        started = time.monotonic()
        pending = list(services)
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with (
            Progress(*columns, console=self.console, transient=True) as progress,
            httpx.Client(timeout=2.0) as http,
        ):
            tasks = {r.spec.name: progress.add_task(f"starting {r.spec.name}") for r in pending}
            while pending:
                for service in list(pending):
                    spec = service.spec
                    if service.process.poll() is not None:
                        raise ServiceFailed(
                            f"{spec.name} exited with code {service.process.returncode} while starting; "
                            f"last lines of {service.log_path}:\n{tail(service.log_path)}"
                        )
                    if time.monotonic() - started > spec.startup_timeout_s:
                        raise ServiceFailed(
                            f"{spec.name} was not healthy at {spec.health_url.split('?')[0]} after "
                            f"{spec.startup_timeout_s:.0f} s; see {service.log_path}"
                        )
                    try:
                        healthy = _ready(spec, http.get(spec.health_url))
                    except httpx.HTTPError:
                        healthy = False
                    if healthy:
                        pending.remove(service)
                        progress.update(tasks[spec.name], description=f"{spec.name} is up")
                        self.console.print(f"[green]✔[/] {spec.name} healthy after {time.monotonic() - started:.0f} s")
                time.sleep(0.5)

    def first_exited(self) -> Running | None:
        return next((r for r in self.running if r.process.poll() is not None), None)

    def restart(self, service: Running) -> Running:
        """Start a service that exited again, in its old place (the app keeps serving meanwhile,
        with its documented fallbacks)."""
        _signal_group(service.process, signal.SIGKILL)  # whatever its children left behind
        service.process.wait()  # reap it: no zombie left in the process table
        index = self.running.index(service)
        self.running.remove(service)
        replacement = self.start(service.spec)
        self.running.remove(replacement)
        self.running.insert(index, replacement)
        return replacement

    def write_state(self, path: Path) -> None:
        """Record the pids of the running services (read by tests and operators)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {r.spec.name: {"pid": r.process.pid, "log": str(r.log_path)} for r in self.running}
        path.write_text(json.dumps(state, indent=2))

    def stop_all(self, grace_s: float = 15.0) -> None:
        """SIGTERM each process group (last started first), then SIGKILL what is left after the grace."""
        for service in reversed(self.running):
            _signal_group(service.process, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for service in reversed(self.running):
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(service.process, signal.SIGKILL)  # also reaps grandchildren left in the group
            service.process.wait()
        self.running.clear()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def cache_root() -> Path:
    """setup.sh's cache (environments, models, trained starter adapters and bot models): ``ASSISTANT_CACHE``,
    else ``~/.cache/assistant``. Shared by every clone and database on the machine."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assistant"
    return Path(os.environ.get("ASSISTANT_CACHE", default))
