#!/usr/bin/env python3
"""The benchmark's raw results as a markdown report and an SVG chart.

    bench/report.py [--out-md FILE] [--out-svg FILE] [--title TEXT]
                    [--commit SHA] [--date DATE] [--target-devices N] CSV...
    bench/report.py --self-test

Without --out-md the markdown goes to stdout. Standard library only, so it
runs wherever the VMs' results are copied back to.

Each CSV starts with a header naming its columns (any order, extra columns
ignored). A line equal to a header starts a new section, so files joined
with cat still read; blank lines and lines starting with '#' are skipped.
The header tells the two kinds of rows apart:

  kernel,peer,workload,devices,rep,iops,mibps,lat_p50_us,lat_p99_us,cpu_us_per_io
      one repetition of one fio cell; with devices > 1 the producer has
      already summed IOPS and MiB/s over the devices and taken the median
      of their latencies
  kernel,process,devices,rss_kib[,allowance_kib]
      one sample of the resident set of one process (glidefsd,
      glidefs-worker) under load; allowance_kib is the worker's state
      table, missing means 0

An empty field means not measured. Every figure in the report is the
median over the repetitions that measured it.
"""

import argparse
import csv
import datetime
import math
import os
import re
import statistics
import sys
import tempfile
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

BENCH_COLS = ("kernel", "peer", "workload", "devices", "rep", "iops", "mibps",
              "lat_p50_us", "lat_p99_us", "cpu_us_per_io")
FIGURES = BENCH_COLS[5:]
RSS_COLS = ("kernel", "process", "devices", "rss_kib")

# Known names come first in this order, whatever order the runs wrote them
# in, so that reports of different runs line up; unknown ones follow in
# the order first seen.
PEERS = ("zero-copy", "user-copy", "copy", "null", "loop", "null_blk",
         "glidefs-s3", "s3backer")
WORKLOADS = ("randread-4k-qd1", "randread-4k-qd32", "randwrite-4k-qd1",
             "randwrite-4k-qd32", "randrw-4k-qd1", "randrw-4k-qd32",
             "seqread-128k-qd32", "seqwrite-128k-qd32", "coldread-1m",
             "flushwrite-1m")
REFERENCE = {"zero-copy": "loop", "user-copy": "loop", "copy": "loop",
             "null": "loop", "loop": "null_blk", "glidefs-s3": "s3backer"}

# (subject, reference, workload, minimum ratio of their main figures)
RATIO_TARGETS = (
    ("zero-copy", "user-copy", "randread-4k-qd32", 1.3),
    ("zero-copy", "user-copy", "randwrite-4k-qd32", 1.3),
    ("zero-copy", "user-copy", "randrw-4k-qd32", 1.3),
    ("zero-copy", "user-copy", "seqread-128k-qd32", 1.5),
    ("zero-copy", "user-copy", "seqwrite-128k-qd32", 1.5),
    ("zero-copy", "loop", "randread-4k-qd32", 0.9),
    ("zero-copy", "loop", "randwrite-4k-qd32", 0.9),
    ("zero-copy", "loop", "seqread-128k-qd32", 0.9),
    ("zero-copy", "loop", "seqwrite-128k-qd32", 0.9),
    ("glidefs-s3", "s3backer", "coldread-1m", 2.0),
    ("glidefs-s3", "s3backer", "flushwrite-1m", 2.0),
)
SUPERVISOR, WORKER = "glidefsd", "glidefs-worker"
WORKER_BASE_KIB = 64 * 1024
SUPERVISOR_LIMIT_KIB = 16 * 1024
WORKER_TARGET_DEVICES = 4

COLOURS = {"zero-copy": "#1b9e77", "user-copy": "#7570b3", "copy": "#d95f02",
           "null": "#e7298a", "loop": "#555555", "null_blk": "#b0b0b0",
           "glidefs-s3": "#66a61e", "s3backer": "#e6ab02"}
SPARE_COLOURS = ("#1f78b4", "#a6761d", "#fb9a99", "#6a3d9a", "#b15928",
                 "#33a02c", "#ff7f00", "#cab2d6")
DASH = "–"  # what the report prints for "not measured"


class ReportError(Exception):
    pass


def ordered(seen, known):
    return [x for x in known if x in seen] + [x for x in seen if x not in known]


