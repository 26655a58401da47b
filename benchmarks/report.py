"""Turns the result dict into the printed report and the list of targets met or missed."""
from . import distributed

# (workload, minimum fraction of ceiling) from ../shared/design.md and issue 6
CEILING_TARGETS = {"w1": 0.65, "w2b32": 0.60, "w2b128": 0.70, "w3": 0.80, "w4": 0.70}


def _rate(v):
    if v is None:
        return "-"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k"


def _ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def _pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"


def machine_lines(m, meta):
    """Returns the header lines: commit, machine, versions, BLAS, run settings."""
    dirty = " + uncommitted changes" if m.get("fastfit_dirty") else ""
    v = m["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in v)
    lines = [f"fastfit benchmarks - fastfit commit {m['fastfit_commit']}{dirty} - {m['date_utc']}",
             f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}",
             f"libraries: {libs}"]
    if m.get("keras_backend"):
        lines.append(f"keras backend: {m['keras_backend']}")
    for b in m["blas"]:
        if "note" in b:
            lines.append(f"BLAS: {b['note']}")
        else:
            lines.append(f"BLAS: {b['internal_api']} {b['version']} ({b['library']}, {b['num_threads']} threads, "
                         f"{b.get('architecture') or b.get('threading_layer') or '?'})")
    lines.append(f"run: {meta['samples']} x 784 float32 samples, 1 warm-up epoch, median of {meta['repeats']} "
                 f"epochs, engines interleaved, each engine in its own process")
    return lines


def throughput_lines(workloads, engines):
    """Returns the main table (one block per workload) and the skipped-engine notes."""
    head = (f"{'workload':40s} {'engine':12s} {'samples/s':>10s} {'of ceiling':>10s} {'vs ref':>7s} "
            f"{'vs peer':>8s} {'step us':>8s} {'beyond GEMM us':>14s}")
    lines = [head, "-" * len(head)]
    for w in workloads:
        c = w["ceiling"]
        lines.append(f"{w['title']:40s} {'ceiling':12s} {_rate(c['samples_per_s']):>10s} {'100%':>10s} "
                     f"{'':>7s} {'':>8s} {c['step_seconds'] * 1e6:8.1f}   ({c['gflops']:.0f} GFLOP/s sgemm)")
        for name, r in w["results"].items():
            if "error" in r:
                lines.append(f"{'':40s} {name:12s} failed: {r['error'][:200]}")
                continue
            lines.append(f"{'':40s} {name:12s} {_rate(r['samples_per_s']):>10s} "
                         f"{_pct(r['fraction_of_ceiling']):>10s} {_ratio(r.get('vs_reference')):>7s} "
                         f"{_ratio(r.get('vs_best_peer')):>8s} {r['step_us']:8.1f} {r['overhead_us']:14.1f}")
    for w in workloads:
        ff = w["results"].get("fastfit", {})
        if ff.get("input_check_us") is not None and "overhead_us" in ff:
            lines.append(f"{w['name']}: fastfit's input check (NaN/inf scan of x and y, once per fit call, "
                         f"timed apart in the same run): {ff['input_check_us']:.1f} us per step; beyond GEMM "
                         f"without it: {ff['overhead_us'] - ff['input_check_us']:.1f} us")
    for name, e in engines.items():
        if not e["available"]:
            lines.append(f"skipped {name}: {e['note']}")
        elif e["note"]:
            lines.append(f"{name}: {e['note']}")
    return lines


def _spread(variant):
    """'+1.2% (quartiles -3.0% .. +5.1%)' for one callbacks variant."""
    low, high = variant["pct_quartiles"]
    return f"{variant['pct']:+.1f}% (block quartiles {low:+.1f}% .. {high:+.1f}%)"


