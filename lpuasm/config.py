"""Chip configurations: geometry, queues and the timing assumptions of one LPU.

A :class:`ChipConfig` is plain data.  Two are built in (``tsp-v1``, the published
TSP v1 geometry, and ``tiny``, a small chip for fast tests); others load from a
TOML or JSON file whose keys are the field names below.  Every image records the
:attr:`ChipConfig.hash` of the configuration it was assembled for, and the loader
refuses an image built for another one.

Groq never published per-instruction latencies: every number in ``LATENCIES`` is
our assumption, documented in docs/timing-model.md.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class ConfigError(Exception):
    """A chip configuration that cannot be loaded or is inconsistent."""


@dataclass(frozen=True)
class Latency:
    """Timing of one latency class: ``delay`` cycles from issue until the result
    leaves the unit, and ``skew`` extra cycles per superlane (superlane k acts at
    issue + k * skew)."""

    delay: int
    skew: int = 1


# Latency classes named by the instruction table (its ``latency`` column).
DEFAULT_LATENCIES: dict[str, Latency] = {
    "icu": Latency(0, 0),
    "mem.read": Latency(2),
    "mem.write": Latency(1),
    "mem.gather": Latency(4),
    "mem.scatter": Latency(3),
    "vxm.alu": Latency(2),
    "vxm.transcendental": Latency(6),
    "vxm.convert": Latency(2),
    "mxm.load": Latency(1),
    "mxm.install": Latency(4),
    "mxm.activation": Latency(4),
    "mxm.accumulate": Latency(6),
    "sxm.shift": Latency(3),
    "sxm.permute": Latency(5),
    "sxm.transpose": Latency(16),
    "c2c.link": Latency(217),
}


@dataclass(frozen=True)
class ChipConfig:
    """Geometry, clock and latency table of one simulated LPU."""

    name: str
    superlanes: int
    lanes_per_superlane: int
    mem_slices_per_hemisphere: int
    banks_per_slice: int
    words_per_bank: int
    streams_per_direction: int
    mxm_planes: int
    mxm_acc_rows: int
    vxm_alus_per_lane: int
    sxm_per_hemisphere: int
    c2c_links: int
    clock_hz: float
    latencies: dict[str, Latency] = field(default_factory=lambda: dict(DEFAULT_LATENCIES))

    # ---- derived geometry -------------------------------------------------
    @property
    def lanes(self) -> int:
        """Vector length in bytes: superlanes x lanes per superlane."""
        return self.superlanes * self.lanes_per_superlane

    @property
    def mem_slices(self) -> int:
        return 2 * self.mem_slices_per_hemisphere

    @property
    def mxm_plane_size(self) -> int:
        """MXM planes are square, lanes x lanes."""
        return self.lanes

    @property
    def word_bytes(self) -> int:
        """An SRAM word is one vector: one byte per lane."""
        return self.lanes

    @property
    def sram_bytes(self) -> int:
        return self.mem_slices * self.banks_per_slice * self.words_per_bank * self.lanes

    @property
    def vxm_alus(self) -> int:
        return self.vxm_alus_per_lane * self.lanes

    @functools.cached_property
    def queues(self) -> tuple[str, ...]:
        """Names of the instruction queues, in queue-id order (see docs/language.md)."""
        n = self.mem_slices_per_hemisphere
        return ("icu", *(f"w{i}" for i in range(n)), *(f"e{i}" for i in range(n)),
                *(f"alu{i}" for i in range(self.vxm_alus_per_lane)), *(f"mxm{i}" for i in range(self.mxm_planes)),
                "sxmw", "sxme", *(f"c2c{i}" for i in range(self.c2c_links)))

    @functools.cached_property
    def _queue_ids(self) -> dict[str, int]:
        return {q: i for i, q in enumerate(self.queues)}

    def queue_id(self, name: str) -> int | None:
        """The id of queue *name* (case-insensitive), or None."""
        return self._queue_ids.get(name.lower())

    def unit_of_queue(self, qid: int) -> str:
        """The unit kind ('icu', 'mem', 'vxm', 'mxm', 'sxm', 'c2c') of queue *qid*."""
        name = self.queues[qid]
        for prefix, unit in (("alu", "vxm"), ("mxm", "mxm"), ("sxm", "sxm"), ("c2c", "c2c")):
            if name.startswith(prefix):
                return unit
        return "icu" if name == "icu" else "mem"

    def latency(self, key: str) -> Latency:
        try:
            return self.latencies[key]
        except KeyError:
            raise ConfigError(f"chip config '{self.name}' has no latency for '{key}'") from None

    # ---- identity ---------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["latencies"] = {k: {"delay": v.delay, "skew": v.skew} for k, v in sorted(self.latencies.items())}
        return d

    @functools.cached_property
    def hash(self) -> bytes:
        """16-byte digest of everything except the name: two configs that build
        the same chip share a hash."""
        d = self.to_dict()
        del d["name"]
        blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).digest()[:16]

    def summary(self) -> str:
        return (
            f"{self.name}: {self.lanes} lanes ({self.superlanes}x{self.lanes_per_superlane}), "
            f"{self.mem_slices} MEM slices x {self.banks_per_slice} banks x {self.words_per_bank} words "
            f"= {self.sram_bytes / 2**20:.1f} MiB, {self.streams_per_direction} streams/direction, "
            f"{self.mxm_planes} MXM planes, {self.vxm_alus_per_lane} ALUs/lane, "
            f"{self.clock_hz / 1e6:g} MHz"
        )


# Limits imposed by the instruction encoding (see isa.py); configs must fit them.
ENCODING_LIMITS = {
    "mem_slices_per_hemisphere": 64,
    "banks_per_slice": 2,
    "words_per_bank": 4096,
    "streams_per_direction": 32,
    "mxm_planes": 4,
    "mxm_acc_rows": 1024,
    "vxm_alus_per_lane": 16,
    "sxm_per_hemisphere": 1,
    "c2c_links": 16,
}


def _validate(cfg: ChipConfig) -> ChipConfig:
    ints = [f.name for f in dataclasses.fields(cfg) if f.type in ("int", int)]
    for name in ints:
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"chip config '{cfg.name}': {name} must be a positive integer, got {value!r}")
    for name, limit in ENCODING_LIMITS.items():
        if getattr(cfg, name) > limit:
            raise ConfigError(f"chip config '{cfg.name}': {name} = {getattr(cfg, name)} exceeds the encoding limit {limit}")
    if cfg.mxm_planes % 2:
        raise ConfigError(f"chip config '{cfg.name}': mxm_planes must be even (half of them sit at each edge)")
    if cfg.lanes_per_superlane != 16:
        raise ConfigError(f"chip config '{cfg.name}': lanes_per_superlane must be 16 (the SXM transposes 16x16 blocks)")
    if cfg.lanes > 1024:
        raise ConfigError(f"chip config '{cfg.name}': {cfg.lanes} lanes exceeds the encoding limit 1024")
    if not cfg.clock_hz > 0:
        raise ConfigError(f"chip config '{cfg.name}': clock_hz must be positive")
    missing = sorted(set(DEFAULT_LATENCIES) - set(cfg.latencies))
    if missing:
        raise ConfigError(f"chip config '{cfg.name}': latency table lacks {', '.join(missing)}")
    for key, lat in cfg.latencies.items():
        if lat.delay < 0 or lat.skew < 0:
            raise ConfigError(f"chip config '{cfg.name}': latency '{key}' must not be negative")
    return cfg


TSP_V1 = _validate(ChipConfig(
    name="tsp-v1",
    superlanes=20,
    lanes_per_superlane=16,
    mem_slices_per_hemisphere=44,
    banks_per_slice=2,
    words_per_bank=4096,
    streams_per_direction=32,
    mxm_planes=4,
    mxm_acc_rows=320,
    vxm_alus_per_lane=16,
    sxm_per_hemisphere=1,
    c2c_links=16,
    clock_hz=900e6,
))

TINY = _validate(ChipConfig(
    name="tiny",
    superlanes=2,
    lanes_per_superlane=16,
    mem_slices_per_hemisphere=8,
    banks_per_slice=2,
    words_per_bank=256,
    streams_per_direction=16,
    mxm_planes=4,
    mxm_acc_rows=32,
    vxm_alus_per_lane=4,
    sxm_per_hemisphere=1,
    c2c_links=2,
    clock_hz=900e6,
))

BUILTIN = {c.name: c for c in (TSP_V1, TINY)}


def from_dict(data: dict, default_name: str = "custom") -> ChipConfig:
    """Build a config from a mapping; missing keys are taken from ``base``
    (a built-in config name, default ``tsp-v1``)."""
    data = dict(data)
    base = BUILTIN.get(data.pop("base", "tsp-v1"))
    if base is None:
        raise ConfigError(f"unknown base config; choose one of {', '.join(BUILTIN)}")
    known = {f.name for f in dataclasses.fields(ChipConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown chip config key(s): {', '.join(unknown)}")
    changed = bool(data)
    latencies = dict(base.latencies)
    for key, value in data.pop("latencies", {}).items():
        if key not in DEFAULT_LATENCIES:
            raise ConfigError(f"unknown latency class '{key}'")
        if isinstance(value, int):
            value = {"delay": value}
        try:
            latencies[key] = Latency(int(value["delay"]), int(value.get("skew", 1)))
        except (TypeError, KeyError, ValueError):
            raise ConfigError(f"latency '{key}' must be an integer or {{delay = N, skew = M}}") from None
    merged = dataclasses.asdict(base) | data
    merged["latencies"] = latencies
    merged.setdefault("name", default_name)
    if merged["name"] == base.name and changed:
        merged["name"] = default_name
    try:
        return _validate(ChipConfig(**merged))
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def load(spec: str | None) -> ChipConfig:
    """A built-in config by name, or one loaded from a .toml/.json file path."""
    if spec is None:
        return TSP_V1
    if spec in BUILTIN:
        return BUILTIN[spec]
    path = Path(spec)
    if not path.suffix:
        raise ConfigError(f"unknown chip config '{spec}'; choose one of {', '.join(BUILTIN)} or give a .toml/.json file")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read chip config {spec}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{spec}: not valid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{spec}: expected a table of config keys")
    try:
        return from_dict(data, default_name=path.stem)
    except ConfigError as exc:
        raise ConfigError(f"{spec}: {exc}") from None
