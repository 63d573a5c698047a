"""How shapes, ops and shortcuts are written, once for every view (diagrams, tables, CLI, app),
with the one reading of a module's spatial settings and the one way user text is made safe for
Markdown and for file names."""
from __future__ import annotations

import math
import re
from typing import Any, Iterable, Sequence

from explorer.vocab import ATTENTION_TEXT, IO_KINDS, SHORTCUT_TEXT

_NAMES = {"bn": "BN", "relu": "ReLU", "add": "+", "flatten": "flatten"}
MARKDOWN_SPECIALS = "\\`*_{}[]()#+-.!|<>~&:$"  # Markdown's and HTML's own characters
# The characters that can start a link, an image, HTML, code or emphasis: enough for text read
# off a machine (device names, host names, versions), which keeps its parentheses and dashes.
INLINE_SPECIALS = "\\`*_[]<>!~|$"
WORD_JOINER = "\u2060"
# Where GitHub-flavoured Markdown starts an autolink: "scheme:" of a web or mail address, "www.",
# the "@" of an e-mail address; the word joiner goes before the last character matched.
AUTOLINK = re.compile(r"(?i)(?:\b(?:https?|ftp|mailto|xmpp):)|(?:\bwww\.)|(?:[\w.+-]@)")


def fmt_shape(shape: Iterable[int]) -> str:
    """(64, 56, 56) -> "64x56x56"."""
    return "x".join(str(s) for s in shape)


# -- a conv's or pool's spatial settings (int or (h, w), as torch stores them) ---------------------
def pair(v: Any) -> tuple:
    """An int or an (h, w) sequence as (h, w): 3 -> (3, 3), (3, 1) -> (3, 1)."""
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def side(v: Any) -> int:
    """The first side of a setting, as an int: (3, 3) -> 3, 2 -> 2 (the layers here are square)."""
    return int(pair(v)[0])


def square(v: Any) -> Any:
    """A square setting as one int, as torchvision writes it: (3, 3) -> 3; (3, 1) stays (3, 1)."""
    h, w = pair(v)
    return h if h == w else (h, w)


# -- user text -------------------------------------------------------------------------------------
def escape_markdown(text: str, specials: str = MARKDOWN_SPECIALS) -> str:
    """User text shown through Markdown: one line, every Markdown/HTML character escaped, and no
    web address or e-mail address that the renderer would turn into a link (escapes do not stop
    its autolinks; an invisible word joiner does)."""
    line = AUTOLINK.sub(lambda m: m.group(0)[:-1] + WORD_JOINER + m.group(0)[-1], " ".join(text.split()))
    return "".join("\\" + ch if ch in specials else ch for ch in line)


def file_stem(name: str) -> str:
    """A name as a file name stem: letters, digits, '-', '_' and '.', never empty ("resnet")."""
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return keep.strip("._") or "resnet"


def describe(kind: str, mod: Any, shape: tuple[int, ...]) -> tuple[str, str]:
    """(label, compact form) of one traced op, read off its module: ("conv 3x3, 64, /2", "3x3,64,/2")."""
    if kind == "conv" and len(mod.kernel_size) == 1:  # ECA's 1-D conv across the channels
        k = mod.kernel_size[0]
        return f"1-D conv k={k} across channels", f"conv1d k={k}"
    if kind == "conv":
        k, s = side(mod.kernel_size), side(mod.stride)
        extra = (f", /{s}" if s > 1 else "") + (f", groups {mod.groups}" if mod.groups > 1 else "")
        short = f"{k}x{k},{mod.out_channels}" + (f",/{s}" if s > 1 else "")
        return f"conv {k}x{k}, {mod.out_channels}{extra}", short
    if kind == "maxpool":
        k, s = side(mod.kernel_size), side(mod.stride)
        return f"max pool {k}x{k}" + (f", /{s}" if s > 1 else ""), f"maxpool {k}x{k}"
    if kind == "avgpool":
        return "global avg pool", "avgpool"
    if kind == "pool":  # a local average pool (the ResNet-D shortcut's)
        k, s = side(mod.kernel_size), side(mod.stride)
        return f"avg pool {k}x{k}" + (f", /{s}" if s > 1 else ""), f"avgpool {k}x{k}" + (f",/{s}" if s > 1 else "")
    if kind == "squeeze":
        return "squeeze (global mean)", "mean"
    if kind == "sigmoid":
        return "sigmoid gate", "sigmoid"
    if kind == "mul":
        return "x gate (channel scale)", "x gate"
    if kind == "fc":
        return f"fc {mod.in_features} -> {mod.out_features}", f"fc {mod.out_features}"
    if kind == "zero_pad":
        sub = f", /{mod.stride}" if mod.stride > 1 else ""
        word = SHORTCUT_TEXT["zero_pad"].word
        return f"{word} {mod.in_ch} -> {mod.out_ch} ch{sub}", word
    if kind in IO_KINDS:
        return f"{kind} {fmt_shape(shape)}", kind
    name = _NAMES.get(kind, kind)
    return name, name


