#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Turns the runs of tools/bench.sh into build/bench.md and build/bench.json.

Every figure is a median over rounds. Each comparison is paired: within a round, a run with
tapir (or behind the proxy) against the run alone just before it, on the same machine minutes
apart; the median of those per-round differences is the headline, and their range shows how
much the machine itself moved. bench.json keeps every run besides the summary."""
import argparse
import json
import os
import platform
import statistics
import time

COLUMNS = ["round", "config", "server", "rps", "p50_ms", "p99_ms", "server_cpu_s", "requests",
           "errors", "dd_ns_per_byte", "served", "seen", "tapir_cpu_s", "losses"]
NUMERIC = {"round": int, "rps": float, "p50_ms": float, "p99_ms": float, "server_cpu_s": float,
           "requests": int, "errors": int, "dd_ns_per_byte": float, "served": int, "seen": int,
           "tapir_cpu_s": float}

# The targets of the overhead issue, on the nginx workload.
TARGET_CPU_US = 1.0
TARGET_RATIO = 0.95
TARGET_P99_MS = 0.050


def read_dd(path):
    """Rows of the dd phase: (round, config, ns per byte)."""
    rows = []
    with open(path) as f:
        for line in f:
            r, c, v = line.split()
            rows.append((int(r), c, float(v)))
    return rows


def read_costs(path):
    """tools/floor costs: nanoseconds per call of each kernel helper, on this machine."""
    costs = {}
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                name, ns = line.split()
                costs[name] = float(ns)
    return costs


def read_runs(path):
    runs = []
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(COLUMNS):
                raise SystemExit(f"bench-report: {path}: bad line {line!r}")
            run = {}
            for k, v in zip(COLUMNS, fields):
                if v == "-":
                    run[k] = None
                elif k == "losses":
                    run[k] = {p.split("=")[0]: int(p.split("=")[1]) for p in v.split(",") if p}
                else:
                    run[k] = NUMERIC.get(k, str)(v)
            run["cpu_us_per_req"] = run["server_cpu_s"] / run["requests"] * 1e6
            runs.append(run)
    return runs


def read_bpf(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                server, rnd, prog, ns, runs = line.split()
                rows.append((server, int(rnd), prog, float(ns), float(runs)))
    return rows


def med(runs, config, key):
    vals = [r[key] for r in runs if r["config"] == config and r[key] is not None]
    return statistics.median(vals) if vals else None


def summary_of(runs, config):
    return {k: med(runs, config, k) for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req")}


def compare(runs, base, other):
    """Per round: `other`'s run against `base`'s; the median of each difference over rounds,
    and the range of the throughput ratio."""
    by = {(r["round"], r["config"]): r for r in runs}
    per = []
    for rnd in sorted({r["round"] for r in runs}):
        b, o = by.get((rnd, base)), by.get((rnd, other))
        if not b or not o:
            continue
        per.append({"ratio": o["rps"] / b["rps"],
                    "p50_added_ms": o["p50_ms"] - b["p50_ms"],
                    "p99_added_ms": o["p99_ms"] - b["p99_ms"],
                    "cpu_added_us_per_req": o["cpu_us_per_req"] - b["cpu_us_per_req"]})
    out = {k: statistics.median(p[k] for p in per) for k in per[0]}
    out["ratio_min"] = min(p["ratio"] for p in per)
    out["ratio_max"] = max(p["ratio"] for p in per)
    out["per_round"] = per
    return out


def accounting(runs, config):
    sel = [r for r in runs if r["config"] == config]
    losses = {}
    for r in sel:
        for k, v in (r["losses"] or {}).items():
            losses[k] = losses.get(k, 0) + v
    made = sum(r["requests"] for r in sel)
    served = sum(r["served"] for r in sel)
    seen = sum(r["seen"] for r in sel)
    return {
        "made": made,
        "served": served,
        "seen": seen,
        "seen_over_served": seen / served if served else None,
        "client_errors": sum(r["errors"] for r in sel),
        "losses": losses,
        "exact": seen == served and not any(losses.values()),
        "daemon_cpu_us_per_req": sum(r["tapir_cpu_s"] for r in sel) / made * 1e6 if made else None,
    }


def bpf_summary(rows, server):
    progs = sorted({p for s, _, p, _, _ in rows if s == server})
    out = {}
    for p in progs:
        ns = [v for s, _, q, v, _ in rows if s == server and q == p]
        runs = [v for s, _, q, _, v in rows if s == server and q == p]
        out[p] = {"ns_per_req": statistics.median(ns), "runs_per_req": statistics.median(runs)}
    return out


def read_pingpong(path, meta_path, bpf_rows=(), name=None):
    """Per round: watched and unwatched ns of CPU per exchange; their medians and the median
    of the per-round differences and ratios. With @bpf_rows, the BPF time per watched exchange
    of each program in the rows of server @name (the watched-only rounds that follow, with
    kernel.bpf_stats_enabled)."""
    if not path or not os.path.exists(path):
        return None
    rows = []
    with open(path) as f:
        for line in f:
            w, u = map(float, line.split())
            rows.append((w, u))
    if not rows:
        return None
    meta = {}
    if meta_path and os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = {k: int(v) if v.isdigit() else v for k, v in (line.split() for line in f)}
    ratios = sorted(w / u for w, u in rows)
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    progs = bpf_summary(bpf_rows, name) if name else {}
    sent = meta.get("exchanges", 0) * (len(rows) + meta.get("stats_rounds", 0))
    return {"exchanges": meta.get("exchanges", 0), "rounds": len(rows),
            "stats_rounds": meta.get("stats_rounds", 0),
            "seen": meta.get("seen", 0), "sent": sent, "exact": meta.get("seen", 0) == sent,
            "hooks": meta.get("hooks", "?"),
            "bpf_programs": progs,
            "bpf_ns_per_exchange": sum(v["ns_per_req"] for v in progs.values()) if progs else None,
            "watched_ns_median": statistics.median(w for w, _ in rows),
            "unwatched_ns_median": statistics.median(u for _, u in rows),
            "added_ns_median": statistics.median(w - u for w, u in rows),
            "ratio_median": statistics.median(ratios), "ratio_q1": q[0], "ratio_q3": q[2],
            "per_round": rows}


def read_scale(path):
    if not path or not os.path.exists(path):
        return None
    kv = dict(line.rstrip("\n").split("\t", 1) for line in open(path) if "\t" in line)
    times = [float(t) * 1000 for t in kv["scrapes"].split(",") if t]
    return {
        "watched_cgroups": int(kv["cgroups"]),
        "series": int(kv["series"]),
        "rss_mib": int(kv["rss_kib"]) / 1024,
        "scrapes": len(times),
        "scrape_ms_median": statistics.median(times) if times else None,
        "scrape_ms_max": max(times) if times else None,
        "made": int(kv["made"]),
        "served": int(kv["served"]),
        "seen": int(kv["seen"]),
        "records_lost": int(kv["lost"]),
        "exact": int(kv["seen"]) == int(kv["served"]) and int(kv["lost"]) == 0,
    }


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "hostname": platform.node()}


def fmt(v, spec):
    return "" if v is None else format(v, spec)


LLM_COLUMNS = ["round", "config", "seconds", "events", "streams", "errors", "server_cpu_s",
               "tapir_cpu_s", "in", "out", "est", "tapir_in", "tapir_out", "tapir_est", "losses"]


def read_llm(path):
    """Runs of the LLM case: token events and streams the server wrote in each, and the token
    counts it wrote (usage figures; content events of streams without one) against tapir's."""
    rows = []
    if not path or not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(LLM_COLUMNS):
                raise SystemExit(f"bench-report: {path}: bad line {line!r}")
            row = {}
            for k, v in zip(LLM_COLUMNS, fields):
                if k == "config":
                    row[k] = v
                elif k == "losses":
                    row[k] = ({p.split("=")[0]: int(p.split("=")[1]) for p in v.split(",") if p}
                              if v != "-" else None)
                elif v == "-":
                    row[k] = None
                else:
                    row[k] = float(v) if "." in v else int(v)
            row["events_per_s"] = row["events"] / row["seconds"]
            row["streams_per_s"] = row["streams"] / row["seconds"]
            row["server_cpu_us_per_event"] = (row["server_cpu_s"] / row["events"] * 1e6
                                              if row["events"] else None)
            rows.append(row)
    return rows


