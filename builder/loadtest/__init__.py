"""Load testing: boot each probe's own kernel in a VM and load the probe there.

Takes: build reports. Gives: the same reports with each probe's LoadTest (passed,
rejected with the verifier's words, or not tested and why), and the logs.

Host side (`stage`, `kernelimage`, `initramfs`, `vm`, `guestroot`) fetches
the kernel's `linux-image` package, boots it in QEMU (x86_64 or aarch64,
several at once) with the host's root file system shared read-only, and
writes the results into the build report. Guest side (`guest`, `loader`,
`bpf`, `probeelf`, `events`) runs inside that VM, on the host's own Python
when the kernel is of the host's architecture, else on Debian's Python of the
kernel's architecture (`guestroot`): it parses each probe and loads every
program through `bpf()`.

This package's `__init__` imports nothing: the guest starts over 9p in an
emulated CPU, where every module imported costs time.
"""