def inference_lines(inf):
    """The lines of the inference section (benchmarks/inference.py)."""
    from .inference import fractions
    lines = []
    for engine, res in inf.items():
        if "error" in res:
            lines.append(f"inference {engine}: failed: {res['error']}")
    ok = {e: r for e, r in inf.items() if "error" not in r}
    if not ok:
        return lines
    samples = next(iter(ok.values()))["samples"]
    lines.append(f"inference ({samples} rows, float32; ms unless marked):")
    share = fractions(ok)
    for name in next(iter(ok.values()))["workloads"]:
        ff = ok.get("fastfit", {}).get("workloads", {}).get(name, {})
        th = ok.get("torch", {}).get("workloads", {}).get(name, {})
        ks = ok.get("keras", {}).get("workloads", {}).get(name, {})
        parts = []
        if ff:
            f = share.get(name, {})
            parts.append(f"fastfit predict {ff['predict_s'] * 1e3:.1f} ({_pct(f['predict_of_ceiling'])} of the "
                         f"forward ceiling {ff['ceiling_s'] * 1e3:.1f}), evaluate {ff['evaluate_s'] * 1e3:.1f} "
                         f"({_pct(f['evaluate_of_ceiling'])}), one row {ff['one_row_us']:.1f} us")
        if th:
            parts.append(f"torch no_grad whole array {th['predict_whole_s'] * 1e3:.1f}, 32-row chunks "
                         f"{th['predict_chunks32_s'] * 1e3:.1f}, one row {th['one_row_us']:.1f} us")
        if ks:
            parts.append(f"keras predict {ks['predict_s'] * 1e3:.1f}, one row {ks['one_row_us']:.1f} us")
        lines.append(f"  {name}: " + "; ".join(parts))
        if "validation_share" in ff:
            lines.append(f"  {name} fit with validation_split=0.1: validation pass {_pct(ff['validation_share'])} "
                         f"of the epoch (target <= 5%)")
        if "fit_kept" in ff:
            peer = f" (torch: {_pct(th['fit_kept'])}, {_pct(th['predict_kept'])})" if "fit_kept" in th else ""
            lines.append(f"  {name} one core busy: training keeps {_pct(ff['fit_kept'])}, predict keeps "
                         f"{_pct(ff['predict_kept'])} of the quiet speed{peer} (targets >= 45%)")
    return lines


def section_lines(results):
    """Returns the lines for the inference, callbacks, GIL, memory and checkpoint sections that ran."""
    lines = inference_lines(results["inference"]) if results.get("inference") else []
    cb = results.get("callbacks")
    if cb and "error" not in cb:
        lines += [f"callbacks on W1 ({cb['engine']} engine, {cb['samples']} samples, {cb['batches_per_epoch']} "
                  f"batches/epoch, switched on and off inside one fit per variant, median of {cb['blocks']} "
                  f"4-epoch blocks ({3 * cb['blocks']} for the standard set and the batch hook); epoch without "
                  f"callbacks "
                  f"{cb['variants']['standard']['epoch_s'] * 1e3:.1f} ms)",
                  f"  null (the method's noise floor): {_spread(cb['variants']['null'])}",
                  f"  ModelCheckpoint+EarlyStopping+CSVLogger (+History): {_spread(cb['variants']['standard'])}; "
                  f"{cb['variants']['standard']['in_hooks_ms_per_epoch']:.2f} ms/epoch inside their hooks "
                  "(target <= 2%)",
                  f"  verbose=1 to a file: {_spread(cb['variants']['verbose1'])} (target <= 3%)",
                  f"  on_batch_end hook: {cb['batch_hook_us']:.2f} us per batch beyond the hook body "
                  f"({cb['hook_self_us']:.2f} us) (target <= 2 us); on a tiny model (warm caches): "
                  f"{cb.get('batch_hook_warm_us', float('nan')):.2f} us"]
    elif cb:
        lines.append(f"callbacks: failed: {cb['error']}")
    for g in results.get("gil", []):
        if "error" in g:
            lines.append(f"GIL: failed: {g['error']}")
            continue
        lines += [f"GIL ({g['engine']} engine, {g['workload']}, BLAS 1 thread via {g['blas_limit']}):",
                  f"  counting thread keeps {_pct(g['counter_kept'])}, training keeps {_pct(g['train_kept'])} "
                  f"(targets >= 85%)",
                  f"  two fits in two threads: {g['two_thread_speedup']:.2f}x faster than one after the other "
                  f"(target >= 1.7x)"]
    mem = results.get("memory")
    if mem and "error" not in mem:
        mib = 1 << 20
        lines += [f"memory of a W1 fit ({mem['engine']} engine, {mem['samples']} samples): peak RSS "
                  f"{mem['peak_rss'] / mib:.0f} MiB, budget {mem['budget'] / mib:.0f} MiB = base "
                  f"{mem['rss_base'] / mib:.0f} + inputs {mem['input_bytes'] / mib:.0f} x 1.1 + state "
                  f"{mem['state_bytes'] / mib:.2f}: {'within' if mem['within_budget'] else 'OVER'} budget",
                  f"  growth during fit {mem['fit_growth'] / mib:.1f} MiB; largest traced allocation peak in fit "
                  f"{mem['traced_peak_in_fit'] / mib:.1f} MiB: "
                  f"{'COPIES the data set' if mem['copies_dataset'] else 'no copy of the data set'}"]
    elif mem:
        lines.append(f"memory: failed: {mem['error']}")
    lines += streaming_lines(results.get("streaming"))
    lines += distributed.report_lines(results.get("distributed"))
    ck = results.get("checkpoint")
    if ck and "error" not in ck:
        lines.append(f"checkpoint: model.save of W3 ({ck['params']} params + Adam state, "
                     f"{ck['file_bytes'] / (1 << 20):.1f} MiB file): {ck['median_ms']:.1f} ms median")
    elif ck:
        lines.append(f"checkpoint: failed: {ck['error']}")
    return lines


