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
from .units import UnitEngine, group_keys

_OP = {m: isa.TABLE[m].opcode for m in ("read", "write", "lw", "iw", "abc", "acc")}


def supported(a: Analysis) -> bool:
    """Whether the level engine can run this program."""
    unsupported = {isa.TABLE[m].opcode for m in ("gather", "scatter", "send", "receive", "deskew")}
    return not (set(a.fields) & unsupported)


class LevelEngine(UnitEngine):
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
        wrows = a.fields[_OP["write"]][0] if _OP["write"] in a.fields else np.zeros(0, np.int64)
        self.written = np.zeros((len(wrows), self.cfg.lanes), dtype=np.uint8)
        self.windex = np.full(n, -1, dtype=np.int64)  # write row -> its row of self.written
        self.windex[wrows] = np.arange(len(wrows))

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
        """Who feeds whom on each MXM plane, worked out with numpy: which loads
        each install takes, which install each abc uses, which product each acc
        takes (the k-th acc of a plane takes its k-th abc's), and which earlier
        acc of the same accumulator row it adds to.  Static, so checked here."""
        a, p, cfg = self.a, self.p, self.cfg
        n = self.n
        self.index = np.full(n, -1, dtype=np.int64)       # row -> index among rows of its opcode
        self.abc_iw = np.full(n, -1, dtype=np.int64)      # abc row -> iw row
        self.acc_abc = np.full(n, -1, dtype=np.int64)     # acc row -> abc row
        self.acc_prev = np.full(n, -1, dtype=np.int64)    # acc row -> earlier acc row it adds to
        self.iw_loads: dict[int, np.ndarray] = {}         # iw row -> lw rows, in buffer order
        self.iw_dtype: dict[int, str | None] = {}
        cons, prod = [], []
        get = {m: a.fields.get(_OP[m], (np.zeros(0, np.int64), None)) for m in ("lw", "iw", "abc", "acc")}
        for m, (rows, _) in get.items():
            self.index[rows] = np.arange(len(rows))
        if not any(len(r) for r, _ in get.values()):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        k_of = {isa.DTYPES["i8"]: chip.mxm_k(cfg, "i8"), isa.DTYPES["f16"]: chip.mxm_k(cfg, "f16")}
        plane_of = {m: (f["p"] if f is not None else np.zeros(0, np.int64)) for m, (_, f) in get.items()}
        for plane in range(cfg.mxm_planes):
            sel = {m: get[m][0][plane_of[m] == plane] for m in get}
            fsel = {m: ({k: v[plane_of[m] == plane] for k, v in get[m][1].items()} if get[m][1] is not None else {})
                    for m in get}
            lw, iw, abc, acc = sel["lw"], sel["iw"], sel["abc"], sel["acc"]
            # -- loads and installs, in effect order (loads first within a cycle)
            ev_rows = np.concatenate((lw, iw))
            ev_kind = np.concatenate((np.zeros(len(lw), np.int64), np.ones(len(iw), np.int64)))
            ev_e = p.cycle[ev_rows] + a.delay[ev_rows]
            order = np.lexsort((p.cycle[ev_rows], ev_kind, ev_e))
            ev_rows, ev_kind = ev_rows[order], ev_kind[order]
            is_iw = ev_kind == 1
            group = np.cumsum(is_iw) - is_iw                 # the install that takes a load
            iw_rows = ev_rows[is_iw]
            lw_rows = ev_rows[~is_iw]
            lw_group = group[~is_iw]
            lw_dt = np.zeros(len(lw_rows), np.int64)
            if len(lw_rows):
                lw_dt = (p.word[lw_rows] >> np.uint64(8) & np.uint64(7)).astype(np.int64)
                first = np.searchsorted(lw_group, lw_group, "left")
                rank = np.arange(len(lw_rows)) - first
                kmax = np.where(lw_dt == isa.DTYPES["i8"], k_of[isa.DTYPES["i8"]], k_of[isa.DTYPES["f16"]])
                for i in np.nonzero(lw_dt != lw_dt[first])[0][:1].tolist():
                    r = int(lw_rows[i])
                    self._violate(r, f"dtype mismatch: the weight buffer of mxm{plane} holds "
                                     f"{isa.DTYPE_NAMES[int(lw_dt[first[i]])]} rows, lw.{isa.DTYPE_NAMES[int(lw_dt[i])]} "
                                     f"adds {isa.DTYPE_NAMES[int(lw_dt[i])]}")
                for i in np.nonzero(rank >= kmax)[0][:1].tolist():
                    self._violate(int(lw_rows[i]), f"weight buffer of mxm{plane} holds {int(kmax[i])} rows "
                                                   f"already (K = {int(kmax[i])})")
            installed = lw_group < len(iw_rows)
            cons.append(iw_rows[lw_group[installed]])
            prod.append(lw_rows[installed])
            bounds = np.searchsorted(lw_group, np.arange(len(iw_rows) + 1), "left")
            for j, r in enumerate(iw_rows.tolist()):
                loads = lw_rows[bounds[j]:bounds[j + 1]]
                self.iw_loads[r] = loads
                self.iw_dtype[r] = isa.DTYPE_NAMES[int(lw_dt[bounds[j]])] if len(loads) else None
            # -- activations use the latest install that took effect by their issue
            if len(abc):
                abc_t = p.cycle[abc]
                iw_e = p.cycle[iw_rows] + a.delay[iw_rows]
                k = np.searchsorted(iw_e, abc_t, "right") - 1
                for i in np.nonzero(k < 0)[0][:1].tolist():
                    self._violate(int(abc[i]), f"no weights installed on mxm{plane}")
                ok = k >= 0
                self.abc_iw[abc[ok]] = iw_rows[k[ok]]
                abc_dt = fsel["abc"]["dt"]
                for i in np.nonzero(ok)[0].tolist():
                    wdt = self.iw_dtype[int(iw_rows[k[i]])]
                    dt = isa.DTYPE_NAMES[int(abc_dt[i])]
                    if wdt is not None and wdt != dt:
                        self._violate(int(abc[i]), f"dtype mismatch: mxm{plane} holds {wdt} weights, "
                                                   f"abc.{dt} streams {dt}")
                        break
                cons.append(abc[ok])
                prod.append(iw_rows[k[ok]])
            # -- the k-th acc of the plane takes the k-th product
            if len(acc):
                acc_t = p.cycle[acc]
                paired = min(len(acc), len(abc))
                for i in range(paired, min(paired + 1, len(acc))):
                    self._violate(int(acc[i]), f"no product ready on mxm{plane}")
                a_rows, b_rows = acc[:paired], abc[:paired]
                ready = p.cycle[b_rows] + a.delay[b_rows]
                for i in np.nonzero(ready > acc_t[:paired])[0][:1].tolist():
                    self._violate(int(a_rows[i]), f"no product ready on mxm{plane}")
                acc_dt = fsel["acc"]["dt"][:paired]
                abc_dt = fsel["abc"]["dt"][:paired] if paired else np.zeros(0, np.int64)
                want = np.where(abc_dt == isa.DTYPES["i8"], isa.DTYPES["i32"], isa.DTYPES["f32"])
                for i in np.nonzero(acc_dt != want)[0][:1].tolist():
                    wdt = "i8" if want[i] == isa.DTYPES["i32"] else "f16"
                    self._violate(int(a_rows[i]), f"acc.{isa.DTYPE_NAMES[int(acc_dt[i])]} on mxm{plane} whose "
                                                  f"weights are {wdt} (use acc.{isa.DTYPE_NAMES[int(want[i])]})")
                acc_row = fsel["acc"]["row"]
                for i in np.nonzero(acc_row >= cfg.mxm_acc_rows)[0][:1].tolist():
                    self._violate(int(acc[i]), f"accumulator row {int(acc_row[i])} does not exist (mxm{plane} has "
                                               f"{cfg.mxm_acc_rows})")
                self.acc_abc[a_rows] = b_rows
                cons.append(a_rows)
                prod.append(b_rows)
                # the previous acc of the same accumulator row, for mode 1
                order = np.lexsort((acc_t, acc_row))
                same = np.zeros(len(acc), bool)
                same[1:] = acc_row[order][1:] == acc_row[order][:-1]
                prev = np.where(same, np.roll(acc[order], 1), -1)
                mode = fsel["acc"]["mode"][order]
                prev = np.where(mode == 1, prev, -1)
                self.acc_prev[acc[order]] = prev
                has = prev >= 0
                cons.append(acc[order][has])
                prod.append(prev[has])
        return np.concatenate(cons).astype(np.int64), np.concatenate(prod).astype(np.int64)

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
        key = group_keys(self.p)
        order = np.lexsort((key, level))
        lv, k = level[order], key[order]
        cut = np.nonzero((lv[1:] != lv[:-1]) | (k[1:] != k[:-1]))[0] + 1
        starts = np.concatenate(([0], cut)).tolist()
        ends = np.concatenate((cut, [self.n])).tolist()
        self.lw_value: dict[str, np.ndarray] = {}    # dtype -> (loads, lanes), by load index
        self.weights: dict[int, np.ndarray] = {}     # iw row -> installed W
        self.products: dict[str, np.ndarray] = {}    # i32/f32 -> (abcs, lanes), by abc index
        self.acc_value: dict[str, np.ndarray] = {}   # i32/f32 -> (accs, lanes), by acc index
        ops = self.p.op[order]
        for s, e in zip(starts, ends):
            rows = order[s:e]
            row = isa.BY_OPCODE[int(ops[s])]
            getattr(self, "_" + row.unit)(rows, row)
        self._raise_first()
        self._final_sram()

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

    def _mem(self, rows, row) -> None:
        f = self._fields(rows, row)
        code = f["a"]
        h, sl, b, off = (code >> 19) & 1, (code >> 13) & 63, (code >> 12) & 1, code & 0xFFF
        if row.mnemonic == "read":
            dep = self.read_dep[rows]
            vals = self.sram[h, sl, b, off]  # initial contents (SRAM is only written at the end)
            has = dep >= 0
            if has.any():
                vals[has] = self.written[self.windex[dep[has]]]
            self._outputs(rows, vals[:, None, :])
        else:  # write: remember the word; SRAM itself is written at the end
            self.written[self.windex[rows]] = self._inputs(rows)[:, 0]

    def _mxm(self, rows, row) -> None:
        mn = row.mnemonic
        f = self._fields(rows, row)
        lanes = self.cfg.lanes
        if mn == "lw":
            dt = isa.DTYPE_NAMES[int(f["dt"][0])]
            store = self.lw_value.get(dt)
            if store is None:
                store = self.lw_value[dt] = np.zeros((len(self.a.fields[_OP["lw"]][0]), lanes), sem.NP[dt])
            store[self.index[rows]] = sem.from_planes(self._inputs(rows), dt)
        elif mn == "iw":
            for r in rows.tolist():
                dt = self.iw_dtype.get(r)
                if dt is None:  # empty: zero weights, sized when used
                    continue
                w = np.zeros((chip.mxm_k(self.cfg, dt), lanes), dtype=sem.NP[dt])
                loads = self.iw_loads[r]
                w[:len(loads)] = self.lw_value[dt][self.index[loads]]
                self.weights[r] = w
        elif mn == "abc":
            dt = isa.DTYPE_NAMES[int(f["dt"][0])]
            out = "i32" if dt == "i8" else "f32"
            store = self.products.get(out)
            if store is None:
                store = self.products[out] = np.zeros((len(self.a.fields[_OP["abc"]][0]), lanes), sem.NP[out])
            xs = sem.from_planes(self._inputs(rows), dt)
            k = chip.mxm_k(self.cfg, dt)
            iws = self.abc_iw[rows]
            order = np.argsort(iws, kind="stable")
            cut = np.nonzero(np.diff(iws[order]))[0] + 1
            for sel in np.split(order, cut):
                iw = int(iws[sel[0]])
                if iw < 0:
                    continue
                w = self.weights.get(iw)
                if w is None:
                    w = np.zeros((k, lanes), dtype=sem.NP[dt])
                store[self.index[rows[sel]]] = sem.matmul(xs[sel, :k], w, dt)
        else:  # acc
            ok = self.acc_abc[rows] >= 0
            rows = rows[ok]
            if not len(rows):
                return
            dt = isa.DTYPE_NAMES[int(f["dt"][0])]
            store = self.acc_value.get(dt)
            if store is None:
                store = self.acc_value[dt] = np.zeros((len(self.a.fields[_OP["acc"]][0]), lanes), sem.NP[dt])
            value = self.products[dt][self.index[self.acc_abc[rows]]].copy()
            prev = self.acc_prev[rows]
            has = prev >= 0
            if has.any():
                with np.errstate(all="ignore"):
                    value[has] = value[has] + store[self.index[prev[has]]]
            store[self.index[rows]] = value
            self._check_fp(rows, value)
            self._outputs(rows, sem.to_planes(value))

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
        self.sram[h, sl, b, off] = self.written[self.windex[wr[sel]]]
        self.valid[h, sl, b, off] = True
