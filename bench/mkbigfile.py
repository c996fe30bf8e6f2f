#!/usr/bin/env python3
"""Writes one large file of mixed data for the benchmark suite, the same
bytes every time on the same machine (file lists are sorted, the random
part comes from a seeded generator).

    bench/mkbigfile.py OUT SIZE_BYTES

Layout, in 4 rounds so that every part of the file mixes kinds of data
(each round holds a quarter of each share):
  35 % binaries  : shared libraries and executables from /usr/lib, /usr/bin
  20 % text      : C headers, Python and Perl sources from /usr
  15 % repeated  : the first 8 MiB of the binaries again (far matches)
  20 % random    : bytes of random.Random(20241127) (incompressible)
  10 % zeros
"""
import os
import random
import sys

SHARES = [("bin", 35), ("text", 20), ("repeat", 15), ("random", 20), ("zeros", 10)]
ROUNDS = 4
REPEAT_UNIT = 8 << 20
SEED = 20241127


def files(roots, keep):
    """Regular files under roots, sorted, that keep(path) accepts."""
    out = []
    for root in roots:
        for d, dirs, names in os.walk(root):
            dirs.sort()
            for n in sorted(names):
                p = os.path.join(d, n)
                if os.path.isfile(p) and not os.path.islink(p) and keep(p):
                    out.append(p)
    return out


class Cycle:
    """Reads the concatenation of a list of files, over and over."""

    def __init__(self, paths):
        if not paths:
            raise SystemExit("mkbigfile: no input files found")
        self.paths, self.i, self.f = paths, 0, None

    def read(self, n):
        buf = bytearray()
        while len(buf) < n:
            if self.f is None:
                try:
                    self.f = open(self.paths[self.i % len(self.paths)], "rb")
                except OSError:
                    self.i += 1
                    continue
            b = self.f.read(min(n - len(buf), 1 << 20))
            if not b:
                self.f.close()
                self.f = None
                self.i += 1
                continue
            buf += b
        return bytes(buf)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    out, size = sys.argv[1], int(sys.argv[2])
    bin_list = files(["/usr/lib", "/usr/bin"], is_elf)
    bins = Cycle(bin_list)
    # The repeated part: the first bytes of the binaries, met again later.
    repeat = Cycle(bin_list).read(REPEAT_UNIT)
    rpos = 0
    texts = Cycle(
        files(
            ["/usr/include", "/usr/lib/python3", "/usr/share/perl5", "/usr/share/perl"],
            lambda p: p.endswith((".h", ".py", ".pm", ".pl")),
        )
    )
    rng = random.Random(SEED)
    written = 0
    with open(out, "wb") as f:
        for r in range(ROUNDS):
            for kind, share in SHARES:
                # The last piece takes what rounding left over.
                n = size * share // 100 // ROUNDS
                if r == ROUNDS - 1 and kind == SHARES[-1][0]:
                    n = size - written
                while n > 0:
                    k = min(n, 1 << 22)
                    if kind == "bin":
                        b = bins.read(k)
                    elif kind == "text":
                        b = texts.read(k)
                    elif kind == "repeat":
                        k = min(k, REPEAT_UNIT - rpos)
                        b = repeat[rpos : rpos + k]
                        rpos = (rpos + k) % REPEAT_UNIT
                    elif kind == "random":
                        b = rng.randbytes(k)
                    else:
                        b = bytes(k)
                    f.write(b)
                    written += len(b)
                    n -= len(b)


def is_elf(p):
    try:
        if os.path.getsize(p) < 4096:
            return False
        with open(p, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


if __name__ == "__main__":
    main()