def targets(results):
    """Returns `[{name, value, target, met}]` for every design target that this run measured."""
    out = []

    def add(name, value, target, met):
        out.append({"name": name, "value": value, "target": target, "met": bool(met)})

    for w in results.get("workloads", []):
        ff = w["results"].get("fastfit", {})
        if "samples_per_s" not in ff:
            continue
        goal = CEILING_TARGETS.get(w["name"])
        if goal:
            add(f"{w['name']} fraction of ceiling", ff["fraction_of_ceiling"], f">= {goal}",
                ff["fraction_of_ceiling"] >= goal)
        if w["name"] == "w1":
            if ff.get("vs_reference"):
                add("w1 vs reference engine", ff["vs_reference"], ">= 3", ff["vs_reference"] >= 3)
            add("w1 per-step overhead us", ff["overhead_us"], "<= 20", ff["overhead_us"] <= 20)
        for peer in ("torch", "keras"):
            rate = w["results"].get(peer, {}).get("samples_per_s")
            if rate:
                add(f"{w['name']} vs {peer}", ff["samples_per_s"] / rate, "> 1", ff["samples_per_s"] > rate)
    inf = {e: r for e, r in (results.get("inference") or {}).items() if "error" not in r}
    if "fastfit" in inf:
        from .inference import fractions
        for name, f in fractions(inf).items():
            add(f"{name} predict fraction of forward ceiling", f["predict_of_ceiling"], ">= 0.75",
                f["predict_of_ceiling"] >= 0.75)
            add(f"{name} evaluate fraction of forward ceiling", f["evaluate_of_ceiling"], ">= 0.75",
                f["evaluate_of_ceiling"] >= 0.75)
            if "predict_vs_torch" in f:
                add(f"{name} predict vs torch no_grad", f["predict_vs_torch"], "> 1", f["predict_vs_torch"] > 1)
                add(f"{name} evaluate vs torch no_grad", f["evaluate_vs_torch"], "> 1", f["evaluate_vs_torch"] > 1)
        w2 = inf["fastfit"]["workloads"].get("w2b32", {})
        if "one_row_us" in w2:
            add("w2 one-row predict us", w2["one_row_us"], "<= 15", w2["one_row_us"] <= 15)
            torch_w2 = inf.get("torch", {}).get("workloads", {}).get("w2b32", {})
            if "one_row_us" in torch_w2:
                add("w2 one-row predict vs torch", torch_w2["one_row_us"] / w2["one_row_us"], "> 1",
                    w2["one_row_us"] < torch_w2["one_row_us"])
        if "validation_share" in w2:
            add("w2 validation pass share", w2["validation_share"], "<= 0.05", w2["validation_share"] <= 0.05)
        if "fit_kept" in w2:
            add("w2 training kept, one core busy", w2["fit_kept"], ">= 0.45", w2["fit_kept"] >= 0.45)
            add("w2 predict kept, one core busy", w2["predict_kept"], ">= 0.45", w2["predict_kept"] >= 0.45)
    cb = results.get("callbacks")
    if cb and "error" not in cb:
        add("callbacks standard set %", cb["standard_pct"], "<= 2", cb["standard_pct"] <= 2)
        add("verbose=1 %", cb["verbose1_pct"], "<= 3", cb["verbose1_pct"] <= 3)
        add("batch hook us", cb["batch_hook_us"], "<= 2", cb["batch_hook_us"] <= 2)
    for g in results.get("gil", []):
        if "error" in g or g["engine"] != "cython":
            continue
        add("GIL counter kept", g["counter_kept"], ">= 0.85", g["counter_kept"] >= 0.85)
        add("GIL training kept", g["train_kept"], ">= 0.85", g["train_kept"] >= 0.85)
        add("two threads speed-up", g["two_thread_speedup"], ">= 1.7", g["two_thread_speedup"] >= 1.7)
    for item in distributed.targets(results.get("distributed")):
        add(*item)
    mem = results.get("memory")
    if mem and "error" not in mem:
        add("memory within budget", mem["peak_rss"], f"<= {mem['budget']:.0f}", mem["within_budget"])
        add("no data set copy", mem["traced_peak_in_fit"], "< x.nbytes / 2", not mem["copies_dataset"])
    return out


def target_lines(items):
    """Returns one line per target: met/MISSED, name, value, target."""
    return [f"  {'met   ' if t['met'] else 'MISSED'} {t['name']}: {t['value']:.3g} (target {t['target']})"
            for t in items]


