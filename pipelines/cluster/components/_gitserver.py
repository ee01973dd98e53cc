"""The local git server Argo CD syncs from: `git daemon` on 127.0.0.1 serving a bare clone of this
repository, pushes enabled (a push to its branch is the merge of a pull request).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


class GitServerError(RuntimeError):
    pass


@dataclass(frozen=True, kw_only=True)
class GitServer:
    """Where `url` (the config's `gitops.repo_url`, e.g. git://127.0.0.1:39418/kiosk-pipelines.git)
    is served from: `base/<path>`, on the URL's port.
    """

    url: str
    base: Path

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 9418

    @property
    def repository(self) -> Path:
        return self.base / urlsplit(self.url).path.lstrip("/")

    @classmethod
    def from_url(cls, url: str, base: Path) -> GitServer:
        parts = urlsplit(url)
        if parts.scheme != "git" or parts.hostname != "127.0.0.1" or not parts.path.strip("/"):
            raise GitServerError(f"gitops.repo_url {url!r}: the local git server serves git://127.0.0.1[:port]/<name>")
        return cls(url=url, base=base)


def seed(server: GitServer, revision: str, source: Path) -> bool:
    """A bare clone whose `revision` branch is `source`'s HEAD; False when one exists already (it
    keeps whatever was pushed to it).
    """
    repo = server.repository
    if (repo / "HEAD").is_file():
        return False
    partial = repo.with_name(repo.name + ".partial")
    _git("init", "--quiet", "--bare", str(partial))
    # Fetched by the new repository: nothing runs in (or writes to) the source checkout.
    _git("-C", str(partial), "fetch", "--quiet", "--no-tags", str(source), f"HEAD:refs/heads/{revision}")
    _git("-C", str(partial), "symbolic-ref", "HEAD", f"refs/heads/{revision}")
    partial.rename(repo)
    return True


def daemon_argv(git: Path, server: GitServer) -> list[str]:
    return [
        str(git),
        "daemon",
        "--listen=127.0.0.1",
        f"--port={server.port}",
        f"--base-path={server.base}",
        "--export-all",
        "--enable=receive-pack",  # anonymous pushes: loopback only, a throwaway clone
        "--reuseaddr",
        "--informative-errors",
        str(server.base),
    ]


def _git(*args: str) -> None:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GitServerError(f"git {' '.join(args)}: {proc.stderr.strip()}")
