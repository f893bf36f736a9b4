"""Where the running mlm was installed from, as a pip requirement another machine can use:
what the CI workflow of a new project installs.

mlm is not published on PyPI, so `pip install mlm` on a CI runner would find nothing (or
another project's package of that name). The installed distribution's metadata says where
it came from (PEP 610's direct_url.json): a git URL and commit, an archive URL, a folder
on this machine, or (without the file) a package index.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlm.version import __version__

# Schemes another machine can fetch from; file:// and bare paths are this machine's only.
NETWORK_SCHEMES = ("https", "http", "ssh", "git")
# git's scp-like form, user@host:path, which pip does not take as it is.
SCP_LIKE = re.compile(r"^(?P<user>[\w.-]+)@(?P<host>[\w.-]+):(?P<path>[^/].*)$")


@dataclass(frozen=True)
class Source:
    """Where mlm came from: `requirement` installs the same mlm elsewhere (None when no
    other machine can reach it), `origin` says where that is, in words."""

    requirement: str | None
    origin: str


@cache
def installed_source() -> Source:
    """The running mlm's source, from its distribution's metadata."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("mlm")
    except PackageNotFoundError:  # run from a source tree on sys.path, not installed
        return source_of({"url": Path(__file__).parents[2].as_uri(), "dir_info": {}})
    text = dist.read_text("direct_url.json")
    return source_of(json.loads(text) if text else None, dist.version)


def source_of(direct_url: dict | None, version: str = __version__) -> Source:
    """The Source a PEP 610 direct_url.json record describes (None: a package index)."""
    if direct_url is None:
        return Source(
            f"mlm=={version}",
            f"mlm {version} from a package index (not PyPI, where mlm is not published: "
            "give pip that index's --index-url here, or set PIP_INDEX_URL)",
        )
    url = str(direct_url.get("url", ""))
    subdirectory = direct_url.get("subdirectory")
    fragment = f"#subdirectory={subdirectory}" if subdirectory else ""
    vcs = direct_url.get("vcs_info")
    if vcs is not None and _reachable(url):
        commit = vcs.get("commit_id", "")
        return Source(
            f"mlm @ {vcs.get('vcs', 'git')}+{url}@{commit}{fragment}",
            f"mlm {version} from {url} at commit {commit}",
        )
    if "archive_info" in direct_url and _reachable(url):
        digest = (direct_url["archive_info"].get("hashes") or {}).get("sha256")
        fragment = f"#sha256={digest}" if digest and not fragment else fragment
        return Source(f"mlm @ {url}{fragment}", f"mlm {version} from {url}")
    parsed = urlparse(url)
    if parsed.scheme == "file" and "dir_info" in direct_url:
        folder = Path(unquote(parsed.path))
        pushed = _pushed_checkout(folder)
        if pushed is not None:
            remote, commit, inside = pushed
            where = f"#subdirectory={inside}" if inside != "." else ""
            return Source(
                f"mlm @ git+{remote}@{commit}{where}",
                f"mlm {version} from {folder}, a checkout of {remote} at commit {commit}",
            )
        return Source(None, f"mlm {version} from a folder on this machine ({folder})")
    return Source(None, f"mlm {version} from {url or 'an unknown place'}")


def _reachable(url: str) -> bool:
    return urlparse(url).scheme in NETWORK_SCHEMES


def _pushed_checkout(folder: Path) -> tuple[str, str, str] | None:
    """(origin's URL, HEAD's commit, the folder inside the repository) when `folder` is in
    a git checkout whose HEAD is on a branch of a remote another machine can fetch; None
    otherwise (no git, no such remote, or a commit not pushed)."""
    git = shutil.which("git")
    if git is None or not folder.is_dir():
        return None

    def output(*args: str) -> str:
        done = subprocess.run(
            [git, "-C", str(folder), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    top = output("rev-parse", "--show-toplevel")
    remote = output("remote", "get-url", "origin")
    scp = SCP_LIKE.match(remote)
    if scp:
        remote = f"ssh://{scp['user']}@{scp['host']}/{scp['path']}"
    commit = output("rev-parse", "HEAD")
    if not (top and commit and _reachable(remote)):
        return None
    if not output("branch", "--remotes", "--contains", commit):
        return None  # not pushed: CI could not fetch it
    inside = folder.resolve().relative_to(Path(top).resolve()).as_posix()
    return remote, commit, inside