def read_llm_bpf(path):
    rows = []
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                rnd, prog, ns, runs = line.split()
                rows.append((int(rnd), prog, float(ns), float(runs)))
    return rows


def llm_report(rows, bpf_rows, pp_off, pp_on):
    """The LLM case: throughput with tapir against without, paired by round; tapir's CPU per
    token event (BPF in the warm-ups, the daemon in the measured runs); the token accounting."""
    by = {(r["round"], r["config"]): r for r in rows}
    per = []
    for rnd in sorted({r["round"] for r in rows}):
        b, o = by.get((rnd, "llm")), by.get((rnd, "llm+tapir"))
        if b and o and b["events"] and o["events"]:
            per.append({"ratio": o["events_per_s"] / b["events_per_s"],
                        "server_cpu_added_us_per_event":
                            o["server_cpu_us_per_event"] - b["server_cpu_us_per_event"]})
    if not per:
        return None
    withs = [r for r in rows if r["config"] == "llm+tapir"]
    events = sum(r["events"] for r in withs)
    progs = {}
    for p in sorted({p for _, p, _, _ in bpf_rows}):
        progs[p] = {"ns_per_event": statistics.median(v for _, q, v, _ in bpf_rows if q == p),
                    "runs_per_event": statistics.median(v for _, q, _, v in bpf_rows if q == p)}
    bpf_ns = sum(v["ns_per_event"] for v in progs.values()) if progs else None
    daemon_ns = sum(r["tapir_cpu_s"] for r in withs) / events * 1e9 if events else None
    losses = {}
    for r in withs:
        for k, v in (r["losses"] or {}).items():
            losses[k] = losses.get(k, 0) + v
    acct = {k: {"server": sum(r[k] for r in withs), "tapir": sum(r["tapir_" + k] for r in withs)}
            for k in ("in", "out", "est")}
    return {
        "medians": {c: {k: statistics.median(r[k] for r in rows if r["config"] == c)
                        for k in ("events_per_s", "streams_per_s", "server_cpu_us_per_event")}
                    for c in ("llm", "llm+tapir")},
        "ratio": statistics.median(p["ratio"] for p in per),
        "ratio_min": min(p["ratio"] for p in per),
        "ratio_max": max(p["ratio"] for p in per),
        "server_cpu_added_us_per_event": statistics.median(
            p["server_cpu_added_us_per_event"] for p in per),
        "per_round": per,
        "bpf_programs_warmup": progs,
        "bpf_ns_per_event": bpf_ns,
        "daemon_ns_per_event": daemon_ns,
        "tapir_ns_per_event": bpf_ns + daemon_ns if bpf_ns is not None and daemon_ns is not None
        else None,
        "accounting": acct,
        "losses": losses,
        "exact": all(a["server"] == a["tapir"] for a in acct.values()) and not any(losses.values()),
        "non_llm_pingpong": {"llm_off": pp_off, "llm_on": pp_on},
        "runs": rows,
    }


