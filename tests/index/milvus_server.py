"""A real Milvus standalone server (the `milvus` package on PyPI) on 127.0.0.1, for the Milvus store tests.

The package ships the Milvus 2.3 standalone binary (embedded etcd, RocksMQ, local storage) and writes its
config from a template. We use it only for that: the binary is started and stopped here, so a test can kill
it and start it again on the same data and ports (the package's own `MilvusServer` re-checks its ports with a
plain bind, which fails while the killed server's sockets linger in TIME_WAIT).
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

_COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode", "dataCoord", "dataNode")
START_TIMEOUT_S = 120.0


def _unpacked_binaries(unpack: Callable[[str], None]) -> Path:
    """The server binary and its libraries (250 MB unpacked), unpacked once per version into the user's cache
    rather than into every test run's temporary folder."""
    from milvus import __version__

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vitr-tests" / f"milvus-{__version__}"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:  # two test runs at once: one unpacks, the other waits
        fcntl.flock(lock, fcntl.LOCK_EX)
        unpack(str(cache))  # skips files whose checksum matches what is there
    return cache / "bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MilvusServerProcess:
    """One Milvus standalone process over `data_dir`, its gRPC API at `uri` (http://127.0.0.1:PORT)."""

    def __init__(self, data_dir: Path) -> None:
        from milvus import MilvusServerConfig, _initialize_data_files  # the `milvus` package (server binaries)

        self.data_dir = Path(data_dir)
        config = MilvusServerConfig(data_dir=str(self.data_dir))
        for key in list(config.configurable_items):
            if key.endswith("_port"):  # free ports, so parallel runs on one machine never collide
                config.set(key, _free_port())
        for component in _COMPONENTS:  # every component registers and is reached on the loopback address
            config.set(f"{component}.ip", "127.0.0.1")
        # a killed server's sessions expire after this many seconds; only then does the restarted one load the
        # collections again (30 s by default: most of a restart's time)
        config.set("common.session.ttl", 5)
        config.resolve_storage()
        config.write_config()
        self._bind_embedded_etcd(config)
        self.bin_dir = _unpacked_binaries(_initialize_data_files)
        self.port = int(config.get("proxy_port"))
        self.metrics_port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def _bind_embedded_etcd(self, config: object) -> None:
        """The template leaves the embedded etcd on its default ports 2379/2380: move it to free loopback ones."""
        client, peer = config.get("etcd_port"), _free_port()
        etcd_yaml = self.data_dir / "configs" / "embedEtcd.yaml"
        etcd_yaml.write_text(
            f"listen-client-urls: http://127.0.0.1:{client}\nadvertise-client-urls: http://127.0.0.1:{client}\n"
            f"listen-peer-urls: http://127.0.0.1:{peer}\ninitial-advertise-peer-urls: http://127.0.0.1:{peer}\n"
            f"initial-cluster: default=http://127.0.0.1:{peer}\n"
        )
        milvus_yaml = self.data_dir / "configs" / "milvus.yaml"
        text = milvus_yaml.read_text()
        milvus_yaml.write_text(text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_yaml}\n", 1))

    def start(self) -> None:
        """Start the server and wait until its health endpoint and its gRPC port answer."""
        bin_dir = self.bin_dir
        env = {
            **os.environ,
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(self.metrics_port),
            "MILVUS_RUN_DIR": str(self.data_dir / "run"),
            "LD_LIBRARY_PATH": f"{bin_dir}:{os.environ.get('LD_LIBRARY_PATH', '')}",
        }
        log = (self.data_dir / "logs" / "milvus-stdout.log").open("ab")
        self.proc = subprocess.Popen(
            [str(bin_dir / "milvus"), "run", "standalone"],
            cwd=self.data_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C on the test run stops pytest first; the fixture stops this
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Milvus exited with {self.proc.returncode}; see {self.data_dir / 'logs'}")
            if self._healthy():
                return
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"Milvus did not start in {START_TIMEOUT_S:.0f} s; see {self.data_dir / 'logs'}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=2) as resp:
                if b"OK" not in resp.read():
                    return False
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
        except OSError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL: Milvus 2.3 standalone takes minutes to stop on SIGTERM; its WAL (RocksMQ) keeps what it acked."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