class Results:
    def __init__(self):
        self.cells = {}  # (kernel, peer, workload, devices) -> {figure: [values]}
        self.reps = {}   # same key -> rows read
        self.kernels, self.peers, self.workloads = [], [], []
        self.rss = []    # dicts: kernel, process, devices, rss, allowance

    def _note(self, kernel, peer=None, workload=None):
        for lst, v in ((self.kernels, kernel), (self.peers, peer),
                       (self.workloads, workload)):
            if v is not None and v not in lst:
                lst.append(v)

    def add_bench(self, row):
        key = (row["kernel"], row["peer"], row["workload"], row["devices"])
        self._note(*key[:3])
        cell = self.cells.setdefault(key, {f: [] for f in FIGURES})
        for f in FIGURES:
            if row[f] is not None:
                cell[f].append(row[f])
        self.reps[key] = self.reps.get(key, 0) + 1

    def add_rss(self, row):
        self._note(row["kernel"])
        self.rss.append(row)

    def peer_order(self):
        return ordered(self.peers, PEERS)

    def workload_order(self):
        return ordered(self.workloads, WORKLOADS)

    def devices(self, kernel):
        return sorted({k[3] for k in self.cells if k[0] == kernel})

    def median(self, kernel, peer, workload, devices, figure):
        cell = self.cells.get((kernel, peer, workload, devices))
        if not cell or not cell[figure]:
            return None
        return statistics.median(cell[figure])

    def metric(self, workload):
        """The figure a workload is judged by: IOPS for small blocks, MiB/s
        for large ones, where throughput is what the workload exists for."""
        m = re.search(r"(?:^|-)(\d+)([kmg])(?:-|$)", workload, re.I)
        if m:
            kib = int(m.group(1)) * {"k": 1, "m": 1024, "g": 1 << 20}[m.group(2).lower()]
            return "iops" if kib < 64 else "mibps"
        # No block size in the name: judge by whichever figure was measured.
        has_iops = any(c["iops"] for k, c in self.cells.items() if k[2] == workload)
        return "iops" if has_iops else "mibps"

    def main_figure(self, kernel, peer, workload, devices):
        return self.median(kernel, peer, workload, devices, self.metric(workload))

    def ratio(self, kernel, peer, workload, devices, ref, ref_kernel=None):
        a = self.main_figure(kernel, peer, workload, devices)
        b = self.main_figure(ref_kernel or kernel, ref, workload, devices)
        if a is None or not b:
            return None
        return a / b


def number(text, where, column):
    if text == "":
        return None
    try:
        v = float(text)
    except ValueError:
        raise ReportError(f"{where}: {column} is not a number: {text!r}")
    if not math.isfinite(v):
        raise ReportError(f"{where}: {column} is not finite: {text!r}")
    return v


def integer(text, where, column):
    try:
        return int(text)
    except ValueError:
        raise ReportError(f"{where}: {column} must be a whole number: {text!r}")


def load(paths):
    res = Results()
    for path in paths:
        try:
            f = open(path, newline="", encoding="utf-8-sig")
        except OSError as e:
            raise ReportError(f"{path}: {e.strerror}")
        with f:
            # Keep physical line numbers for the error messages.
            lines = ((n, l) for n, l in enumerate(f, 1)
                     if l.strip() and not l.lstrip().startswith("#"))
            kind, index = None, None
            for n, line in lines:
                fields = [x.strip() for x in next(csv.reader([line]))]
                names = [x.lower() for x in fields]
                if set(BENCH_COLS) <= set(names):
                    kind, index = "bench", {c: names.index(c) for c in names}
                    continue
                if set(RSS_COLS) <= set(names):
                    kind, index = "rss", {c: names.index(c) for c in names}
                    continue
                where = f"{path}:{n}"
                if kind is None:
                    raise ReportError(f"{where}: expected a header, either "
                                      f"{','.join(BENCH_COLS)} or {','.join(RSS_COLS)}")
                if len(fields) != len(index):
                    raise ReportError(f"{where}: {len(fields)} fields, the header has {len(index)}")
                get = lambda c: fields[index[c]] if c in index else ""
                for c in ("kernel", "devices") + (("peer", "workload") if kind == "bench" else ("process",)):
                    if get(c) == "":
                        raise ReportError(f"{where}: {c} is empty")
                if kind == "bench":
                    row = {c: get(c) for c in ("kernel", "peer", "workload", "rep")}
                    row["devices"] = integer(get("devices"), where, "devices")
                    for c in FIGURES:
                        row[c] = number(get(c), where, c)
                    res.add_bench(row)
                else:
                    rss = number(get("rss_kib"), where, "rss_kib")
                    if rss is None:
                        continue  # a process that was not there to measure
                    res.add_rss({"kernel": get("kernel"), "process": get("process"),
                                 "devices": integer(get("devices"), where, "devices"),
                                 "rss": rss,
                                 "allowance": number(get("allowance_kib"), where, "allowance_kib") or 0.0})
    return res


