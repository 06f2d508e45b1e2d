"""Peak RSS and the C heap, as far as the OS lets a process measure them.

Each returns None or False where the OS has no such measure, so that the benchmark
reports less on such a system rather than failing.
"""
import ctypes
import sys

try:
    import resource
except ImportError:  # Windows: no peak RSS
    resource = None


def peak_rss():
    """This process's high-water mark of resident memory, in bytes (None: unknown)."""
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024


def trim_heap():
    """Hand the C allocator's free memory back to the OS (glibc's ``malloc_trim``), as
    ``gc.collect()`` does for Python's: each workload's peak RSS then starts from what
    is live, not from what the workloads before it happened to leave free in the heap
    (measured: 35 MiB after a fill, which a later workload's peak counted)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc
        return
    trim(0)


def reset_peak_rss():
    """Reset the peak RSS to the current RSS (Linux >= 4.0); return whether it was."""
    try:
        with open('/proc/self/clear_refs', 'w') as control:
            control.write('5')
    except OSError:
        return False
    return True