def llm_lines(llm, args):
    L = []
    m0, m1 = llm["medians"]["llm"], llm["medians"]["llm+tapir"]
    n_rounds = max(r["round"] for r in llm["runs"])
    pace = (f"a token event every {args.llm_interval_us} us" if args.llm_interval_us
            else "token events as fast as the server writes them")
    L.append(f"## LLM token streams ({args.llm_variant}): tools/llm_server.c in a watched cgroup, wrk -t1 "
             f"-c{args.llm_connections} -d{args.llm_duration}s POSTing streaming chat requests "
             f"({args.llm_tokens} tokens each, include_usage), {pace}; {n_rounds} alternating "
             f"rounds: medians, and of the per-round ratios (range in brackets)")
    L.append("")
    L.append("| run | token events/s | streams/s | server CPU (us / event) | vs. alone: ratio | server CPU added (us / event) |")
    L.append("|---|---:|---:|---:|---:|---:|")
    L.append(f"| llm_server alone | {m0['events_per_s']:.0f} | {m0['streams_per_s']:.0f} | "
             f"{m0['server_cpu_us_per_event']:.2f} | | |")
    L.append(f"| llm_server with tapir | {m1['events_per_s']:.0f} | {m1['streams_per_s']:.0f} | "
             f"{m1['server_cpu_us_per_event']:.2f} | {llm['ratio']:.3f} [{llm['ratio_min']:.3f}, "
             f"{llm['ratio_max']:.3f}] | {llm['server_cpu_added_us_per_event']:+.2f} |")
    L.append("")
    L.append(f"tapir's CPU per token event: BPF {fmt(llm['bpf_ns_per_event'], '.0f')} ns (all its "
             f"programs, `kernel.bpf_stats_enabled` in the warm-ups) + daemon "
             f"{fmt(llm['daemon_ns_per_event'], '.0f')} ns (utime + stime over the events of the "
             f"measured runs) = {fmt(llm['tapir_ns_per_event'], '.0f')} ns.")
    L.append("")
    a = llm["accounting"]
    L.append("| accounting, with-tapir runs | written by the server | counted by tapir |")
    L.append("|---|---:|---:|")
    L.append(f"| input tokens (usage) | {a['in']['server']} | {a['in']['tapir']} |")
    L.append(f"| output tokens (usage; content events of streams cut before it) | "
             f"{a['out']['server']} | {a['out']['tapir']} |")
    L.append(f"| streams without usage (`tapir_llm_usage_estimated_total`) | {a['est']['server']} | "
             f"{a['est']['tapir']} |")
    for fam in sorted(llm["losses"]):
        L.append(f"| {fam} | | {llm['losses'][fam]} |")
    L.append("")
    if llm["bpf_programs_warmup"]:
        L.append("| BPF program (warm-up runs) | ns / token event | runs / token event |")
        L.append("|---|---:|---:|")
        for p, v in sorted(llm["bpf_programs_warmup"].items(), key=lambda kv: -kv[1]["ns_per_event"]):
            L.append(f"| {p} | {v['ns_per_event']:.1f} | {v['runs_per_event']:.3f} |")
        L.append("")
    off, on = llm["non_llm_pingpong"]["llm_off"], llm["non_llm_pingpong"]["llm_on"]
    if off and on:
        L.append(f"Non-LLM traffic (tools/pingpong.c, {off['rounds']} rounds of {off['exchanges']} "
                 f"exchanges each way): tapir adds {off['added_ns_median']:+.0f} ns per exchange "
                 f"with `llm.enabled: false` (ratio {off['ratio_median']:.3f}) and "
                 f"{on['added_ns_median']:+.0f} ns with it on (ratio {on['ratio_median']:.3f}).")
        L.append("")
    L.append("Token counts exact, no loss: " + ("yes" if llm["exact"] else "**no**") + ".")
    L.append("")
    return L


OUTBOUND_COLUMNS = ["round", "config", "rps", "p50_ms", "p99_ms", "client_cpu_s", "nginx_cpu_s",
                    "requests", "errors", "served", "seen", "seen_499", "tapir_cpu_s", "losses"]


def paired_summary(rows, configs, per, keys):
    """A case of paired runs (alone, with tapir): each config's medians of @keys, the range of
    the per-round ratios, and the median of every per-round figure."""
    out = {
        "medians": {c: {k: statistics.median(r[k] for r in rows if r["config"] == c) for k in keys}
                    for c in configs},
        "ratio_min": min(p["ratio"] for p in per),
        "ratio_max": max(p["ratio"] for p in per),
    }
    out.update({k: statistics.median(p[k] for p in per) for k in per[0]})
    return out


def read_case_runs(path, columns):
    """The runs of one case, a line each of tab-separated `columns`: "-" is None, `config` a
    string, `losses` a dict of loss counter to value (None without tapir), the rest numbers."""
    rows = []
    if not path or not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(columns):
                raise SystemExit(f"bench-report: {path}: bad line {line!r}")
            row = {}
            for k, v in zip(columns, fields):
                if k == "config":
                    row[k] = v
                elif k == "losses":
                    row[k] = ({p.split("=")[0]: int(p.split("=")[1]) for p in v.split(",") if p}
                              if v != "-" else None)
                elif v == "-":
                    row[k] = None
                else:
                    row[k] = float(v) if "." in v else int(v)
            rows.append(row)
    return rows


def read_outbound(path):
    """Runs of the outbound case: wrk in the one watched cgroup, nginx unwatched. `requests` is
    wrk's count of the answers it read, `served` nginx's count of the requests it answered,
    `seen` tapir's outbound requests and `seen_499` those of them closed unanswered."""
    rows = read_case_runs(path, OUTBOUND_COLUMNS)
    for row in rows:
        n = row["requests"]
        row["client_cpu_us_per_req"] = row["client_cpu_s"] / n * 1e6 if n else None
        row["nginx_cpu_us_per_req"] = row["nginx_cpu_s"] / n * 1e6 if n else None
    return rows


def outbound_report(rows, bpf_rows, connections):
    """The outbound case: wrk watched against wrk alone, paired by round; tapir's CPU per request
    (BPF in the warm-ups, the daemon in the measured runs); tapir's count against wrk's and
    nginx's."""
    by = {(r["round"], r["config"]): r for r in rows}
    per = []
    for rnd in sorted({r["round"] for r in rows}):
        b, o = by.get((rnd, "outbound")), by.get((rnd, "outbound+tapir"))
        if b and o and b["requests"] and o["requests"]:
            per.append({"ratio": o["rps"] / b["rps"],
                        "p50_added_ms": o["p50_ms"] - b["p50_ms"],
                        "p99_added_ms": o["p99_ms"] - b["p99_ms"],
                        "client_cpu_added_us_per_req":
                            o["client_cpu_us_per_req"] - b["client_cpu_us_per_req"],
                        "nginx_cpu_added_us_per_req":
                            o["nginx_cpu_us_per_req"] - b["nginx_cpu_us_per_req"]})
    if not per:
        return None
    withs = [r for r in rows if r["config"] == "outbound+tapir"]
    made = sum(r["requests"] for r in withs)
    served = sum(r["served"] for r in withs)
    seen = sum(r["seen"] for r in withs)
    cut = sum(r["seen_499"] for r in withs)
    progs = bpf_summary(bpf_rows, "outbound")
    bpf_ns = sum(v["ns_per_req"] for v in progs.values()) if progs else None
    daemon_ns = sum(r["tapir_cpu_s"] for r in withs) / made * 1e9 if made else None
    losses = {}
    for r in withs:
        for k, v in (r["losses"] or {}).items():
            losses[k] = losses.get(k, 0) + v
    # Exact: every answer wrk read observed as answered, and each request tapir saw closed
    # unanswered one that wrk left in flight when it stopped (at most one per connection).
    exact = (seen - cut == made and cut <= connections * len(withs)
             and not any(losses.values()))
    out = paired_summary(rows, ("outbound", "outbound+tapir"), per,
                         ("rps", "p50_ms", "p99_ms", "client_cpu_us_per_req",
                          "nginx_cpu_us_per_req"))
    out.update({
        "per_round": per,
        "bpf_programs_warmup": progs,
        "bpf_ns_per_req": bpf_ns,
        "daemon_ns_per_req": daemon_ns,
        "tapir_ns_per_req": bpf_ns + daemon_ns if bpf_ns is not None and daemon_ns is not None
        else None,
        "accounting": {
            "answers_read_by_wrk": made,
            "served_by_nginx": served,
            "observed": seen,
            "observed_answered": seen - cut,
            "observed_499": cut,
            "observed_answered_over_wrk": (seen - cut) / made if made else None,
            "observed_over_served": seen / served if served else None,
            "client_errors": sum(r["errors"] for r in withs),
        },
        "losses": losses,
        "exact": exact,
        "runs": rows,
    })
    return out


