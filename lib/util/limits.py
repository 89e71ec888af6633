"""Sizes a user controls, checked against what they cost before anything is allocated.

A setting that would need more memory than the machine has is refused with a message that says how
much it would take; lengths that only cost time (a sample, a priming text) have fixed upper bounds, so
that no command can run for hours by a slip of the keyboard.
"""
import os
import sys

from lib.util.files import human

MAX_SAMPLE = 1_000_000      # characters in one sample or passage (about half a minute of sampling)
MAX_PRIME = 100_000         # characters of priming text
MEMORY_SHARE = 0.9          # at most this share of the available memory is planned for


class TooLarge(ValueError):
    """A size that would cost more than the machine has; the message says how much."""


def available_memory():
    """Bytes this process can still allocate: MemAvailable, capped by an address-space limit (ulimit -v).
    None where it cannot be known (then only the fixed bounds apply)."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    if sys.platform != "win32":
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            used = 0
            try:
                with open("/proc/self/status") as f:
                    used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
            except (OSError, StopIteration):
                pass
            avail = soft - used if avail is None else min(avail, soft - used)
    return avail


def check_memory(need_bytes, what, advice):
    """Refuse (TooLarge) when need_bytes is more than the memory this machine has available."""
    avail = available_memory()
    if avail is not None and need_bytes > MEMORY_SHARE * avail:
        raise TooLarge(f"{what} would need about {human(need_bytes)} of memory and this machine has "
                       f"{human(avail)} available; {advice}")


def check_at_most(n, name, limit):
    """TooLarge unless the count n (a sample length, a priming text's) is at most limit."""
    if n > limit:
        raise TooLarge(f"{name} = {n:,} is more than this project allows ({limit:,}); ask for fewer characters.")