# ---- formatting ----

def fmt_num(v):
    if v is None:
        return DASH
    a = abs(v)
    return f"{v:.2f}" if a < 10 else f"{v:.1f}" if a < 100 else f"{v:.0f}"


def fmt_figure(v, metric):
    if v is None:
        return DASH
    return f"{round(v):,} IOPS" if metric == "iops" else f"{fmt_num(v)} MiB/s"


def fmt_latency(us):
    if us is None:
        return DASH
    if us >= 10000:
        return f"{fmt_num(us / 1000)} ms"
    return f"{fmt_num(us)} µs"


def fmt_ratio(r):
    return DASH if r is None else f"{r:.2f}×"


def fmt_target_ratio(r, minimum):
    # 1.497 printed as 1.50× next to "missed" would read as a bug: show
    # as many decimals as it takes for the figure to agree with the verdict.
    for digits in range(2, 7):
        if (round(r, digits) >= minimum) == (r >= minimum):
            break
    return f"{r:.{digits}f}×"


def fmt_mib(kib):
    return f"{kib / 1024:.1f} MiB"


def md_cell(text):
    return str(text).replace("|", "\\|")


def md_table(headers, rows, right=()):
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return out


def plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---- targets ----

class Target:
    def __init__(self, label, workload, kernel, measured, result, ratio=None,
                 subject=None, reference=None, ref_kernel=None):
        self.label, self.workload, self.kernel = label, workload, kernel
        self.measured, self.result, self.ratio = measured, result, ratio
        self.subject, self.reference, self.ref_kernel = subject, reference, ref_kernel

    def kernels_text(self):
        if self.kernel is None:
            return DASH
        if self.ref_kernel and self.ref_kernel != self.kernel:
            return f"{self.kernel} vs {self.ref_kernel} (crosses kernels)"
        return self.kernel


def ratio_targets(res, devices):
    out = []
    for subject, ref, workload, minimum in RATIO_TARGETS:
        label = f"{subject} ≥ {minimum:g}× {ref}"

        def on(peer, usable):
            return [k for k in res.kernels if usable(res.main_figure(k, peer, workload, devices))]
        mk = lambda **kw: Target(label, workload, subject=subject, reference=ref, **kw)
        # A reference of 0 is no reference: nothing divides by it.
        subject_kernels = on(subject, lambda v: v is not None)
        ref_kernels = on(ref, bool)
        if not subject_kernels:
            out.append(mk(kernel=None, measured=f"no {subject}", result="not measured"))
            continue
        for k in subject_kernels:
            # The same kernel when it has both: a ratio across kernels also
            # measures the kernels, so it is only a fallback (zero-copy
            # needs a kernel the other transports' rows may not run).
            rk = k if k in ref_kernels else (ref_kernels[0] if ref_kernels else None)
            if rk is None:
                out.append(mk(kernel=k, measured=f"no {ref}", result="not measured"))
                continue
            r = res.ratio(k, subject, workload, devices, ref, rk)
            out.append(mk(kernel=k, ref_kernel=rk, ratio=r, measured=fmt_target_ratio(r, minimum),
                          result="met" if r >= minimum else "missed"))
    return out


def rss_targets(res):
    out = []
    kernels = [k for k in res.kernels if any(r["kernel"] == k for r in res.rss)]
    worker_label = f"each {WORKER} < 64 MiB + its state table, {WORKER_TARGET_DEVICES} devices"
    sup_label = f"{SUPERVISOR} < {SUPERVISOR_LIMIT_KIB // 1024} MiB"
    if not kernels:
        return [Target(worker_label, DASH, None, "no RSS rows", "not measured"),
                Target(sup_label, DASH, None, "no RSS rows", "not measured")]
    for k in kernels:
        workers = [r for r in res.rss if r["kernel"] == k and r["process"] == WORKER
                   and r["devices"] == WORKER_TARGET_DEVICES]
        if workers:
            # The worker closest to (or furthest over) its own limit speaks
            # for all: limits differ by state table.
            worst = max(workers, key=lambda r: r["rss"] - r["allowance"])
            limit = WORKER_BASE_KIB + worst["allowance"]
            out.append(Target(worker_label, DASH, k,
                              f"{fmt_mib(worst['rss'])} of {fmt_mib(limit)} ({worst['rss'] / limit:.2f}×)",
                              "met" if worst["rss"] < limit else "missed", worst["rss"] / limit))
        else:
            out.append(Target(worker_label, DASH, k, f"no {WORKER} row with {WORKER_TARGET_DEVICES} devices",
                              "not measured"))
        sups = [r for r in res.rss if r["kernel"] == k and r["process"] == SUPERVISOR]
        if sups:
            # Its own memory grows with the exports it holds: the worst
            # device count is the one that counts.
            worst = max(r["rss"] for r in sups)
            out.append(Target(sup_label, DASH, k,
                              f"{fmt_mib(worst)} of {fmt_mib(SUPERVISOR_LIMIT_KIB)} ({worst / SUPERVISOR_LIMIT_KIB:.2f}×)",
                              "met" if worst < SUPERVISOR_LIMIT_KIB else "missed",
                              worst / SUPERVISOR_LIMIT_KIB))
        else:
            out.append(Target(sup_label, DASH, k, f"no {SUPERVISOR} row", "not measured"))
    return out


