"""``edge-mmer service install``: write the unit and create its dedicated user.

The user is a system account without a login shell or a home folder, in the ``video`` and ``audio``
groups (the unit adds them again with ``SupplementaryGroups=``). Nothing is started: the caller says
what to run next (``systemctl daemon-reload`` and ``enable --now``), so installing on an image that
is not booted (a chroot, a build step) works the same.
"""

from __future__ import annotations

import grp
import logging
import pwd
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from edge_mmer.errors import RunError

from .unit import DEVICE_GROUPS

log = logging.getLogger(__name__)

__all__ = ["UNIT_DIR", "UNIT_NAME", "create_user", "install_unit", "user_exists"]

UNIT_DIR = Path("/etc/systemd/system")
UNIT_NAME = "edge-mmer.service"


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _groups_here() -> list[str]:
    found = []
    for group in DEVICE_GROUPS:
        try:
            grp.getgrnam(group)
            found.append(group)
        except KeyError:
            log.warning("there is no %r group on this machine: the service's user is not added to it", group)
    return found


def create_user(name: str, run: Callable[[Sequence[str]], object] | None = None) -> bool:
    """The dedicated system user (``useradd --system``); False when it was there already."""
    if user_exists(name):
        return False
    useradd = shutil.which("useradd")
    if useradd is None:
        raise RunError(f"cannot create the user {name!r}: no useradd on this machine (create it, then run again "
                       "with --no-create-user)")
    argv = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
            "--shell", "/usr/sbin/nologin"]
    groups = _groups_here()
    if groups:
        argv += ["--groups", ",".join(groups)]
    argv.append(name)
    try:
        (run or _check_call)(argv)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RunError(f"cannot create the user {name!r} ({' '.join(argv)}): {exc} (run as root?)") from exc
    return True


def _check_call(argv: Sequence[str]) -> object:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True)


def install_unit(text: str, unit_dir: Path = UNIT_DIR, name: str = UNIT_NAME) -> Path:
    """Write the unit file (mode 0644); its path."""
    path = unit_dir / name
    try:
        unit_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o644)
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc} (run as root, or give --unit-dir)") from exc
    return path