def outbound_lines(ob, args):
    L = []
    m0, m1 = ob["medians"]["outbound"], ob["medians"]["outbound+tapir"]
    n_rounds = max(r["round"] for r in ob["runs"])
    L.append(f"## Outbound requests ({args.outbound_variant}): wrk -t1 -c{args.connections} "
             f"-d{args.duration}s inside the one watched cgroup, keep-alive GETs of nginx's 1 KiB "
             f"file (nginx not watched); {n_rounds} alternating rounds: medians, and of the "
             f"per-round comparisons with wrk alone (ratio range in brackets)")
    L.append("")
    L.append("| run | req/s | p50 (ms) | p99 (ms) | client CPU (us / req) | nginx CPU (us / req) | vs. alone: ratio | p99 added (ms) | client CPU added (us / req) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    L.append(f"| wrk alone | {m0['rps']:.0f} | {m0['p50_ms']:.3f} | {m0['p99_ms']:.3f} | "
             f"{m0['client_cpu_us_per_req']:.2f} | {m0['nginx_cpu_us_per_req']:.2f} | | | |")
    L.append(f"| wrk watched by tapir (outbound) | {m1['rps']:.0f} | {m1['p50_ms']:.3f} | "
             f"{m1['p99_ms']:.3f} | {m1['client_cpu_us_per_req']:.2f} | "
             f"{m1['nginx_cpu_us_per_req']:.2f} | {ob['ratio']:.3f} [{ob['ratio_min']:.3f}, "
             f"{ob['ratio_max']:.3f}] | {ob['p99_added_ms']:+.3f} | "
             f"{ob['client_cpu_added_us_per_req']:+.2f} |")
    L.append("")
    L.append(f"tapir's CPU per outbound request: BPF {fmt(ob['bpf_ns_per_req'], '.0f')} ns (all its "
             f"programs, in wrk and in nginx, `kernel.bpf_stats_enabled` in the warm-ups) + daemon "
             f"{fmt(ob['daemon_ns_per_req'], '.0f')} ns (utime + stime over the requests of the "
             f"measured runs) = {fmt(ob['tapir_ns_per_req'], '.0f')} ns.")
    L.append("")
    a = ob["accounting"]
    L.append("| accounting, with-tapir runs | requests |")
    L.append("|---|---:|")
    L.append(f"| answers read by wrk (its own count) | {a['answers_read_by_wrk']} |")
    L.append(f"| requests answered by nginx (`stub_status`) | {a['served_by_nginx']} |")
    L.append(f"| outbound requests observed by tapir (`tapir_outbound_requests_total`) | {a['observed']} |")
    L.append(f"| of them answered | {a['observed_answered']} |")
    L.append(f"| of them `499`: in flight when wrk stopped, closed unanswered | {a['observed_499']} |")
    L.append(f"| observed answered / read by wrk | {fmt(a['observed_answered_over_wrk'], '.6f')} |")
    L.append(f"| observed / answered by nginx | {fmt(a['observed_over_served'], '.6f')} |")
    L.append(f"| wrk socket errors + non-2xx | {a['client_errors']} |")
    for fam in sorted(ob["losses"]):
        L.append(f"| {fam} | {ob['losses'][fam]} |")
    L.append("")
    if ob["bpf_programs_warmup"]:
        L.append("| BPF program (warm-up runs) | ns / req | runs / req |")
        L.append("|---|---:|---:|")
        for p, v in sorted(ob["bpf_programs_warmup"].items(), key=lambda kv: -kv[1]["ns_per_req"]):
            L.append(f"| {p} | {v['ns_per_req']:.1f} | {v['runs_per_req']:.3f} |")
        L.append("")
    L.append("Outbound counts exact, no loss: " + ("yes" if ob["exact"] else "**no**") + ".")
    L.append("")
    return L


H2_COLUMNS = ["round", "config", "seconds", "rps", "mean_ms", "max_ms", "nghttpd_cpu_s",
              "streams", "errors", "data_bytes", "seen", "seen_200", "seen_bytes", "tapir_cpu_s",
              "losses"]


def read_h2(path):
    """Runs of the HTTP/2 case: h2load's count of the streams that succeeded and of the DATA bytes
    it read, against tapir's requests (all, and 200) and response bytes; nghttpd's CPU."""
    rows = read_case_runs(path, H2_COLUMNS)
    for row in rows:
        n = row["streams"]
        row["nghttpd_cpu_us_per_stream"] = row["nghttpd_cpu_s"] / n * 1e6 if n else None
    return rows