# ---- markdown ----

def markdown(res, title, date, commit, target_devices, svg_link):
    L = [f"# {title}", "",
         f"- Date: {date}",
         f"- Commit: `{commit}`"]
    kernel_notes = []
    for k in res.kernels:
        peers = [p for p in res.peer_order() if any(key[0] == k and key[1] == p for key in res.cells)]
        kernel_notes.append(f"{k} ({', '.join(peers) if peers else 'RSS only'})")
    L.append("- Kernels: " + ("; ".join(kernel_notes) if kernel_notes else "none"))
    L += ["",
          "Figures come from VMs under emulation: compare them only within this run "
          "(as ratios), never with another run or machine.",
          "",
          f"Each figure is the median over repetitions; with 4 devices IOPS and MiB/s are summed "
          f"over the devices and latencies are their median. Ratio: this row's main figure over "
          f"its reference's, same kernel, workload and device count. {DASH}: not measured.",
          ""]
    if svg_link:
        L += [f"![Ratio to loop, 1 device]({svg_link})", ""]

    peer_rank = {p: i for i, p in enumerate(res.peer_order())}
    for k in res.kernels:
        for d in res.devices(k):
            L += [f"## {k}, {plural(d, 'device')}", ""]
            rows = []
            for w in res.workload_order():
                metric = res.metric(w)
                for p in sorted({key[1] for key in res.cells if key[0] == k and key[2] == w and key[3] == d},
                                key=peer_rank.get):
                    ref = REFERENCE.get(p)
                    rows.append([p, w, fmt_figure(res.median(k, p, w, d, metric), metric),
                                 fmt_latency(res.median(k, p, w, d, "lat_p50_us")),
                                 fmt_latency(res.median(k, p, w, d, "lat_p99_us")),
                                 fmt_num(res.median(k, p, w, d, "cpu_us_per_io")),
                                 ref or DASH,
                                 fmt_ratio(res.ratio(k, p, w, d, ref) if ref else None),
                                 res.reps[(k, p, w, d)]])
            L += md_table(["peer", "workload", "throughput", "p50", "p99", "CPU µs/I/O",
                           "reference", "ratio", "reps"], rows, right={2, 3, 4, 5, 7, 8})
            L.append("")

    targets = ratio_targets(res, target_devices) + rss_targets(res)
    count = lambda r: sum(t.result == r for t in targets)
    L += ["## Targets", "",
          f"Ratios of median main figures at {plural(target_devices, 'device')}, on the same kernel "
          f"where both were measured. {count('met')} met, {count('missed')} missed, "
          f"{count('not measured')} not measured.", ""]
    L += md_table(["target", "workload", "kernel", "measured", "result"],
                  [[t.label, t.workload, t.kernels_text(), t.measured,
                    f"**{t.result}**" if t.result == "missed" else t.result] for t in targets],
                  right={3})
    L += ["", "## Resident memory", ""]
    if res.rss:
        groups = {}
        for r in res.rss:
            groups.setdefault((r["kernel"], r["process"], r["devices"]), []).append(r)
        procs = ordered({r["process"] for r in res.rss}, (SUPERVISOR, WORKER))
        rows = []
        for k in res.kernels:
            for p in procs:
                for d in sorted(dd for (kk, pp, dd) in groups if kk == k and pp == p):
                    g = groups[(k, p, d)]
                    allow = {r["allowance"] for r in g}
                    rows.append([k, p, d, len(g), fmt_mib(statistics.median(r["rss"] for r in g)),
                                 fmt_mib(max(r["rss"] for r in g)),
                                 fmt_mib(max(allow)) if allow != {0.0} else DASH])
        L += md_table(["kernel", "process", "devices", "samples", "median RSS", "max RSS",
                       "state table"], rows, right={2, 3, 4, 5, 6})
    else:
        L.append("Not measured.")
    L.append("")
    return "\n".join(L), targets