def shortcut_reason(kind: str, in_shape: tuple, out_shape: tuple, option: str, pooled: bool = False) -> str:
    """Why a unit's shortcut is what it is, in the papers' terms (`pooled`: an average pool before
    the projection, ResNet-D)."""
    (c_in, h_in, _), (c_out, h_out, _) = in_shape, out_shape
    diffs = []
    if c_in != c_out:
        diffs.append(f"channels {c_in} -> {c_out}")
    if h_in != h_out:
        diffs.append(f"size {h_in} -> {h_out}")
    if not diffs:
        if kind == "projection":
            return f"shapes match, but option {option} projects every shortcut"
        return "shapes match: x is added back unchanged"
    what = " and ".join(diffs)
    if kind == "zero_pad":
        return f"{what}: option A subsamples x and pads it with zero channels (no parameters)"
    if pooled and h_in != h_out:
        share = f"1 in {(h_in // h_out) ** 2}" if h_in % h_out == 0 else "some"
        return (f"{what}: x cannot be added as is; a strided 1x1 conv would read only {share} of x's "
                "positions, so x is average-pooled first and a 1x1 conv W_s projects it "
                "(ResNet-D: y = F(x) + W_s avgpool(x))")
    return f"{what}: x cannot be added as is, so a 1x1 conv W_s projects it (y = F(x) + W_s x)"


def attention_kind(ops: Iterable[Any]) -> str:
    """"se", "eca" or "none": the channel attention among one unit's traced ops (role
    "attention"); squeeze-excitation has a ReLU between its two 1x1 convs, ECA one 1-D conv."""
    mine = [o for o in ops if o.role == "attention"]
    if not mine:
        return "none"
    return "se" if any(o.kind == "relu" for o in mine) else "eca"


def attention_text(ops: Iterable[Any], short: bool = False) -> str:
    """One unit's channel attention as written in diffs ("squeeze-excitation, 256 -> 16 -> 256")
    or on a unit box (`short`: "SE 256-16-256", "ECA k=5"); "" without attention."""
    ops = list(ops)
    kind = attention_kind(ops)
    if kind == "none":
        return ""
    name, tag = ATTENTION_TEXT[kind]
    convs = [o for o in ops if o.role == "attention" and o.kind == "conv"]
    if kind == "se":
        c, rd = convs[0].in_shapes[0][0], convs[0].shape[0]
        return f"{tag} {c}-{rd}-{c}" if short else f"{name}, {c} -> {rd} -> {c}"
    k = convs[0].params  # the ECA conv is 1 -> 1 channel without bias: its parameters are its kernel
    return f"{tag} k={k}" if short else f"{name}, 1-D conv kernel {k}"


_COUNT_WORDS = {1: "one", 2: "two", 3: "three"}


def stem_text(convs: Sequence[Any]) -> str:
    """A stem's traced convs in words: "7x7 conv (64)", "three 3x3 convs (32-32-64, deep)",
    "three 3x3 convs (24-32-64, deep, tiered)"."""
    if not convs:
        return "no conv"
    widths = "-".join(str(n.shape[0]) for n in convs)
    k = convs[0].kernel
    if len(convs) == 1:
        return f"{k}x{k} conv ({widths})"
    tiered = ", tiered" if convs[0].shape[0] != convs[1].shape[0] else ""
    return f"{_COUNT_WORDS.get(len(convs), len(convs))} {k}x{k} convs ({widths}, deep{tiered})"


def distinct_labels(names: Sequence[str], repeat: str = "{name} #{n}") -> list[str]:
    """Names told apart: the n-th repeat of a name becomes `repeat` (e.g. "resnet20 #2")."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else repeat.format(name=name, n=seen[name]))
    return out


# -- numbers in engineering units: three significant figures, thousands separators, no exponent --
def fmt_num(x: float) -> str:
    """A measured or derived number to three significant figures: 1.2715 -> "1.27", 2980.4 -> "2,980"."""
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 99.95:
        return f"{x:,.0f}"
    if a >= 9.995:
        return f"{x:.1f}"
    if a >= 0.9995:
        return f"{x:.2f}"
    return f"{x:.{1 - math.floor(math.log10(a))}f}"  # two significant figures, never an exponent


def fmt_ms(ms: float) -> str:
    """A duration given in milliseconds, in the unit that reads best: "2.98 s", "57.3 ms", "812 µs"."""
    a = abs(ms)  # thresholds just under a unit step, so 999.9 ms reads "1.00 s", not "1,000 ms"
    if a >= 999.5:
        return f"{fmt_num(ms / 1000)} s"
    if a >= 0.9995 or a == 0:
        return f"{fmt_num(ms)} ms"
    if a >= 0.9995e-3:
        return f"{fmt_num(ms * 1000)} µs"
    return f"{fmt_num(ms * 1e6)} ns"


def fmt_duration(seconds: float) -> str:
    """Wall time as a person reads it: '0.52 s', '38.2 s', '1 m 30 s', '1 h 05 m'."""
    if seconds < 59.5:
        return f"{fmt_num(seconds)} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} m"


def fmt_rate(per_s: float, unit: str = "img/s") -> str:
    """A rate: "0.34 img/s", "57.3 img/s", "1,234 img/s"."""
    return f"{fmt_num(per_s)} {unit}"


_SHORT = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def fmt_count(n: int | float, short: bool = False) -> str:
    """A count with thousands separators ("51,380,224"), or short ("51.4 M", "812 k", "25")."""
    if short:
        for scale, suffix in _SHORT:
            if abs(n) >= 0.9995 * scale:
                return f"{fmt_num(n / scale)} {suffix}"
        return fmt_num(n) if isinstance(n, float) else f"{n:,}"
    return f"{round(n):,}"


_BINARY = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def fmt_bytes(n: int | float) -> str:
    """A size in binary units: "85.6 MiB", "1.23 GiB", "512 B"."""
    for scale, suffix in _BINARY:
        if abs(n) >= 0.9995 * scale:
            return f"{fmt_num(n / scale)} {suffix}"
    return f"{round(n):,} B"


def fmt_share(f: float) -> str:
    """A fraction as a percentage: 0.1234 -> "12.3 %"."""
    return f"{fmt_num(100 * f)} %"
