"""The level engine: a whole program evaluated as a dataflow graph.

A static schedule fixes, before anything runs, which value every instruction
consumes: the timing analysis has matched each stream sample with its
producer, each SRAM read depends on the last write to its word that committed
before it, and each MXM instruction on its plane's loads, installs, products
and accumulator rows.  Giving every instruction a level (1 + the deepest of
its inputs) lets all instructions of a level with the same opcode and dtypes
run as one numpy call, however far apart their cycles are: a GEMM's
activations of one weight install become one matrix product.

Programs with `gather` or `scatter` (data-dependent addresses) run on the
cycle engine instead (:mod:`lpuasm.interp`).
"""

from __future__ import annotations

import numpy as np

from . import chip, isa
from . import semantics as sem
from .analysis import Analysis, error_at
from .sim import SimError, initial_sram

_OP = {m: isa.TABLE[m].opcode for m in ("read", "write", "lw", "iw", "abc", "acc")}


def supported(a: Analysis) -> bool:
    """Whether the level engine can run this program."""
    unsupported = {isa.TABLE[m].opcode for m in ("gather", "scatter", "send", "receive", "deskew")}
    return not (set(a.fields) & unsupported)


class LevelEngine:
    def __init__(self, a: Analysis, allow_uninit: bool, strict_fp: bool):
        self.a, self.p, self.cfg = a, a.program, a.program.config
        self.allow_uninit, self.strict_fp = allow_uninit, strict_fp
        self.nan_inf = 0
        self.violations: list[tuple[int, int, str, str | None]] = []  # (cycle, row, cause, hint)
        n = len(self.p)
        self.n = n
        w = a.writes
        self.w_start = np.searchsorted(w.row, np.arange(n))
        self.r_start = np.searchsorted(a.reads.row, np.arange(n))
        self.store = np.zeros((len(w.row), self.cfg.lanes), dtype=np.uint8)
        self.sram, self.valid = initial_sram(self.p.image, self.cfg)
        # the word each write row writes (rows that are not writes stay unused)
        self.written = np.zeros((n if _OP["write"] in a.fields else 0, self.cfg.lanes), dtype=np.uint8)

    # ---- dependencies ---------------------------------------------------------------
    def _edges(self) -> tuple[np.ndarray, np.ndarray]:
        a, p = self.a, self.p
        cons = [a.reads.row]
        prod = [a.writes.row[np.maximum(a.producer, 0)]]
        if (a.producer < 0).any():
            raise SimError("internal: unmatched stream read reached the level engine")
        # SRAM: a read depends on the last write to its word committed before it
        self.read_dep = np.full(self.n, -1, dtype=np.int64)
        if _OP["read"] in a.fields and _OP["write"] in a.fields:
            rr, rf = a.fields[_OP["read"]]
            wr, wf = a.fields[_OP["write"]]
            commit = p.cycle[wr] + a.delay[wr]
            big = int(max(p.cycle.max(), commit.max())) + 2
            wkey = wf["a"] * big + commit
            order = np.argsort(wkey, kind="stable")
            rkey = rf["a"] * big + p.cycle[rr]  # commit <= issue
            k = np.searchsorted(wkey[order], rkey, "right") - 1
            ok = (k >= 0) & (wf["a"][order[np.maximum(k, 0)]] == rf["a"])
            dep = np.where(ok, wr[order[np.maximum(k, 0)]], -1)
            self.read_dep[rr] = dep
            cons.append(rr[ok])
            prod.append(dep[ok])
        c2, p2 = self._mxm_plan()
        cons.append(c2)
        prod.append(p2)
        return np.concatenate(cons).astype(np.int64), np.concatenate(prod).astype(np.int64)

    def _mxm_plan(self):
        """Walk each plane's instructions in issue order: which loads each
        install takes, which install each abc uses, which abc each acc takes
        and which earlier acc it adds to.  Static, so checked here."""
        a, p, cfg = self.a, self.p, self.cfg
        cons, prod = [], []
        self.iw_rows: dict[int, list[int]] = {}   # iw row -> lw rows, in order
        self.abc_iw: dict[int, int] = {}          # abc row -> iw row
        self.acc_abc: dict[int, int] = {}         # acc row -> abc row
        self.acc_prev: dict[int, int] = {}        # acc row -> earlier acc row it adds to
        self.iw_dtype: dict[int, str | None] = {}
        self.abc_dtype: dict[int, str] = {}
        mxm_ops = [_OP[m] for m in ("lw", "iw", "abc", "acc") if _OP[m] in a.fields]
        if not mxm_ops:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        rows = np.sort(np.concatenate([a.fields[o][0] for o in mxm_ops]))
        planes = {}
        for r in rows.tolist():
            row, f = isa.unpack(int(p.word[r]))
            planes.setdefault(f["p"], []).append((r, row.mnemonic, f))
        for plane, items in planes.items():
            # events (effect cycle, issue cycle, kind, row): loads and installs
            events = []  # loads before installs in one cycle
            for r, mn, f in items:
                if mn in ("lw", "iw"):
                    events.append((int(p.cycle[r] + a.delay[r]), mn == "iw", int(p.cycle[r]), mn, r, f))
            events.sort(key=lambda e: e[:3])
            buffer, buf_dt = [], None
            installs = []  # (effect cycle, iw row, dtype)
            for e, _, _, mn, r, f in events:
                if mn == "lw":
                    dt = isa.DTYPE_NAMES[f["dt"]]
                    if buffer and buf_dt != dt:
                        self._violate(r, f"dtype mismatch: the weight buffer of mxm{plane} holds {buf_dt} rows, "
                                         f"lw.{dt} adds {dt}")
                    k = chip.mxm_k(cfg, dt)
                    if len(buffer) >= k:
                        self._violate(r, f"weight buffer of mxm{plane} holds {k} rows already (K = {k})")
                        continue
                    buffer.append(r)
                    buf_dt = dt
                else:  # an empty buffer installs zero weights of no dtype (None)
                    self.iw_rows[r] = buffer
                    self.iw_dtype[r] = buf_dt
                    cons += [r] * len(buffer)
                    prod += buffer
                    installs.append((e, r, buf_dt))
                    buffer, buf_dt = [], None
            install_cycles = [e for e, _, _ in installs]
            fifo: list[tuple[int, int]] = []  # (ready cycle, abc row)
            acc_last: dict[int, int] = {}
            for r, mn, f in items:
                t = int(p.cycle[r])
                if mn == "abc":
                    dt = isa.DTYPE_NAMES[f["dt"]]
                    k = int(np.searchsorted(install_cycles, t, "right")) - 1  # installed by t
                    if k < 0:
                        self._violate(r, f"no weights installed on mxm{plane}")
                        continue
                    e, iw_row, wdt = installs[k]
                    if wdt is not None and wdt != dt:
                        self._violate(r, f"dtype mismatch: mxm{plane} holds {wdt} weights, abc.{dt} streams {dt}")
                        continue
                    self.abc_iw[r] = iw_row
                    self.abc_dtype[r] = dt
                    cons.append(r)
                    prod.append(iw_row)
                    fifo.append((t + int(a.delay[r]), r))
                elif mn == "acc":
                    dt = isa.DTYPE_NAMES[f["dt"]]
                    if not fifo or fifo[0][0] > t:
                        self._violate(r, f"no product ready on mxm{plane}")
                        continue
                    _, abc_row = fifo.pop(0)
                    wdt = self.abc_dtype[abc_row]
                    want = "i32" if wdt == "i8" else "f32"
                    if dt != want:
                        self._violate(r, f"acc.{dt} on mxm{plane} whose weights are {wdt} (use acc.{want})")
                        continue
                    acc_row = f["row"]
                    if acc_row >= cfg.mxm_acc_rows:
                        self._violate(r, f"accumulator row {acc_row} does not exist (mxm{plane} has "
                                         f"{cfg.mxm_acc_rows})")
                        continue
                    self.acc_abc[r] = abc_row
                    cons.append(r)
                    prod.append(abc_row)
                    prev = acc_last.get(acc_row)
                    if f["mode"] == 1 and prev is not None:
                        self.acc_prev[r] = prev
                        cons.append(r)
                        prod.append(prev)
                    acc_last[acc_row] = r
        return np.array(cons, dtype=np.int64), np.array(prod, dtype=np.int64)

    def _violate(self, row: int, cause: str, hint: str | None = None) -> None:
        self.violations.append((int(self.p.cycle[row]), int(row), cause, hint))

    def _raise_first(self) -> None:
        if self.violations:
            cycle, row, cause, hint = min(self.violations, key=lambda v: (v[0], v[1]))
            raise error_at(self.p, row, cause, hint)

    @staticmethod
    def levels(n: int, cons: np.ndarray, prod: np.ndarray) -> np.ndarray:
        level = np.zeros(n, dtype=np.int64)
        if not len(cons):
            return level
        while True:
            new = level.copy()
            np.maximum.at(new, cons, level[prod] + 1)
            if np.array_equal(new, level):
                return level
            level = new

    # ---- evaluation ---------------------------------------------------------------
    def run(self) -> None:
        cons, prod = self._edges()
        self._raise_first()  # static MXM violations stop the run before anything computes
        self._check_uninit()
        level = self.levels(self.n, cons, prod)
        key = self._group_keys()
        order = np.lexsort((key, level))
        lv, k = level[order], key[order]
        cut = np.nonzero((lv[1:] != lv[:-1]) | (k[1:] != k[:-1]))[0] + 1
        starts = np.concatenate(([0], cut)).tolist()
        ends = np.concatenate((cut, [self.n])).tolist()
        self.lw_value: dict[int, np.ndarray] = {}
        self.weights: dict[int, np.ndarray] = {}
        self.products: dict[int, np.ndarray] = {}
        self.acc_value: dict[int, np.ndarray] = {}
        ops = self.p.op[order]
        for s, e in zip(starts, ends):
            rows = order[s:e]
            row = isa.BY_OPCODE[int(ops[s])]
            getattr(self, "_" + row.unit)(rows, row)
        self._raise_first()
        self._final_sram()

    def _group_keys(self) -> np.ndarray:
        p = self.p
        key = p.op.astype(np.int64) << 12
        dt = ((p.word >> np.uint64(8)) & np.uint64(0x3F)).astype(np.int64)
        for opcode in np.unique(p.op).tolist():
            row = isa.BY_OPCODE[opcode]
            rows = p.op == opcode
            extra = dt[rows] & ((1 << (3 * row.nsuffixes)) - 1)
            if any(o.name == "b" and o.kind == "src" for o in row.operands):
                f = next(f for f in row.fields if f.name == "b")
                extra = extra | (((p.word[rows] >> np.uint64(f.lo + 32)) & np.uint64(1)).astype(np.int64) << 6)
            key[rows] |= extra
        return key

    def _inputs(self, rows: np.ndarray) -> np.ndarray:
        a = self.a
        first = self.r_start[rows[0]]
        last = self.r_start[rows[0] + 1] if rows[0] + 1 < self.n else len(a.reads.row)
        count = last - first
        idx = self.r_start[rows][:, None] + np.arange(count)[None, :]
        return self.store[a.producer[idx]]

    def _outputs(self, rows: np.ndarray, planes: np.ndarray) -> None:
        idx = self.w_start[rows][:, None] + np.arange(planes.shape[1])[None, :]
        self.store[idx] = planes

    def _fields(self, rows, row):
        words = self.p.word[rows]
        out = {}
        for f in row.fields:
            v = ((words >> np.uint64(f.lo)) & np.uint64(f.mask)).astype(np.int64)
            if f.signed:
                v = np.where(v >> (f.width - 1), v - (1 << f.width), v)
            out[f.name] = v
        return out

    def _check_fp(self, rows, values) -> None:
        if values.dtype.kind != "f":
            return
        bad = ~np.isfinite(values)
        if bad.any():
            self.nan_inf += int(bad.sum())
            if self.strict_fp:
                for i in np.nonzero(bad.any(axis=1))[0][:1].tolist():
                    self._violate(int(rows[i]), "non-finite result (strict fp)")

    # ---- units --------------------------------------------------------------------------
    def _icu(self, rows, row) -> None:
        pass

    def _vxm(self, rows, row) -> None:
        f = self._fields(rows, row)
        dt = isa.DTYPE_NAMES[int(f["dt"][0])]
        dt2 = isa.DTYPE_NAMES[int(f["dt2"][0])] if row.nsuffixes > 1 else None
        planes = self._inputs(rows)
        g = isa.DTYPE_BYTES[dt]
        ops, at = {}, 0
        for o in row.operands:
            if o.kind not in ("stream", "src") or o.name == "d":
                continue
            if o.name == "b" and f["b"][0] & isa.SRC_IMMEDIATE:
                ops["b"] = sem.immediates(f["b"], dt)
                continue
            ops[o.name] = sem.from_planes(planes[:, at:at + g], dt)
            at += g
        out = sem.vxm(row.mnemonic, dt, ops.get("a"), ops.get("b"), ops.get("m"), dt2)
        self._check_fp(rows, out)
        self._outputs(rows, sem.to_planes(out))

    def _sxm(self, rows, row) -> None:
        f = self._fields(rows, row)
        planes = self._inputs(rows)
        lanes = self.cfg.lanes
        mn = row.mnemonic
        if mn == "transpose":
            self._outputs(rows, sem.transpose(planes))
            return
        s = planes[:, 0]
        if mn == "shift":
            out = sem.shift(s, f["n"])
        elif mn == "rotate":
            out = sem.rotate(s, f["n"])
        elif mn == "permute":
            index = sem.from_planes(planes[:, 1:3], "i16").astype(np.int64) & 0xFFFF
            bad = (index >= lanes).any(axis=1)
            for i in np.nonzero(bad)[0][:1].tolist():
                self._violate(int(rows[i]), f"permute map names lane {int(index[i].max())}, past the last lane "
                                            f"{lanes - 1}")
            out = sem.permute(s, np.minimum(index, lanes - 1))
        else:
            index = planes[:, 1]
            badmask = (index >= 16) & (index != 255)
            for i in np.nonzero(badmask.any(axis=1))[0][:1].tolist():
                self._violate(int(rows[i]), f"distribute map value {int(index[i][badmask[i]][0])} is neither a "
                                            f"lane of the superlane (0..15) nor 255")
            out = sem.distribute(s, np.where(badmask, 0, index))
        self._outputs(rows, out[:, None, :])

    def _mem(self, rows, row) -> None:
        f = self._fields(rows, row)
        code = f["a"]
        h, sl, b, off = (code >> 19) & 1, (code >> 13) & 63, (code >> 12) & 1, code & 0xFFF
        if row.mnemonic == "read":
            dep = self.read_dep[rows]
            vals = self.sram[h, sl, b, off]  # initial contents (SRAM is only written at the end)
            has = dep >= 0
            if has.any():
                vals[has] = self.written[dep[has]]
            self._outputs(rows, vals[:, None, :])
        else:  # write: remember the word; SRAM itself is written at the end
            self.written[rows] = self._inputs(rows)[:, 0]

    def _mxm(self, rows, row) -> None:
        mn = row.mnemonic
        f = self._fields(rows, row)
        if mn == "lw":
            dt = isa.DTYPE_NAMES[int(f["dt"][0])]
            vals = sem.from_planes(self._inputs(rows), dt)
            for r, v in zip(rows.tolist(), vals):
                self.lw_value[r] = v
        elif mn == "iw":
            for r in rows.tolist():
                dt = self.iw_dtype.get(r)
                if dt is None:  # empty: zero weights, sized when used
                    continue
                w = np.zeros((chip.mxm_k(self.cfg, dt), self.cfg.lanes), dtype=sem.NP[dt])
                loaded = self.iw_rows[r]
                w[:len(loaded)] = np.stack([self.lw_value[x] for x in loaded])
                self.weights[r] = w
        elif mn == "abc":
            dt = isa.DTYPE_NAMES[int(f["dt"][0])]
            xs = sem.from_planes(self._inputs(rows), dt)
            k = chip.mxm_k(self.cfg, dt)
            iws = np.array([self.abc_iw.get(r, -1) for r in rows.tolist()])
            for iw in np.unique(iws).tolist():
                if iw < 0:
                    continue
                sel = np.nonzero(iws == iw)[0]
                w = self.weights.get(iw)
                if w is None:
                    w = np.zeros((k, self.cfg.lanes), dtype=sem.NP[dt])
                prod = sem.matmul(xs[sel, :k], w, dt)
                for i, y in zip(sel.tolist(), prod):
                    self.products[int(rows[i])] = y
        else:  # acc
            outs, done = [], []
            for r, mode in zip(rows.tolist(), f["mode"].tolist()):
                abc = self.acc_abc.get(r)
                if abc is None:
                    continue
                product = self.products[abc]
                prev = self.acc_value.get(self.acc_prev.get(r, -1))
                with np.errstate(all="ignore"):
                    value = product if prev is None else (prev + product).astype(product.dtype)
                self.acc_value[r] = value
                outs.append(value)
                done.append(r)
            if done:
                vals = np.stack(outs)
                done_rows = np.array(done)
                self._check_fp(done_rows, vals)
                self._outputs(done_rows, sem.to_planes(vals))

    def _c2c(self, rows, row) -> None:
        raise error_at(self.p, int(rows[0]), "C2C is not simulated yet (multi-chip runs come later); "
                                             "use --timing-only")

    # ---- SRAM ---------------------------------------------------------------------------------
    def _check_uninit(self) -> None:
        if self.allow_uninit or _OP["read"] not in self.a.fields:
            return
        rr, rf = self.a.fields[_OP["read"]]
        code = rf["a"]
        h, sl, b, off = (code >> 19) & 1, (code >> 13) & 63, (code >> 12) & 1, code & 0xFFF
        bad = (self.read_dep[rr] < 0) & ~self.valid[h, sl, b, off]
        if bad.any():
            i = np.nonzero(bad)[0]
            j = int(i[np.argmin(self.p.cycle[rr[i]])])
            self._violate(int(rr[j]), f"uninitialised SRAM read of {'E' if h[j] else 'W'}{int(sl[j])}.b{int(b[j])}"
                                      f"[{int(off[j])}]",
                          "nothing was written there and it holds no initial data; "
                          "--allow-uninit reads such words as zeros")
            self._raise_first()

    def _final_sram(self) -> None:
        if _OP["write"] not in self.a.fields:
            return
        wr, wf = self.a.fields[_OP["write"]]
        commit = self.p.cycle[wr] + self.a.delay[wr]
        order = np.lexsort((commit, wf["a"]))  # last write per word wins
        code = wf["a"][order]
        last = np.ones(len(order), bool)
        last[:-1] = code[1:] != code[:-1]
        sel = order[last]
        code = wf["a"][sel]
        h, sl, b, off = (code >> 19) & 1, (code >> 13) & 63, (code >> 12) & 1, code & 0xFFF
        self.sram[h, sl, b, off] = self.written[wr[sel]]
        self.valid[h, sl, b, off] = True
