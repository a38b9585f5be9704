"""Random loop-heavy programs (periodic runs) with interference, for the
differential check of the scheduler's periodic fast path
(tests/test_schedule_runs.py): ``program(seed)`` is lasm source."""
import random


class G:
    def __init__(self, seed):
        self.r = random.Random(seed)
        r = self.r
        self.chip = r.choice(["tiny", "tiny", "tsp-v1"])
        self.ns = 8 if self.chip == "tiny" else 44
        self.nstr = 16 if self.chip == "tiny" else 32
        self.nalu = 4 if self.chip == "tiny" else 16
        self.words = 256 if self.chip == "tiny" else 4096
        self.share = r.random() < 0.3     # reuse streams/ALUs across parts (interference)
        self.rot = {"e": r.randrange(self.nstr), "w": r.randrange(self.nstr)}
        self.seen = []      # (slice, stream) read in loops

    def st(self, d):
        r = self.r
        if self.share and r.random() < 0.3:
            return f"s{r.randrange(min(4, self.nstr))}{d}"
        self.rot[d] = (self.rot[d] + 1) % self.nstr
        return f"s{self.rot[d]}{d}"

    def sl(self, side, avoid=()):
        r = self.r
        c = [f"{side}{k}" for k in range(self.ns) if f"{side}{k}" not in avoid]
        if self.chip == "tsp-v1":
            c = c[:12]
        return r.choice(c)

    def alu(self):
        return f"alu{self.r.randrange(self.nalu if not self.share else 2)}"

    def addr(self, sl, e):
        return f"{sl}.b{self.r.randrange(2)}[{e}]"

    def chain(self, e):
        r = self.r
        side = r.choice("WE")
        d = "e" if side == "W" else "w"
        out = []
        s1 = self.sl(side)
        a = self.st(d)
        out.append(f"    read {self.addr(s1, e)}, {a}")
        self.seen.append((s1, a))
        cur = a
        if r.random() < 0.5:
            s2 = self.sl(side, (s1,))
            b = self.st(d)
            out.append(f"    read {self.addr(s2, e)}, {b}")
            o = self.st(r.choice("ew"))
            out.append(f"    {r.choice(['vadd', 'vsub', 'vmax'])}.i8 {cur}, {b}, {o}, {self.alu()}")
            cur = o
        for _ in range(r.randrange(0, 3)):
            o = self.st(r.choice("ew"))
            if r.random() < 0.5:
                out.append(f"    {r.choice(['vneg', 'vrelu', 'vmov'])}.i8 {cur}, {o}, {self.alu()}")
            else:
                out.append(f"    {r.choice(['vadd', 'vmul'])}.i8 {cur}, {r.randrange(-4, 5)}, {o}, {self.alu()}")
            cur = o
        wside = "E" if cur.endswith("e") else "W"
        if r.random() < 0.25 and side == wside:
            e2 = e if r.random() < 0.5 else r.choice([f"({e}) % 3", f"({e} + 1) % 4", f"({e} * 2) % 5", "3"])
            out.append(f"    write {cur}, {self.addr(s1, e2)}")   # in place: hazards, co-issue
        else:
            out.append(f"    write {cur}, {self.addr(self.sl(wside), e)}")
        return out

    def mxm(self, e, p):
        r = self.r
        out = []
        slw = self.sl("W")
        for _ in range(r.randrange(1, 3)):
            s = self.st("w")
            out.append(f"    read {self.addr(slw, e)}, {s}")
            out.append(f"    lw.i8 {s}, mxm{p}")
        return out

    def abc(self, e, p):
        s = self.st("w")
        return [f"    read {self.addr(self.sl('W'), e)}, {s}", f"    abc.i8 {s}, mxm{p}"]

    def acc(self, e, p, row):
        r = self.r
        g = r.choice([0, 4, 8]) % self.nstr
        out = [f"    acc.i32 mxm{p}, s{g}e, {row}, {r.randrange(2)}"]
        if r.random() < 0.6:
            out.append(f"    write s{g}e, {self.addr(self.sl('E'), e)}")
        return out

    def pipeline(self):
        """Two abc loops at different rates, then one acc loop taking all their
        products (its bounds change where the first loop's products end)."""
        r = self.r
        p = r.randrange(2)
        lines = self.mxm("0", p) + [f"    iw mxm{p}"]
        total = 0
        for _ in range(2):
            n = r.choice([5, 12, 30])
            total += n
            v = f"a{r.randrange(10**6)}"
            lines.append(f".for {v}, 0, {n}")
            lines += self.abc(v, p)
            if r.random() < 0.5:
                lines += self.chain(v)
            lines.append(".endfor")
        v = f"c{r.randrange(10**6)}"
        lines.append(f".for {v}, 0, {total}")
        lines += self.acc(v, p, f"{v} % 32")
        lines.append(".endfor")
        return lines

    def loop(self, depth=0):
        r = self.r
        v = f"i{r.randrange(10**6)}"
        n = r.choice([6, 10, 20, 33, 64, 120, 200])
        e = r.choice([v, f"({v} * 3) % 64", f"{v} % 5", "7", f"({v} + 11) % {self.words}"])
        lines = [f".for {v}, 0, {n}"]
        k = r.random()
        p = r.randrange(2)
        if k < 0.45:
            for _ in range(r.randrange(1, 3)):
                lines += self.chain(e)
        elif k < 0.6:
            lines += self.mxm(e, p)
        elif k < 0.75:
            lines += self.mxm("0", p)[:0] + self.abc(e, p)
        elif k < 0.85:
            lines += self.acc(e, p, f"{v} % 32")
        else:
            lines += self.chain(e)
            lines += self.abc(e, p)
        if depth == 0 and r.random() < 0.25:
            lines += self.loop(1)[:]
        lines.append(".endfor")
        return lines

    def echo(self):
        """A value on a loop's stream, read upstream of the loop's slice at a
        pinned cycle, consumed at the VXM: its path crosses the loop's writes."""
        r = self.r
        if not self.seen:
            return []
        sl, stream = r.choice(self.seen)
        side, k = sl[0], int(sl[1:])
        if k + 1 >= self.ns:
            return []
        up = f"{side}{r.randrange(k + 1, min(self.ns, k + 6))}"
        pin = f" @{r.randrange(0, 2500)}" if r.random() < 0.5 else ""
        out = [f"    read {self.addr(up, r.randrange(64))}, {stream}{pin}"]
        if r.random() < 0.8:
            out.append(f"    vneg.i8 {stream}, {self.st(r.choice('ew'))}, {self.alu()}")
        else:
            d = stream[-1]
            out.append(f"    write {stream}, {self.addr(self.sl('E' if d == 'e' else 'W'), 3)}")
        return out

    def clash(self):
        """A pinned write onto a loop's stream at its slice (slots, values in use)."""
        r = self.r
        if not self.seen:
            return []
        sl, stream = r.choice(self.seen)
        return [f"    read {self.addr(sl, r.randrange(64))}, {stream} @{r.randrange(0, 2500)}"]

    def noise(self):
        r = self.r
        k = r.random()
        if k < 0.35:
            return self.echo()
        if k < 0.35:
            return self.clash()
        k = r.random()
        if k < 0.3:
            sl = self.sl(r.choice("WE"))
            d = "e" if sl[0] == "W" else "w"
            return [f"    read {self.addr(sl, r.randrange(64))}, {self.st(d)} @{r.randrange(0, 3000)}"]
        if k < 0.45:
            q = r.choice([self.sl("W").lower(), self.sl("E").lower(), "alu0", "alu1", "mxm0"])
            return [f"    nop {q}, {r.randrange(1, 30)}"]
        if k < 0.6:
            return [f"    iw mxm{r.randrange(2)}"]
        if k < 0.75:
            # a consumer of whatever a stream last carried (maybe from a loop)
            d = r.choice("ew")
            s = f"s{r.randrange(min(6, self.nstr))}{d}"
            return [f"    vneg.i8 {s}, {self.st(r.choice('ew'))}, {self.alu()}"]
        if k < 0.85:
            return self.chain(str(r.randrange(64)))
        return [f"    vadd.i8 s0e, 1, s1e, alu0 @+{r.randrange(1, 40)}"]

    def program(self):
        r = self.r
        lines = [f".chip {self.chip}"]
        for _ in range(r.randrange(1, 6)):
            if r.random() < 0.15:
                lines += self.pipeline()
            elif r.random() < 0.7:
                lines += self.loop()
            for _ in range(r.randrange(0, 3)):
                lines += self.noise()
        k = r.random()
        if k < 0.5:
            lines.append("    halt")
        elif k < 0.7:
            lines.append(f"    halt @{r.randrange(100, 3000)}")
        return "\n".join(lines) + "\n"


def program(seed):
    return G(seed).program()
