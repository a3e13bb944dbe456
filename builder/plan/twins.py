"""Twin kernels: several kernels whose loaders request one file name (docs/twins.md).

Falco's loaders (0.35+, falcoctl) name a Debian file after the package version in
`uname -v` and the flavour, not after `uname -r`: bookworm's backported
6.12.N+deb12-amd64 and trixie's 6.12.N+deb13-amd64 both ask for
falco_debian_6.12.N-1-amd64_1.o, and arm64's 16k-page kernels ask for the plain arm64
name. A probe (its kernel_version section) or a module (its vermagic) loads only into
the kernel it was built for, so every twin gets a file of its own: one owns the
loader's default path, chosen by the target's `twins.owner` rule, and every other is
published under <store>/twins/<root>/, which a node on that kernel lists first in
DRIVERS_REPO or FALCOCTL_DRIVER_REPOS. A default path the catalog already gives to one
kernel stays with it: a published file is never replaced by another kernel's bytes.

Pure: names and kernels in, roots out.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from builder.core.records import Kernel, ProbeName, Twin
from builder.kernels.select import version_order

# The flavour part Debian's loaders keep ((rt-|cloud-)amd64|arm64); what is left over
# (the 16k of arm64-16k) is a variant the loader's name drops.
_LOADER_FLAVOR = re.compile(r"(rt-|cloud-|)(amd64|arm64)")
_PLAIN_DEBIAN_VERSION = re.compile(r"\d+\.\d+\.\d+-\d+")  # not a ~debNNuM rebuild


@dataclass(frozen=True, slots=True)
class Member:
    """One kernel that requests a file, and the name its loader computes for it."""

    kernel: Kernel
    name: ProbeName


def variant(kernel: Kernel) -> str:
    """The part of the kernel's flavour its loader's name drops: `16k` for arm64-16k."""
    found = _LOADER_FLAVOR.search(kernel.flavor)
    if found is None:
        return ""
    return (kernel.flavor[:found.start()] + kernel.flavor[found.end():]).strip("-")


def twin_root(kernel: Kernel) -> str:
    """Where a kernel's files go when it does not own the default path: its target, the
    release of the distribution it was packaged for and its variant, e.g. debian-12,
    debian-13-16k. The same for every point release, so one setting serves a fleet."""
    parts = [kernel.target, kernel.host.version_id, variant(kernel)]
    return _safe_root("-".join(p for p in parts if p))


def _is_native(member: Member) -> bool:
    """Packaged for the release whose own kernel it is: its package version is the one
    the loader's name carries (6.12.118-1, not the backport's 6.12.118-1~deb12u1)."""
    version = member.kernel.package_version
    return bool(_PLAIN_DEBIAN_VERSION.fullmatch(version)) and version in member.name.kernel_release


def _age(member: Member) -> tuple[object, ...]:
    return (version_order(member.kernel), member.kernel.host.uname_r)


def owner(group: list[Member], rule: str) -> Member:
    """The member the rule gives the default path. Every rule prefers the plain flavour
    to a variant (a 16k-page kernel); then `native` prefers the kernel packaged for the
    release whose own kernel it is (the newest such), `newest` the newest package
    version, `oldest` the oldest."""
    plain = [m for m in group if not variant(m.kernel)] or group
    if rule == "native":
        plain = [m for m in plain if _is_native(m)] or plain
    return (min if rule == "oldest" else max)(plain, key=_age)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one kernel's file of one name goes, and the other kernels of that name."""

    root: str                      # "" = the loader's default path
    twins: tuple[Twin, ...] = ()


FileName = tuple[str, str, str]   # (driver version, arch, file)


def place_twins(members: Mapping[FileName, list[Member]], rule: Callable[[Member], str],
                default_owner: Callable[[FileName], str | None]) -> dict[tuple[FileName, str],
                                                                       Placement]:
    """A placement per (file, kernel key). `rule(member)` names the owner rule of the
    member's target; `default_owner(file)` is the `uname -r` the catalog already serves
    at the default path (None: nobody; "": a record that does not say)."""
    out: dict[tuple[FileName, str], Placement] = {}
    for file, group in members.items():
        roots = _roots(group, rule(group[0]), default_owner(file))
        for member in group:
            out[(file, member.kernel.key)] = Placement(roots[member.kernel.key], tuple(sorted(
                Twin(other.kernel.host.uname_r, roots[other.kernel.key]) for other in group
                if other.kernel.key != member.kernel.key)))
    return out


def _roots(group: list[Member], rule: str, held_by: str | None) -> dict[str, str]:
    """Each member's root by kernel key: "" for the owner of the default path, else its
    twin root (with a digest of its kernel where two members would share one: a kernel
    list may hold one `uname -r` twice, built twice). A default path held by a kernel that
    is not in the group leaves every member to its root; one held by a record that does
    not say its kernel (catalog schema 1) is taken to be the rule's owner's."""
    chosen = owner(group, rule)
    holder = next((m for m in group if m.kernel.host.uname_r == held_by), None)
    if held_by == "" or held_by is None:
        holder = chosen
    elif holder is not None and holder.kernel.host.uname_r == chosen.kernel.host.uname_r:
        holder = chosen   # the same `uname -r` twice: the rule says which
    roots = {m.kernel.key: twin_root(m.kernel) for m in group if m is not holder}
    taken: dict[str, list[str]] = defaultdict(list)
    for key, root in roots.items():
        taken[root].append(key)
    for root, sharing in taken.items():
        if len(sharing) > 1:
            for key in sharing:
                digest = hashlib.sha256(key.encode()).hexdigest()[:8]
                roots[key] = _safe_root(f"{root}-{digest}")
    return {m.kernel.key: roots.get(m.kernel.key, "") for m in group}


def _safe_root(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