def h2_report(rows, bpf_rows):
    """The HTTP/2 case: nghttpd with tapir against nghttpd alone, paired by round; tapir's CPU per
    stream (BPF in the warm-ups, the daemon in the measured runs); tapir's count against h2load's."""
    by = {(r["round"], r["config"]): r for r in rows}
    per = []
    for rnd in sorted({r["round"] for r in rows}):
        b, o = by.get((rnd, "h2")), by.get((rnd, "h2+tapir"))
        if b and o and b["streams"] and o["streams"]:
            per.append({"ratio": o["rps"] / b["rps"],
                        "mean_added_ms": o["mean_ms"] - b["mean_ms"],
                        "nghttpd_cpu_added_us_per_stream":
                            o["nghttpd_cpu_us_per_stream"] - b["nghttpd_cpu_us_per_stream"]})
    if not per:
        return None
    withs = [r for r in rows if r["config"] == "h2+tapir"]
    made = sum(r["streams"] for r in withs)
    progs = bpf_summary(bpf_rows, "h2")
    bpf_ns = sum(v["ns_per_req"] for v in progs.values()) if progs else None
    daemon_ns = sum(r["tapir_cpu_s"] for r in withs) / made * 1e9 if made else None
    losses = {}
    for r in withs:
        for k, v in (r["losses"] or {}).items():
            losses[k] = losses.get(k, 0) + v
    acct = {
        "streams_succeeded_h2load": made,
        "requests_tapir": sum(r["seen"] for r in withs),
        "requests_200_tapir": sum(r["seen_200"] for r in withs),
        "data_bytes_h2load": sum(r["data_bytes"] for r in withs),
        "response_bytes_tapir": sum(r["seen_bytes"] for r in withs),
        "client_errors": sum(r["errors"] for r in withs),
    }
    # Exact: every stream h2load saw succeed counted once, as a 200, with its DATA bytes, and no
    # other request, no error, no loss.
    exact = (acct["requests_tapir"] == made and acct["requests_200_tapir"] == made
             and acct["response_bytes_tapir"] == acct["data_bytes_h2load"]
             and acct["client_errors"] == 0 and not any(losses.values()))
    out = paired_summary(rows, ("h2", "h2+tapir"), per,
                         ("rps", "mean_ms", "max_ms", "nghttpd_cpu_us_per_stream"))
    out.update({
        "per_round": per,
        "bpf_programs_warmup": progs,
        "bpf_ns_per_stream": bpf_ns,
        "daemon_ns_per_stream": daemon_ns,
        "tapir_ns_per_stream": bpf_ns + daemon_ns if bpf_ns is not None and daemon_ns is not None
        else None,
        "accounting": acct,
        "losses": losses,
        "exact": exact,
        "runs": rows,
    })
    return out


def h2_lines(h2, args):
    L = []
    m0, m1 = h2["medians"]["h2"], h2["medians"]["h2+tapir"]
    n_rounds = max(r["round"] for r in h2["runs"])
    L.append(f"## HTTP/2 ({args.h2_variant}): nghttpd --no-tls (h2c) in the one watched cgroup, "
             f"h2load -c{args.h2_clients} -m{args.h2_streams} -n{args.h2_requests} GETs of the "
             f"1 KiB file; {n_rounds} alternating rounds: medians, and of the per-round "
             f"comparisons with nghttpd alone (ratio range in brackets). h2load gives no "
             f"percentiles: latency is the mean and max of its \"time for request\"")
    L.append("")
    L.append("| run | streams/s | mean (ms) | max (ms) | nghttpd CPU (us / stream) | vs. alone: ratio | mean added (ms) | nghttpd CPU added (us / stream) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    L.append(f"| nghttpd alone | {m0['rps']:.0f} | {m0['mean_ms']:.3f} | {m0['max_ms']:.3f} | "
             f"{m0['nghttpd_cpu_us_per_stream']:.2f} | | | |")
    L.append(f"| nghttpd with tapir | {m1['rps']:.0f} | {m1['mean_ms']:.3f} | {m1['max_ms']:.3f} | "
             f"{m1['nghttpd_cpu_us_per_stream']:.2f} | {h2['ratio']:.3f} [{h2['ratio_min']:.3f}, "
             f"{h2['ratio_max']:.3f}] | {h2['mean_added_ms']:+.3f} | "
             f"{h2['nghttpd_cpu_added_us_per_stream']:+.2f} |")
    L.append("")
    L.append(f"tapir's CPU per stream: BPF {fmt(h2['bpf_ns_per_stream'], '.0f')} ns (all its "
             f"programs, `kernel.bpf_stats_enabled` in the warm-ups) + daemon "
             f"{fmt(h2['daemon_ns_per_stream'], '.0f')} ns (utime + stime over the streams of the "
             f"measured runs: HPACK, the stream table, the families) = "
             f"{fmt(h2['tapir_ns_per_stream'], '.0f')} ns.")
    L.append("")
    a = h2["accounting"]
    L.append("| accounting, with-tapir runs | h2load | tapir |")
    L.append("|---|---:|---:|")
    L.append(f"| streams (h2load: succeeded; tapir: `baseten_inference_requests_total`) | "
             f"{a['streams_succeeded_h2load']} | {a['requests_tapir']} |")
    L.append(f"| of them 200 | | {a['requests_200_tapir']} |")
    L.append(f"| DATA bytes (tapir: `baseten_response_size_bytes_sum`) | {a['data_bytes_h2load']} | "
             f"{a['response_bytes_tapir']} |")
    L.append(f"| h2load failed, errored, timed out or not 2xx | {a['client_errors']} | |")
    for fam in sorted(h2["losses"]):
        L.append(f"| {fam} | | {h2['losses'][fam]} |")
    L.append("")
    if h2["bpf_programs_warmup"]:
        L.append("| BPF program (warm-up runs) | ns / stream | runs / stream |")
        L.append("|---|---:|---:|")
        for p, v in sorted(h2["bpf_programs_warmup"].items(), key=lambda kv: -kv[1]["ns_per_req"]):
            L.append(f"| {p} | {v['ns_per_req']:.1f} | {v['runs_per_req']:.3f} |")
        L.append("")
    L.append("HTTP/2 counts exact, no loss: " + ("yes" if h2["exact"] else "**no**") + ".")
    L.append("")
    return L