def sequence_lines(sq):
    """The Sequence lines of the streaming section: the waits case against its target, the CPU case beside
    the ceiling the cores allow (`benchmarks.streaming.measure_sequence`)."""
    lines = [f"  Sequence on {sq['workload']} (step {sq['step_s'] * 1e3:.2f} ms), workers=2, of the in-memory rate:"]
    if "waits_threads_ratio" in sq:
        lines.append(f"    __getitem__ waits one step (slow storage): threads {_pct(sq['waits_threads_ratio'])}, "
                     f"processes {_pct(sq['waits_processes_ratio'])} (target >= 80%)")
    text = "    __getitem__ costs one step of CPU"
    if "getitem_cpu_s" in sq:
        text += f" ({sq['getitem_cpu_s'] * 1e3:.1f} ms)"
    text += f": threads {_pct(sq['threads_ratio'])}, processes {_pct(sq['processes_ratio'])}"
    if sq.get("cpu_ceiling_ratio") is not None:
        text += (f" (ceiling on {sq['cores']} cores {_pct(sq['cpu_ceiling_ratio'])}: 1-thread step "
                 f"{sq['one_thread_step_s'] * 1e3:.1f} ms CPU + __getitem__; the engine alone on one thread "
                 f"{_pct(sq.get('one_thread_ratio'))})")
    lines.append(text)
    return lines


def streaming_lines(st):
    """Lines of the streaming section (issue 21), or [] when it did not run."""
    if not st:
        return []
    if "error" in st:
        return [f"streaming: failed: {st['error']}"]
    mib, b, sp, sq = 1 << 20, st["bound"], st["speed"], st["sequence"]
    lines = [f"streaming ({st['engine']} engine): W1 fit from a {b['file_bytes'] / mib:.0f} MiB memmap, buffer "
             f"{b['buffer_size'] / mib:.0f} MiB: RssAnon grew {b['growth'] / mib:.0f} MiB (bound 2 x buffer + "
             f"{b['workspaces'] / mib:.1f} MiB model/workspaces = {b['bound'] / mib:.0f} MiB): "
             f"{'within' if b['within_bound'] else 'OVER'}; epoch {b['epoch_s']:.1f} s; files on "
             f"{st.get('filesystem', '?')}" + (" (in RAM: bound and cold figures mean nothing)"
                                               if st.get("filesystem") == "tmpfs" else "")]
    if "h5py" in b:
        h5 = b["h5py"]
        cache = f" + HDF5 chunk cache {h5['chunk_cache'] / mib:.0f} MiB = {h5['bound'] / mib:.0f} MiB" \
            if "chunk_cache" in h5 else ""
        lines.append(f"  the same rows from HDF5 (read into the buffers): RssAnon grew {h5['growth'] / mib:.0f} MiB "
                     f"(bound{cache}): {'within' if h5['within_bound'] else 'OVER'}; epoch {h5['epoch_s']:.1f} s")
    for name, row in sp["workloads"].items():
        text = f"  {name} on {sp['samples']} rows, buffer {sp['buffer_size'] / mib:.0f} MiB: in memory " \
               f"{row['in_memory_s'] * 1e3:.0f} ms/epoch; warm memmap {_pct(row['memmap_warm_ratio'])}, h5py " \
               f"{_pct(row['h5py_warm_ratio'])} of it (target >= 90%)"
        if "memmap_cold_ratio" in row:
            text += f"; cold memmap {_pct(row['memmap_cold_ratio'])}, h5py {_pct(row['h5py_cold_ratio'])}"
        lines.append(text)
        if "in_memory_cpu_s" in row:
            kinds = [k for k in ("memmap", "h5py_contiguous", "h5py") if f"{k}_reader_cpu_s" in row]
            lines.append(f"    training {row.get('training_cpu_s', row['in_memory_cpu_s']) * 1e3:.0f} ms CPU/epoch at "
                         f"least on {sp.get('cores', '?')} cores; reader CPU/epoch -> ceiling: " + ", ".join(
                             f"{k} {row[f'{k}_reader_cpu_s'] * 1e3:.0f} ms -> {_pct(row[f'{k}_ceiling_ratio'])}"
                             for k in kinds))
        if "h5py_contiguous_warm_ratio" in row:
            lines.append("    contiguous HDF5 dataset (mapped in place): warm "
                         f"{_pct(row['h5py_contiguous_warm_ratio'])}")
    if "disk_read_bytes_per_s" in sp:
        lines.append(f"  disk sequential read {sp['disk_read_bytes_per_s'] / mib:.0f} MiB/s "
                     f"({sp['data_bytes'] / mib:.0f} MiB file)")
    lines += sequence_lines(sq)
    for key, value in sq.get("anchors", {}).items():
        lines.append(f"  anchor {key}: {value if isinstance(value, str) else f'{value * 1e3:.0f} ms/epoch'}")
    return lines
