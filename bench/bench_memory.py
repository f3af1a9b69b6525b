"""What reading each memory figure costs (docs/store.md, "Memory"): one
mallinfo2() call (allocator_free_bytes) on a glibc heap fragmented on purpose,
and reading /proc/self/smaps_rollup (PSS, which pyloot does not read), each
against reading /proc/self/statm (rss) in the same run. Not part of the tests.

usage: python3 bench/bench_memory.py [--blocks N] [--pss]
  --blocks N  allocate N blocks of 600-1200 bytes (glibc malloc, not
              pymalloc) and free every other one (default 100000; 1000000
              makes a ~1 GiB process with 500,000 free chunks)
  --pss       also time smaps_rollup, with N 4 KiB bytearrays held instead
"""
import argparse
import ctypes
import time


class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def best_ms(fn, rounds=30):
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def read(path):
    with open(path, "rb") as f:
        return f.read()


def rss_mib():
    return int(read("/proc/self/statm").split()[1]) * 4096 / 2 ** 20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=100000)
    ap.add_argument("--pss", action="store_true")
    a = ap.parse_args()
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    blocks = [bytearray(600 + (i % 7) * 100) for i in range(a.blocks)]
    del blocks[::2]
    mi = libc.mallinfo2()
    statm = best_ms(lambda: read("/proc/self/statm"))
    info = best_ms(libc.mallinfo2)
    print("heap: %d free chunks, fordblks %.0f MiB, rss %.0f MiB" % (mi.ordblks, mi.fordblks / 2 ** 20, rss_mib()))
    print("mallinfo2: %.3f ms   statm: %.3f ms   ratio %.0fx   (best of 30)" % (info, statm, info / statm))
    if a.pss:
        del blocks
        held = [bytearray(4096) for _ in range(a.blocks)]
        pss = best_ms(lambda: read("/proc/self/smaps_rollup"))
        statm = best_ms(lambda: read("/proc/self/statm"))
        print("rss %.0f MiB (%d pages held): smaps_rollup %.3f ms   statm %.3f ms   ratio %.0fx   (best of 30)"
              % (rss_mib(), len(held), pss, statm, pss / statm))


if __name__ == "__main__":
    main()