def main():
    ap = argparse.ArgumentParser()
    for a in ("rounds", "bpf", "scale", "md", "json", "commit", "variant", "hooks", "others",
              "pinned", "pingpong", "pingpong-meta", "pingpong-process",
              "pingpong-process-meta"):
        ap.add_argument("--" + a, default="")
    for a in ("dd", "costs", "llm", "llm-bpf", "llm-pingpong-off", "llm-pingpong-on", "llm-variant",
              "outbound", "outbound-variant", "h2", "h2-variant"):
        ap.add_argument("--" + a, default="")
    for a in ("duration", "connections", "dd-bytes", "llm-duration", "llm-connections",
              "llm-tokens", "llm-interval-us", "h2-clients", "h2-streams", "h2-requests"):
        ap.add_argument("--" + a, type=int, default=0)
    args = ap.parse_args()

    # Each part is there when its case ran (BENCH_CASES): http, pingpong, scale, dd, llm,
    # outbound, h2.
    runs = read_runs(args.rounds) if args.rounds and os.path.exists(args.rounds) else []
    bpf = read_bpf(args.bpf)
    configs = ["nginx", "nginx+tapir", "nginx+tapirsock", "nginx+floor", "nginx+skbfloor",
               "nginx+proxy", "uvicorn", "uvicorn+tapir"]
    med_of = {c: summary_of(runs, c) for c in configs}
    n_rounds = max((r["round"] for r in runs), default=0)

    nginx_tapir = compare(runs, "nginx", "nginx+tapir") if runs else None
    nginx_proxy = compare(runs, "nginx", "nginx+proxy") if runs else None
    # tapir on the socket hooks (--bpf-hooks socket), where the kernel has them: the hooks
    # tapir picks where the socket-buffer hooks do not load.
    has_sock = any(r["config"] == "nginx+tapirsock" for r in runs)
    nginx_tapir_sock = compare(runs, "nginx", "nginx+tapirsock") if has_sock else None
    # The floor tracer (tools/floor.bpf.c), and tapir against it: what its parsing adds.
    has_floor = any(r["config"] == "nginx+floor" for r in runs)
    nginx_floor = compare(runs, "nginx", "nginx+floor") if has_floor else None
    # The floor reads the bytes at the socket hooks: tapir on the same hooks against it.
    tapir_over_floor = (compare(runs, "nginx+floor", "nginx+tapirsock")
                        if has_floor and has_sock else None)
    # The same floor at the socket buffers (cgroup_skb), reading no process memory.
    has_skb_floor = any(r["config"] == "nginx+skbfloor" for r in runs)
    nginx_skb_floor = compare(runs, "nginx", "nginx+skbfloor") if has_skb_floor else None
    costs = read_costs(args.costs)
    uvicorn_tapir = compare(runs, "uvicorn", "uvicorn+tapir") if runs else None
    dd = {"without": med(runs, "nginx", "dd_ns_per_byte"),
          "with_tapir": med(runs, "nginx+tapir", "dd_ns_per_byte")}
    dd["ratio"] = dd["with_tapir"] / dd["without"] if dd["without"] else None
    # The syscall hooks, forced, against dd alone in the same rounds of the dd phase.
    dd_rows = read_dd(args.dd) if args.dd and os.path.exists(args.dd) else []
    alone = [v for _, c, v in dd_rows if c == "alone"]
    sysc = [v for _, c, v in dd_rows if c == "syscall"]
    dd["syscall_hooks"] = statistics.median(sysc) if sysc else None
    dd["alone_in_syscall_phase"] = statistics.median(alone) if alone else None
    dd["syscall_hooks_ratio"] = (dd["syscall_hooks"] / dd["alone_in_syscall_phase"]
                                 if sysc and alone else None)
    acct = {"nginx": accounting(runs, "nginx+tapir"), "uvicorn": accounting(runs, "uvicorn+tapir")}
    if has_sock:
        acct["nginx_socket_hooks"] = accounting(runs, "nginx+tapirsock")
    progs = {"nginx": bpf_summary(bpf, "nginx"), "uvicorn": bpf_summary(bpf, "uvicorn")}
    # BPF time per nginx request (warm-ups with statistics): tapir's programs, and each floor's.
    floor_progs = {"floor": bpf_summary(bpf, "nginx+floor"),
                   "skb_floor": bpf_summary(bpf, "nginx+skbfloor")}
    progs["nginx_socket_hooks"] = bpf_summary(bpf, "nginx+tapirsock")
    bpf_per_req = {k: (sum(v["ns_per_req"] for v in p.values()) if p else None)
                   for k, p in (("tapir", progs["nginx"]), ("tapir_socket_hooks", progs["nginx_socket_hooks"]),
                                ("floor", floor_progs["floor"]),
                                ("skb_floor", floor_progs["skb_floor"]))}
    done = {
        "nginx_cpu_added_le_1us": nginx_tapir["cpu_added_us_per_req"] <= TARGET_CPU_US,
        "nginx_ratio_ge_0_95": nginx_tapir["ratio"] >= TARGET_RATIO,
        "nginx_p99_added_lt_50us": nginx_tapir["p99_added_ms"] < TARGET_P99_MS,
        "counts_exact_loss_0": acct["nginx"]["exact"] and acct["uvicorn"]["exact"],
    } if runs else {}
    # nginx's CPU leaves out what runs in another context for it (on loopback the socket-buffer
    # hooks' ingress half runs in wrk's): every program's BPF time per request is the whole.
    if runs and bpf_per_req["tapir"] is not None:
        done["nginx_bpf_le_1us"] = bpf_per_req["tapir"] <= TARGET_CPU_US * 1000
    pp = read_pingpong(args.pingpong, args.pingpong_meta, bpf, "pingpong")
    if pp:
        done["pingpong_added_le_1us"] = pp["added_ns_median"] <= TARGET_CPU_US * 1000
        if pp["bpf_ns_per_exchange"] is not None:
            done["pingpong_bpf_le_1us"] = pp["bpf_ns_per_exchange"] <= TARGET_CPU_US * 1000
    # The same on the hooks that follow the process, where tapir picked others above.
    pp_process = read_pingpong(args.pingpong_process, args.pingpong_process_meta, bpf,
                               "pingpong-process")
    scale = read_scale(args.scale)
    if scale:
        # The issue's terms: the RSS with at least 1,000 watched cgroups, every scrape of at
        # least 10,000 series under 20 ms.
        done["daemon_rss_lt_32mib"] = scale["watched_cgroups"] >= 1000 and scale["rss_mib"] < 32
        done["scrape_lt_20ms"] = (scale["series"] >= 10000 and scale["scrape_ms_max"] is not None
                                  and scale["scrape_ms_max"] < 20)
    llm = llm_report(read_llm(args.llm), read_llm_bpf(args.llm_bpf),
                     read_pingpong(args.llm_pingpong_off, args.llm_pingpong_off.replace(".tsv", "-meta.tsv")),
                     read_pingpong(args.llm_pingpong_on, args.llm_pingpong_on.replace(".tsv", "-meta.tsv")))
    if llm:
        done["llm_counts_exact_loss_0"] = llm["exact"]
    outbound = outbound_report(read_outbound(args.outbound), bpf, args.connections)
    if outbound:
        done["outbound_counts_exact_loss_0"] = outbound["exact"]
    h2 = h2_report(read_h2(args.h2), bpf)
    if h2:
        done["h2_counts_exact_loss_0"] = h2["exact"]
    mach = machine()
    report = {
        "schema": 1,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": args.commit,
        "machine": mach,
        "settings": {"duration_s": args.duration, "rounds": n_rounds,
                     "connections": args.connections, "wrk_threads": 1,
                     "dd_bytes": args.dd_bytes, "servers_pinned_cpu0_wrk_cpu1": args.pinned == "yes",
                     "tapir_pinned": False, "bpf_hooks_asked": args.hooks,
                     "tapir_variant": args.variant,
                     "llm": {"duration_s": args.llm_duration, "connections": args.llm_connections,
                             "tokens_per_stream": args.llm_tokens,
                             "interval_us": args.llm_interval_us,
                             "tapir_variant": args.llm_variant},
                     "outbound": {"duration_s": args.duration, "connections": args.connections,
                                  "tapir_variant": args.outbound_variant},
                     "h2": {"clients": args.h2_clients, "streams_per_client": args.h2_streams,
                            "requests": args.h2_requests, "tapir_variant": args.h2_variant}},
        "disturbed_by_other_tapirs": args.others or None,
        "medians": med_of,
        "nginx_with_tapir": nginx_tapir,
        "nginx_behind_proxy": nginx_proxy,
        "nginx_with_floor_tracer": nginx_floor,
        "tapir_over_floor_tracer": tapir_over_floor,
        "nginx_with_skb_floor": nginx_skb_floor,
        "nginx_with_tapir_socket_hooks": nginx_tapir_sock,
        "bpf_ns_per_nginx_request": bpf_per_req,
        "floor_programs_warmup": floor_progs,
        "helper_costs_ns": costs or None,
        "uvicorn_with_tapir": uvicorn_tapir,
        "dd_unwatched_ns_per_byte": dd,
        "accounting": acct,
        "bpf_programs_warmup": progs,
        "daemon_at_scale": scale,
        "http_path_pingpong": pp,
        "http_path_pingpong_process_hooks": pp_process,
        "llm_streams": llm,
        "outbound_requests": outbound,
        "h2": h2,
        "targets": {"cpu_added_us_per_req": TARGET_CPU_US, "ratio": TARGET_RATIO,
                    "p99_added_ms": TARGET_P99_MS, "met": done},
        "runs": runs,
    }
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2, sort_keys=False)
        f.write("\n")

    L = []
    if runs:
        L.append(f"## tapir overhead ({args.variant}): wrk -t1 -c{args.connections} -d{args.duration}s, "
                 f"{n_rounds} alternating rounds: medians of the runs, and of the per-round "
                 f"comparisons with the run alone (ratio range over rounds in brackets)")
        L.append("")
        L.append("| run | req/s | p50 (ms) | p99 (ms) | server CPU (us / req) | vs. alone: ratio | p99 added (ms) | CPU added (us / req) |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        rows = [("nginx, 1 KiB static file", "nginx", None),
                ("nginx with tapir", "nginx+tapir", nginx_tapir),
                ("nginx with tapir on the socket hooks (--bpf-hooks socket)",
                 "nginx+tapirsock", nginx_tapir_sock),
                ("nginx with the floor tracer (tools/floor.bpf.c)", "nginx+floor", nginx_floor),
                ("nginx with the socket-buffer floor (cgroup_skb)", "nginx+skbfloor",
                 nginx_skb_floor),
                ("nginx behind an nginx proxy (CPU: both)", "nginx+proxy", nginx_proxy),
                ("uvicorn + FastAPI, JSON", "uvicorn", None),
                ("uvicorn with tapir", "uvicorn+tapir", uvicorn_tapir)]
        for label, c, cmp_ in rows:
            m = med_of[c]
            if m["rps"] is None:
                continue
            L.append(f"| {label} | {fmt(m['rps'], '.0f')} | {fmt(m['p50_ms'], '.3f')} | "
                     f"{fmt(m['p99_ms'], '.3f')} | {fmt(m['cpu_us_per_req'], '.2f')} | "
                     + (f"{cmp_['ratio']:.3f} [{cmp_['ratio_min']:.3f}, {cmp_['ratio_max']:.3f}] | "
                        f"{cmp_['p99_added_ms']:+.3f} | {cmp_['cpu_added_us_per_req']:+.2f} |"
                        if cmp_ else " | | |"))
        L.append("")
        if tapir_over_floor:
            L.append(f"The floor tracer does per call only what any tracer that reads the bytes "
                     f"must: the cgroup filter, the connection's state, one read of the buffer (the "
                     f"iovec array first for writev), a clock read, an aggregate update per answer. "
                     f"It adds {nginx_floor['cpu_added_us_per_req']:+.2f} us of nginx CPU per "
                     f"request here; tapir on the same hooks adds "
                     f"{tapir_over_floor['cpu_added_us_per_req']:+.2f} us beyond it (median of "
                     f"per-round differences), which is its parsing.")
            L.append("")
        if any(v is not None for v in bpf_per_req.values()):
            L.append(f"BPF time per nginx request (kernel.bpf_stats_enabled, warm-ups, all of each "
                     f"one's programs): tapir {fmt(bpf_per_req['tapir'], '.0f')} ns; tapir on the "
                     f"socket hooks {fmt(bpf_per_req['tapir_socket_hooks'], '.0f')} ns; the floor "
                     f"tracer at the same socket hooks {fmt(bpf_per_req['floor'], '.0f')} ns; the "
                     f"same floor at the socket buffers (cgroup_skb, no read of the process's "
                     f"memory, no TCP reassembly) {fmt(bpf_per_req['skb_floor'], '.0f')} ns.")
            L.append("")
    if costs:
        L.append("Kernel helpers on this machine (tools/floor costs, ns per call, net of the "
                 "program's own run): " + ", ".join(f"{k} {v:.1f}" for k, v in costs.items()) + ".")
        L.append("")
    if runs or dd_rows:
        L.append(f"dd bs=1 of {args.dd_bytes} bytes outside every watched cgroup (a read and a write "
                 f"per byte): {fmt(dd['without'], '.1f')} ns/byte alone, {fmt(dd['with_tapir'], '.1f')} "
                 f"with tapir, ratio {fmt(dd['ratio'], '.3f')}. The same with tapir forced onto "
                 f"syscall hooks (what kernels without socket tracepoints or trampolines run): "
                 f"{fmt(dd['syscall_hooks'], '.1f')} ns/byte against {fmt(dd['alone_in_syscall_phase'], '.1f')} "
                 f"alone in the same rounds, ratio {fmt(dd['syscall_hooks_ratio'], '.3f')}.")
        L.append("")
    if runs:
        L.append("| accounting, with-tapir runs | nginx | uvicorn |")
        L.append("|---|---:|---:|")
        a, b = acct["nginx"], acct["uvicorn"]
        L.append(f"| requests made (wrk) | {a['made']} | {b['made']} |")
        L.append(f"| requests served (nginx stub_status; the app's own count) | {a['served']} | {b['served']} |")
        L.append(f"| requests observed by tapir | {a['seen']} | {b['seen']} |")
        L.append(f"| observed / served | {fmt(a['seen_over_served'], '.6f')} | {fmt(b['seen_over_served'], '.6f')} |")
        L.append(f"| wrk socket errors + non-2xx | {a['client_errors']} | {b['client_errors']} |")
        for fam in sorted(set(a["losses"]) | set(b["losses"])):
            L.append(f"| {fam} | {a['losses'].get(fam, 0)} | {b['losses'].get(fam, 0)} |")
        L.append(f"| tapir daemon CPU (us / req) | {fmt(a['daemon_cpu_us_per_req'], '.3f')} | "
                 f"{fmt(b['daemon_cpu_us_per_req'], '.3f')} |")
        L.append("")
        if has_sock:
            k = acct["nginx_socket_hooks"]
            lost = ", ".join(f"{f} {v}" for f, v in sorted(k["losses"].items()) if v) or "none"
            L.append(f"On the socket hooks (--bpf-hooks socket) tapir observed {k['seen']} of "
                     f"the {k['served']} requests nginx served (losses counted: {lost}); its "
                     f"programs per nginx request: "
                     + ", ".join(f"{p} {v['ns_per_req']:.0f} ns ({v['runs_per_req']:.2f} runs)"
                                 for p, v in sorted(progs["nginx_socket_hooks"].items()))
                     + ".")
            L.append("")
        if progs["nginx"] or progs["uvicorn"]:
            L.append("| BPF program (kernel.bpf_stats_enabled, warm-up runs) | nginx ns / req | runs / req | uvicorn ns / req | runs / req |")
            L.append("|---|---:|---:|---:|---:|")
            names = sorted(set(progs["nginx"]) | set(progs["uvicorn"]),
                           key=lambda p: -progs["nginx"].get(p, {"ns_per_req": 0})["ns_per_req"])
            for p in names:
                x, y = progs["nginx"].get(p), progs["uvicorn"].get(p)
                L.append(f"| {p} | {fmt(x and x['ns_per_req'], '.1f')} | {fmt(x and x['runs_per_req'], '.3f')} | "
                         f"{fmt(y and y['ns_per_req'], '.1f')} | {fmt(y and y['runs_per_req'], '.3f')} |")
            tx = sum(v["ns_per_req"] for v in progs["nginx"].values())
            ty = sum(v["ns_per_req"] for v in progs["uvicorn"].values())
            L.append(f"| **all programs** | **{tx:.1f}** | | **{ty:.1f}** | |")
            L.append("")
    for p in (pp, pp_process):
        if not p:
            continue
        L.append(f"The HTTP path alone (tools/pingpong.c, tapir on the {p['hooks']} hooks: one "
                 f"thread plays wrk and nginx over "
                 f"loopback, {p['exchanges']} exchanges per half-round in a watched then an "
                 f"unwatched cgroup, {p['rounds']} rounds): {p['unwatched_ns_median']:.0f} ns of "
                 f"CPU per exchange unwatched, {p['added_ns_median']:+.0f} ns watched (median of "
                 f"per-round differences; ratio {p['ratio_median']:.3f}, quartiles "
                 f"{p['ratio_q1']:.3f} to {p['ratio_q3']:.3f}). On hooks that follow the process "
                 f"the client's calls pay their connection lookups in it.")
        if p["bpf_programs"]:
            L.append(f"BPF time per watched exchange ({p['stats_rounds']} more watched halves "
                     f"with `kernel.bpf_stats_enabled`): **{p['bpf_ns_per_exchange']:.0f} ns** (" +
                     ", ".join(f"`{k}` {v['ns_per_req']:.0f} in {v['runs_per_req']:.2f} runs"
                               for k, v in sorted(p["bpf_programs"].items(),
                                                  key=lambda kv: -kv[1]["ns_per_req"])
                               if v["ns_per_req"] >= 1) + ").")
        L.append(f"tapir counted {p['seen']} of the {p['sent']} exchanges: " +
                 ("exact." if p["exact"] else "**not exact**."))
        L.append("")
    if scale:
        L.append(f"Daemon at scale: {scale['watched_cgroups']} watched cgroups, {scale['series']} "
                 f"series, RSS {scale['rss_mib']:.1f} MiB; {scale['scrapes']} scrapes during wrk "
                 f"on nginx: median {fmt(scale['scrape_ms_median'], '.1f')} ms, max "
                 f"{fmt(scale['scrape_ms_max'], '.1f')} ms; requests served {scale['served']}, "
                 f"observed {scale['seen']}, records lost {scale['records_lost']}.")
        L.append("")
    if llm:
        L += llm_lines(llm, args)
    if outbound:
        L += outbound_lines(outbound, args)
    if h2:
        L += h2_lines(h2, args)
    if runs:
        L.append("Targets on nginx: CPU added <= 1 us/req: " + ("met" if done["nginx_cpu_added_le_1us"] else "**not met**")
                 + ("; BPF time <= 1 us/req (every program, wherever it ran): "
                    + ("met" if done["nginx_bpf_le_1us"] else "**not met**")
                    if "nginx_bpf_le_1us" in done else "")
                 + "; ratio >= 0.95: " + ("met" if done["nginx_ratio_ge_0_95"] else "**not met**")
                 + "; p99 added < 50 us: " + ("met" if done["nginx_p99_added_lt_50us"] else "**not met**")
                 + "; counts exact, loss 0: " + ("met" if done["counts_exact_loss_0"] else "**not met**")
                 + ("; daemon RSS < 32 MiB with 1,000 cgroups: " + ("met" if done["daemon_rss_lt_32mib"] else "**not met**")
                    + "; every scrape of 10,000 series < 20 ms: " + ("met" if done["scrape_lt_20ms"] else "**not met**") if scale else "")
                 + ".")
        L.append("")
    if args.others:
        L.append(f"**Disturbed:** other tapir processes ran during the runs (pids {args.others}).")
        L.append("")
    pin = ("servers (nginx, the proxy, uvicorn, llm_server, nghttpd) pinned to CPU 0, wrk and "
           "h2load to CPU 1, tapir unpinned"
           if args.pinned == "yes" else "nothing pinned (one CPU)")
    L.append(f"Machine: {mach['cpus']} CPUs, {mach['cpu_model']}, {mach['memory_gib']} GiB, Linux "
             f"{mach['kernel']}; {pin}; commit {args.commit}; {report['date']}.")
    with open(args.md, "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