# ---- SVG ----

def svg_chart(res, title):
    """Horizontal bars, one panel per kernel at 1 device, ratio to loop."""
    peers = res.peer_order()
    colour = dict(COLOURS)
    spare = iter(SPARE_COLOURS * (len(peers) // len(SPARE_COLOURS) + 1))
    for p in peers:
        colour.setdefault(p, next(spare))

    panels = []  # (kernel, [(workload, [(peer, ratio, figure text)])])
    for k in res.kernels:
        groups = []
        for w in res.workload_order():
            if not res.main_figure(k, "loop", w, 1):
                continue  # nothing to be a ratio of
            bars = [(p, res.ratio(k, p, w, 1, "loop"),
                     fmt_figure(res.main_figure(k, p, w, 1), res.metric(w)))
                    for p in peers if res.main_figure(k, p, w, 1) is not None]
            groups.append((w, bars))
        if groups:
            panels.append((k, groups))
    all_bars = [b for _, gs in panels for _, bs in gs for b in bs]
    used = [p for p in peers if any(p == b[0] for b in all_bars)]

    width, label_w, right_w = 960, 190, 110
    x0, x1 = label_w, width - right_w
    bar_h, bar_gap, group_gap = 14, 2, 12
    # null_blk, with no device behind it, is often several times loop and
    # would squash every other bar: the axis is sized without it, capped,
    # and longer bars are cut with their value in the label.
    top = min(4.0, max([1.5] + [r for p, r, _ in all_bars if p != "null_blk"]))
    axis_max = math.ceil(top * 2) / 2
    step = 0.5 if axis_max <= 3 else 1.0
    xs = lambda r: x0 + (x1 - x0) * min(r, axis_max) / axis_max

    out = []
    y = 30
    out.append(f'<text x="{width / 2}" y="{y}" text-anchor="middle" font-size="16" '
               f'font-weight="bold">{escape(title)}</text>')
    y += 20
    cut_note = f"; » bar cut at {axis_max:g}×" if any(r > axis_max for _, r, _ in all_bars) else ""
    out.append(f'<text x="{width / 2}" y="{y}" text-anchor="middle" fill="#444">'
               f'Main figure (IOPS at 4 KiB, MiB/s at 128 KiB) over loop\'s, 1 device; '
               f'longer is faster{cut_note}</text>')
    y += 22
    # Legend, wrapped to the chart's width.
    lx = 20
    for p in used:
        w = 22 + 7 * len(p) + 18
        if lx + w > width - 20:
            lx, y = 20, y + 20
        out.append(f'<rect x="{lx}" y="{y - 11}" width="14" height="14" fill="{colour[p]}"/>')
        out.append(f'<text x="{lx + 20}" y="{y}">{escape(p)}</text>')
        lx += w
    y += 16
    if not panels:
        y += 24
        out.append(f'<text x="{width / 2}" y="{y}" text-anchor="middle">'
                   f'No loop figures at 1 device: nothing to compare with.</text>')
        y += 20
    for k, groups in panels:
        y += 28
        out.append(f'<text x="20" y="{y}" font-size="14" font-weight="bold">{escape(k)}</text>')
        y += 12
        panel_top = y
        body, labels = [], []
        for w, bars in groups:
            gh = len(bars) * (bar_h + bar_gap) - bar_gap
            body.append(f'<text x="{x0 - 8}" y="{y + gh / 2 + 4}" text-anchor="end">{escape(w)}</text>')
            for p, r, fig in bars:
                end = xs(r)
                cut = r > axis_max
                body.append(f'<rect x="{x0}" y="{y}" width="{end - x0:.1f}" height="{bar_h}" '
                            f'fill="{colour[p]}"><title>{escape(f"{p}, {w}: {fig}, {r:.2f}× loop")}'
                            f'</title></rect>')
                labels.append(f'<text x="{end + 4:.1f}" y="{y + bar_h - 3}" font-size="11" '
                              f'stroke="white" stroke-width="3" paint-order="stroke">'
                              f'{"» " if cut else ""}{r:.2f}×</text>')
                y += bar_h + bar_gap
            y += group_gap - bar_gap
        panel_bottom = y
        # Grid first so that the bars are drawn over it.
        t = 0.0
        while t <= axis_max + 1e-9:
            x = xs(t)
            out.append(f'<line x1="{x:.1f}" y1="{panel_top - 4}" x2="{x:.1f}" y2="{panel_bottom}" '
                       f'stroke="#e4e4e4"/>')
            out.append(f'<text x="{x:.1f}" y="{panel_bottom + 14}" text-anchor="middle" '
                       f'font-size="11" fill="#444">{t:g}×</text>')
            t += step
        out += body
        # Over the bars, which would hide it, under the labels, which it
        # would cross out (they carry a white halo).
        xr = xs(1.0)
        out.append(f'<line x1="{xr:.1f}" y1="{panel_top - 6}" x2="{xr:.1f}" y2="{panel_bottom + 2}" '
                   f'stroke="#c00000" stroke-width="1.5" stroke-dasharray="5,3"/>')
        out += labels
        y = panel_bottom + 20
    height = y + 16
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">\n'
            f'<rect width="{width}" height="{height}" fill="white"/>')
    return "\n".join([head] + out + ["</svg>", ""])


# ---- command line ----

def write(path, text):
    # Through a temporary name so that a failed run leaves no half report.
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Benchmark CSVs to a markdown report and an SVG chart.")
    ap.add_argument("csv", nargs="*", help="result files (fio cells and/or RSS rows)")
    ap.add_argument("--out-md", help="markdown report (default: stdout)")
    ap.add_argument("--out-svg", help="SVG chart of the ratios to loop")
    ap.add_argument("--title", default="glidefs benchmark")
    ap.add_argument("--commit", default="not given")
    ap.add_argument("--date", default=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"))
    ap.add_argument("--target-devices", type=int, default=1,
                    help="device count the ratio targets are judged at (default 1)")
    ap.add_argument("--self-test", action="store_true", help="check this script on synthetic data")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.csv:
        ap.error("no CSV files given")
    try:
        res = load(args.csv)
    except ReportError as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 2
    link = None
    if args.out_svg:
        base = os.path.dirname(os.path.abspath(args.out_md)) if args.out_md else os.getcwd()
        link = os.path.relpath(os.path.abspath(args.out_svg), base)
    md, _ = markdown(res, args.title, args.date, args.commit, args.target_devices, link)
    if args.out_md:
        write(args.out_md, md)
    else:
        sys.stdout.write(md)
    if args.out_svg:
        write(args.out_svg, svg_chart(res, args.title))
    return 0


# ---- self-test ----

SID, TRIXIE = "sid 7.2.13", "trixie 6.12.117"

SELF_TEST_BENCH = f"""\
# comment lines and blank lines are skipped
kernel,peer,workload,devices,rep,iops,mibps,lat_p50_us,lat_p99_us,cpu_us_per_io
{SID},loop,randread-4k-qd32,1,1,1000,3.9,100,15000,5.5
{SID},loop,randread-4k-qd32,1,2,1100,4.3,120,9000,5.0
{SID},loop,randread-4k-qd32,1,3,900,3.5,110,12000,6.0
{SID},zero-copy,randread-4k-qd32,1,1,1500,5.9,80,900,
{SID},zero-copy,randread-4k-qd32,1,2,1400,5.5,90,1000,
{SID},user-copy,randread-4k-qd32,1,1,1000,3.9,100,1000,3

{SID},zero-copy,randwrite-4k-qd32,1,1,1200,4.7,100,1000,3
{SID},user-copy,randwrite-4k-qd32,1,1,1000,3.9,100,1000,3
{SID},loop,randwrite-4k-qd32,1,1,1300,5.1,100,1000,3
{SID},zero-copy,randrw-4k-qd32,1,1,1400,5.5,100,1000,3
{SID},zero-copy,seqread-128k-qd32,1,1,2400,300,100,1000,3
{SID},user-copy,seqread-128k-qd32,1,1,1600,200,100,1000,3
{SID},loop,seqread-128k-qd32,1,1,3200,400,100,1000,3
{SID},zero-copy,seqwrite-128k-qd32,1,1,800,100,100,1000,3
{SID},null_blk,randread-4k-qd32,1,1,4000,15.6,2.5,8,
{SID},glidefs-s3,coldread-1m,1,1,,50,20000,90000,12
{SID},s3backer,coldread-1m,1,1,,20,50000,200000,40
{SID},glidefs-s3,flushwrite-1m,1,1,,30,,,
{SID},s3backer,flushwrite-1m,1,1,,20,,,
{SID},ublk-demo,mixed-8k-qd4,1,1,77,0.6,,,
{SID},zero-copy,randread-4k-qd32,4,1,5000,19.5,150,2000,3
{SID},loop,randread-4k-qd32,4,1,4000,15.6,150,2000,3
{TRIXIE},user-copy,randread-4k-qd32,1,1,800,3.1,100,1000,3
{TRIXIE},user-copy,randrw-4k-qd32,1,1,1000,3.9,100,1000,3
kernel,process,devices,rss_kib
{TRIXIE},glidefsd,4,17000
{TRIXIE},glidefs-worker,4,66000
"""

SELF_TEST_RSS = f"""\
process,kernel,devices,rss_kib,allowance_kib
glidefsd,{SID},1,9000,
glidefsd,{SID},4,12000,
glidefs-worker,{SID},4,70000,8192
glidefs-worker,{SID},4,60000,
glidefs-worker,{SID},1,50000,
"""


def self_test():
    checks = 0

    def check(cond, what):
        nonlocal checks
        checks += 1
        if not cond:
            raise AssertionError(what)

    def close(a, b):
        return a is not None and abs(a - b) < 1e-9

    try:
        with tempfile.TemporaryDirectory(prefix="glidefs-report-") as d:
            bench, rss = os.path.join(d, "bench.csv"), os.path.join(d, "rss.csv")
            md_path, svg_path = os.path.join(d, "report.md"), os.path.join(d, "chart.svg")
            write(bench, SELF_TEST_BENCH)
            write(rss, SELF_TEST_RSS)
            rc = main(["--out-md", md_path, "--out-svg", svg_path, "--commit", "abc123",
                       "--date", "2030-01-02", bench, rss])
            check(rc == 0, f"report exited {rc}")
            with open(md_path, encoding="utf-8") as f:
                md = f.read()
            with open(svg_path, encoding="utf-8") as f:
                svg = f.read()

            res = load([bench, rss])
            check(res.kernels == [SID, TRIXIE], f"kernels {res.kernels}")
            # Odd and even numbers of repetitions, and empty fields skipped.
            check(close(res.median(SID, "loop", "randread-4k-qd32", 1, "iops"), 1000), "odd median")
            check(close(res.median(SID, "zero-copy", "randread-4k-qd32", 1, "iops"), 1450), "even median")
            check(close(res.median(SID, "loop", "randread-4k-qd32", 1, "lat_p99_us"), 12000), "p99 median")
            check(res.median(SID, "zero-copy", "randread-4k-qd32", 1, "cpu_us_per_io") is None, "empty cpu")
            check(res.metric("seqread-128k-qd32") == "mibps" and res.metric("randrw-4k-qd1") == "iops"
                  and res.metric("coldread-1m") == "mibps", "metric by block size")
            check(close(res.ratio(SID, "zero-copy", "randread-4k-qd32", 1, "loop"), 1.45), "ratio to loop")
            check(close(res.ratio(SID, "zero-copy", "randread-4k-qd32", 4, "loop"), 1.25), "ratio, 4 devices")
            check(res.ratio(SID, "copy", "randread-4k-qd32", 1, "loop") is None, "missing ratio")

            # The tables as printed.
            for line in (
                    "| loop | randread-4k-qd32 | 1,000 IOPS | 110 µs | 12.0 ms | 5.50 | null_blk | 0.25× | 3 |",
                    "| zero-copy | randread-4k-qd32 | 1,450 IOPS | 85.0 µs | 950 µs | – | loop | 1.45× | 2 |",
                    "| zero-copy | seqread-128k-qd32 | 300 MiB/s |",
                    "| glidefs-s3 | coldread-1m | 50.0 MiB/s | 20.0 ms | 90.0 ms | 12.0 | s3backer | 2.50× | 1 |",
                    "| null_blk | randread-4k-qd32 | 4,000 IOPS | 2.50 µs | 8.00 µs | – | – | – | 1 |",
                    "| ublk-demo | mixed-8k-qd4 | 77 IOPS | – | – | – | – | – | 1 |",
                    "| zero-copy | randread-4k-qd32 | 5,000 IOPS | 150 µs | 2000 µs | 3.00 | loop | 1.25× | 1 |",
                    "| user-copy | randread-4k-qd32 | 1,000 IOPS |",
                    "## sid 7.2.13, 4 devices", "## trixie 6.12.117, 1 device",
                    "- Commit: `abc123`", "- Date: 2030-01-02", "![Ratio to loop, 1 device](chart.svg)",
                    "under emulation"):
                check(line in md, f"markdown lacks {line!r}")
            check(md.index("| zero-copy | randread-4k-qd32 | 1,450") < md.index("| loop | randread-4k-qd32 | 1,000"),
                  "peer order")
            check(md.index("randrw-4k-qd32 | 1,400") < md.index("| ublk-demo"), "unknown workloads last")

            targets = {(t.subject, t.reference, t.workload, t.kernel): t
                       for t in ratio_targets(res, 1)}

            def target(subject, ref, workload, result, ratio=None, ref_kernel=SID, kernel=SID):
                t = targets[(subject, ref, workload, kernel)]
                check(t.result == result, f"{subject}/{ref} {workload}: {t.result}, expected {result}")
                if ratio is not None:
                    check(close(t.ratio, ratio), f"{subject}/{ref} {workload}: ratio {t.ratio}")
                check(t.ref_kernel == ref_kernel, f"{subject}/{ref} {workload}: against {t.ref_kernel}")

            # user-copy on both kernels: sid's, not trixie's 800.
            target("zero-copy", "user-copy", "randread-4k-qd32", "met", 1.45)
            target("zero-copy", "user-copy", "randwrite-4k-qd32", "missed", 1.2)
            target("zero-copy", "user-copy", "randrw-4k-qd32", "met", 1.4, ref_kernel=TRIXIE)
            target("zero-copy", "user-copy", "seqread-128k-qd32", "met", 1.5)  # at the threshold
            target("zero-copy", "user-copy", "seqwrite-128k-qd32", "not measured", ref_kernel=None)
            target("zero-copy", "loop", "randwrite-4k-qd32", "met", 1200 / 1300)
            target("zero-copy", "loop", "seqread-128k-qd32", "missed", 0.75)
            target("glidefs-s3", "s3backer", "coldread-1m", "met", 2.5)
            target("glidefs-s3", "s3backer", "flushwrite-1m", "missed", 1.5)
            check(("zero-copy", "user-copy", "randread-4k-qd32", TRIXIE) not in targets,
                  "a target for a kernel without the subject")
            check("| zero-copy ≥ 1.3× user-copy | randrw-4k-qd32 | sid 7.2.13 vs trixie 6.12.117 "
                  "(crosses kernels) | 1.40× | met |" in md, "cross-kernel line")
            check("| zero-copy ≥ 1.5× user-copy | seqwrite-128k-qd32 | sid 7.2.13 | no user-copy | "
                  "not measured |" in md, "not-measured line")
            check("| zero-copy ≥ 1.3× user-copy | randwrite-4k-qd32 | sid 7.2.13 | 1.20× | **missed** |" in md,
                  "missed line")

            rt = {(t.label.split()[1] if t.label.startswith("each") else t.label.split()[0], t.kernel): t
                  for t in rss_targets(res)}
            # sid: 70000 KiB is under 64 MiB + 8 MiB of state table; 12000 KiB at most.
            check(rt[(WORKER, SID)].result == "met", "worker with its allowance")
            check(rt[(SUPERVISOR, SID)].result == "met", "supervisor under 16 MiB")
            check(rt[(WORKER, TRIXIE)].result == "missed", "worker over 64 MiB, no allowance")
            check(rt[(SUPERVISOR, TRIXIE)].result == "missed", "supervisor over 16 MiB")
            check("| sid 7.2.13 | glidefs-worker | 4 | 2 | 63.5 MiB | 68.4 MiB | 8.0 MiB |" in md,
                  "RSS table")
            check(fmt_target_ratio(1.2996, 1.3) == "1.2996×" and fmt_target_ratio(1.3004, 1.3) == "1.30×",
                  "ratio printed to agree with the verdict")
            check(rss_targets(Results())[0].result == "not measured", "no RSS rows")

            root = ET.fromstring(svg)
            ns = "{http://www.w3.org/2000/svg}"
            texts = [t.text or "" for t in root.iter(ns + "text")]
            check(SID in texts and TRIXIE not in texts, "one panel, for the kernel with loop")
            check("1.45×" in texts and "1.00×" in texts, "bar labels")
            bars = [r for r in root.iter(ns + "rect") if r.find(ns + "title") is not None]
            # randread: zero-copy, user-copy, loop, null_blk; randwrite: 3; seqread: 3.
            check(len(bars) == 10, f"{len(bars)} bars")
            check("» 4.00×" in texts, "null_blk beyond the axis, cut")
            check("1.5×" in texts and "2×" not in texts, "axis sized without null_blk")
            empty = ET.fromstring(svg_chart(Results(), "empty"))
            check(empty.tag == ns + "svg", "empty chart")

            bad = os.path.join(d, "bad.csv")
            write(bad, "a,b,c\n1,2,3\n")
            try:
                load([bad])
                check(False, "a file without a known header was accepted")
            except ReportError as e:
                check("bad.csv:1" in str(e), f"error names the line: {e}")
    except Exception as e:  # any failure, not only a check, fails the self-test
        print(f"report.py self-test: FAILED after {checks} checks: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"report.py self-test: ok ({checks} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
