"""classify-image against the Python original, on the same weights, images and machine.

Run through scripts/bench.sh, which sets up and builds first:

  bench.py run [--quick] [--out FILE]      every figure of docs/BENCHMARKS.md, with ratios and targets
  bench.py python-inprocess MODEL WEIGHTS LOADS FORWARDS
                                           PyTorch's side of the in-process figures, as JSON (internal)

What is compared (docs/BENCHMARKS.md says why each one):
  classify-image   target/release/classify-image, and benches/inprocess.rs for in-process figures
  original         scripts/classify_image.py: the tutorial's script, builds all five models on every run
  fair             scripts/classify_image_fair.py: builds only the chosen model, inference_mode, batches
All of them get random-initialised weights of the official sizes (target/bench/*.pth, torchvision's own
initialisation, seed 0) and the same images; medians everywhere, ratios taken within the same run.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SCRIPTS = os.path.join(ROOT, "scripts")
BENCH = os.path.join(ROOT, "target", "bench")
OURS = os.path.join(ROOT, "target", "release", "classify-image")
PYTHON = sys.executable
SEED_MODELS = ["vgg16", "vgg19", "inception", "densenet", "resnet"]
# ResNet-50's multiply-adds at 224×224 (torchvision's "GFLOPS"); FLOPs are twice that.
RESNET50_GMACS = 4.09
THROUGHPUT_MODEL = "resnet"
BATCH = 8


def median(xs):
    return statistics.median(xs)


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- fixtures

def make_weights(model):
    """Official-size weights, randomly initialised as torchvision initialises the model (seed 0)."""
    path = os.path.join(BENCH, f"{model}.pth")
    if not os.path.exists(path):
        import torch
        sys.path.insert(0, SCRIPTS)
        from classify_image import CONSTRUCTORS
        torch.manual_seed(0)
        state = CONSTRUCTORS[model]().state_dict()
        tmp = path + ".tmp"
        torch.save(state, tmp)
        os.replace(tmp, path)
    return path


def make_images(count):
    """`count` JPEG photos of ordinary sizes: crops of the five bundled images at varied scales (seeded)."""
    folder = os.path.join(BENCH, f"images{count}")
    if os.path.isdir(folder) and len(os.listdir(folder)) == count:
        return folder
    import cv2
    import numpy as np
    rng = np.random.default_rng(0)
    photos = [cv2.imread(os.path.join(ROOT, "images", f)) for f in sorted(os.listdir(os.path.join(ROOT, "images")))
              if not f.endswith(".md")]
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        scale = rng.uniform(0.8, 1.6)
        image = cv2.resize(photo[y:y + ch, x:x + cw], (int(cw * scale), int(ch * scale)))
        cv2.imwrite(os.path.join(tmp, f"photo{i:02d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


# ---------------------------------------------------------------------------------------------- measuring

def rust_inprocess(model, weights, loads, forwards):
    out = subprocess.run(["cargo", "bench", "--quiet", "--bench", "inprocess", "--", model, weights, str(loads),
                          str(forwards)], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def python_inprocess(model, weights, loads, forwards):
    out = subprocess.run([PYTHON, __file__, "python-inprocess", model, weights, str(loads), str(forwards)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def python_inprocess_cmd(args):
    """torchvision's path: build the model (random init), load_state_dict(torch.load(...)), then eager
    forward passes under inference_mode on the same random input shapes as benches/inprocess.rs."""
    import torch
    sys.path.insert(0, SCRIPTS)
    from classify_image import CONSTRUCTORS, load_local_state_dict
    from pyimagesearch import config
    load_ms, model = [], None
    for _ in range(args.loads):
        model = None
        start = time.perf_counter()
        model = load_local_state_dict(CONSTRUCTORS[args.model](), args.weights).eval()
        load_ms.append((time.perf_counter() - start) * 1e3)
    size = config.preset(args.model)[0]
    torch.manual_seed(0)

    def forward_ms(batch):
        x = torch.randn(batch, 3, size, size)
        times = []
        with torch.inference_mode():
            for _ in range(2):
                model(x)
            for _ in range(args.forwards):
                start = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - start) * 1e3)
        return times

    print(json.dumps({"model": args.model, "threads": torch.get_num_threads(), "size": size, "load_ms": load_ms,
                      "forward_b1_ms": forward_ms(1), "forward_b8_ms": forward_ms(BATCH)}))


# Runs argv[1:] and prints its peak RSS in KiB. The measured process must be forked by a small process:
# Linux counts the pre-exec copy of the forking process in the child's ru_maxrss, and bench.py holds torch.
RSS_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss if status == 0 else -1)
"""


def peak_rss_mib(cmd):
    """The peak resident set of one run of `cmd` (of its largest process, for a shell loop), in MiB."""
    out = subprocess.run([PYTHON, "-c", RSS_LAUNCHER] + cmd, check=True, capture_output=True, text=True).stdout
    kib = int(out.strip())
    if kib < 0:
        raise SystemExit(f"bench.py: {' '.join(cmd)} failed")
    return kib / 1024


def hyperfine(commands, runs, warmup=1):
    """Median wall times (s) of `commands` ({name: argv}), measured by hyperfine in one session."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = ["hyperfine", "-N", "--style", "basic", "--warmup", str(warmup), "--runs", str(runs),
                "--export-json", out.name]
        for name, cmd in commands.items():
            argv += ["-n", name, " ".join(quote(c) for c in cmd)]
        subprocess.run(argv, check=True, stdout=sys.stderr)
        results = json.load(open(out.name))["results"]
    return {r["command"]: r["median"] for r in results}


def quote(arg):
    import shlex
    return shlex.quote(arg)


def sgemm_peak(sizes):
    """The best fp32 matrix-multiply rate of this CPU through libtorch's BLAS (MKL), over square products of
    each size in `sizes`: a practical peak."""
    import torch
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        for _ in range(5):
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * n ** 3 / (time.perf_counter() - start) / 1e9)
    return best


def profile_resnet(weights, runs=10):
    """libtorch's profiler on the network classify-image runs (BatchNorm folded, channels-last), batch 1:
    where ResNet-50's time goes and how fast its convolutions run; `runs` profiled passes, twice as many timed."""
    import torch
    from torch.fx.experimental.optimization import fuse
    from torch.profiler import ProfilerActivity, profile
    sys.path.insert(0, SCRIPTS)
    from classify_image import CONSTRUCTORS, load_local_state_dict
    model = fuse(load_local_state_dict(CONSTRUCTORS["resnet"](), weights).eval())
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 224, 224).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(runs):
                model(x)
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in rows)
    table = [(e.key, e.count // runs, e.self_cpu_time_total / runs / 1e3, 100 * e.self_cpu_time_total / total)
             for e in rows[:8]]
    conv_ms = sum(ms for key, _, ms, _ in table if key in ("mkldnn_convolution", "aten::mkldnn_convolution"))
    # The fastest path libtorch itself offers on the CPU: a frozen TorchScript graph after
    # optimize_for_inference (prepacked oneDNN weights, ReLU and sums fused into the convolutions), which
    # tch's API cannot reach. Timed interleaved with the eager network above.
    plain = load_local_state_dict(CONSTRUCTORS["resnet"](), weights).eval()
    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(plain)))
    x_plain = torch.randn(1, 3, 224, 224)
    times = {"ours": [], "frozen": []}
    with torch.inference_mode():
        for _ in range(3):
            frozen(x_plain)
        for _ in range(2 * runs):
            for name, (net, inp) in (("ours", (model, x)), ("frozen", (frozen, x_plain))):
                start = time.perf_counter()
                net(inp)
                times[name].append((time.perf_counter() - start) * 1e3)
    return {"table": table, "total_ms": total / runs / 1e3, "conv_ms": conv_ms, "timed_runs": 2 * runs,
            "same_ops_ms": median(times["ours"]), "frozen_ms": median(times["frozen"]),
            "frozen_best_ms": min(times["frozen"])}


# ---------------------------------------------------------------------------------------------- report

def ratio(a, b):
    return a / b if b else float("nan")


def verdict(ok):
    return "met" if ok else "**missed**"


def run(args):
    quick = args.quick
    models = [THROUGHPUT_MODEL] if quick else SEED_MODELS
    # In-process figures come in short rounds that alternate classify-image and PyTorch, so that both sides
    # see the same moments of this shared machine; each ratio is the median of the rounds' own ratios.
    rounds, loads, forwards, e2e_runs = (1, 1, 3, 1) if quick else (6, 1, 4, 5)
    # The quick form checks that every measurement still runs, so it runs each as few times as it can: the
    # original builds all five networks per run, about 10 s each time.
    warmup = 0 if quick else 1
    folder_images = 1 if quick else 64
    os.makedirs(BENCH, exist_ok=True)
    log(f"bench: weights and images in {BENCH}")
    weights = {m: make_weights(m) for m in models}
    folder = make_images(folder_images)
    image = os.path.join(ROOT, "images", "chelsea.png")
    out_dir = tempfile.mkdtemp(prefix="bench-out-")
    original = [PYTHON, os.path.join(SCRIPTS, "classify_image.py")]
    fair = [PYTHON, os.path.join(SCRIPTS, "classify_image_fair.py")]

    import torch
    machine = {
        "cpu": cpu_name(), "cores": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE") *
                                                                         os.sysconf("SC_PHYS_PAGES") / 2 ** 30),
        "os": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    log("bench: sgemm peak")
    machine["sgemm_gflops"] = sgemm_peak((2048,) if quick else (2048, 4096))

    results = {}
    for m in models:
        w = weights[m]
        log(f"bench: {m}: in-process (load, forward batch 1 and {BATCH}), {rounds} round(s) each, alternating")
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(rust_inprocess(m, w, loads, forwards))
            theirs.append(python_inprocess(m, w, loads, forwards))
        pool = lambda runs, key: median([x for r in runs for x in r[key]])
        r = {f"{side}_{key}": pool(runs, f"{key}_ms") for side, runs in (("ours", ours), ("torch", theirs))
             for key in ("load", "forward_b1", "forward_b8")}
        for key in ("load", "forward_b1", "forward_b8"):
            r[f"ratio_{key}"] = median([median(a[f"{key}_ms"]) / median(b[f"{key}_ms"]) for a, b in zip(ours, theirs)])
        r["ours_forward_b1_best"] = min(x for run in ours for x in run["forward_b1_ms"])
        log(f"bench: {m}: end to end, one image, {e2e_runs} runs (hyperfine)")
        cmds = {
            "ours": [OURS, "-i", image, "-m", m, "--weights", w, "--output", os.path.join(out_dir, "ours.png")],
            "original": original + ["-i", image, "-m", m, "--weights", w, "--output",
                                    os.path.join(out_dir, "original.png")],
            "fair": fair + ["-i", image, "-m", m, "--weights", w, "--output", os.path.join(out_dir, "fair.png")],
        }
        # The quick form runs the original (about 10 s a run) once, for its time (which then includes the RSS
        # launcher's start, tens of milliseconds) and its peak RSS together.
        timed = {k: c for k, c in cmds.items() if not (quick and k == "original")}
        times = hyperfine(timed, e2e_runs, warmup)
        r.update({f"e2e_{k}": v for k, v in times.items()})
        log(f"bench: {m}: peak RSS")
        r.update({f"rss_{k}": peak_rss_mib(cmd) for k, cmd in timed.items()})
        if quick:
            started = time.perf_counter()
            r["rss_original"] = peak_rss_mib(cmds["original"])
            r["e2e_original"] = time.perf_counter() - started
        results[m] = r

    log(f"bench: folder of {folder_images} images with {THROUGHPUT_MODEL}")
    w = weights[THROUGHPUT_MODEL]
    dirs = {k: os.path.join(out_dir, k) for k in ("ours", "fair", "original")}
    for d in dirs.values():
        os.makedirs(d)
    folder_cmds = {
        "ours": [OURS, "-i", folder, "-m", THROUGHPUT_MODEL, "--weights", w, "--output-dir", dirs["ours"],
                 "--batch-size", str(BATCH)],
        "fair": fair + ["-i", folder, "-m", THROUGHPUT_MODEL, "--weights", w, "--output-dir", dirs["fair"],
                        "--batch-size", str(BATCH)],
    }
    folder_times = hyperfine(folder_cmds, 1 if quick else 3, warmup)
    loop = ("for f in {folder}/*.jpg; do {py} {script} -i \"$f\" -m {m} --weights {w} "
            "--output {out}/\"$(basename \"$f\")\" || exit 1; done").format(
        folder=quote(folder), py=quote(PYTHON), script=quote(original[1]), m=THROUGHPUT_MODEL, w=quote(w),
        out=quote(dirs["original"]))
    folder_times.update(hyperfine({"original": ["bash", "-c", loop]}, 1, warmup=0))
    folder_rss = {k: peak_rss_mib(c) for k, c in folder_cmds.items()}
    for name in ("ours", "fair", "original"):
        written = len(os.listdir(dirs[name]))
        if written != folder_images:
            raise SystemExit(f"bench.py: {name} wrote {written} annotated images of {folder_images}")

    log("bench: profile of ResNet-50 as classify-image runs it")
    prof = profile_resnet(weights[THROUGHPUT_MODEL], 2 if quick else 10)
    shutil.rmtree(out_dir, ignore_errors=True)

    report = render(machine, results, folder_images, folder_times, folder_rss, prof, quick)
    print(report)
    if args.out:
        write_section(args.out, report)
        log(f"bench: results written into {args.out}")


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def table(L, title, columns, note=None):
    """Appends a section heading, an optional paragraph, and a Markdown table's header to the lines `L`."""
    L += ["", f"### {title}", ""] + ([note, ""] if note else [])
    L += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]


def render(machine, results, folder_images, folder_times, folder_rss, prof, quick):
    L = []
    L.append(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}{' (--quick: fewer runs and models)' if quick else ''}"
             f" on {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, {machine['os']};"
             f" torch {machine['torch']} ({machine['threads']} threads). fp32 matrix multiply through MKL peaks at"
             f" {machine['sgemm_gflops']:.0f} GFLOP/s here (the practical peak used below).")
    table(L, "End to end, one image, cold process, weights in the page cache (hyperfine medians)",
          ["model", "classify-image", "original", "fair Python", "ours / original", "target ≤ 0.15", "ours / fair"])
    for m, r in results.items():
        q = ratio(r["e2e_ours"], r["e2e_original"])
        L.append(f"| {m} | {r['e2e_ours']:.3f} s | {r['e2e_original']:.3f} s | {r['e2e_fair']:.3f} s | {q:.3f} |"
                 f" {verdict(q <= 0.15)} | {ratio(r['e2e_ours'], r['e2e_fair']):.3f} |")
    table(L, "Model load (file → ready model, in process) and forward passes (CPU, medians)",
          ["model", "load ours", "load torch", "ratio", "fwd b1 ours", "fwd b1 torch", "ratio", f"fwd b{BATCH} ours",
           f"fwd b{BATCH} torch", "ratio"],
          "Load: classify-image's `Classifier::new` against torchvision's `model = vgg16();"
          " model.load_state_dict(torch.load(...))`. Forward: against PyTorch eager under"
          " `torch.inference_mode()`, same libtorch, same thread count. Times are medians over all rounds;"
          " ratios are medians of the per-round ratios (the rounds alternate the two sides).")
    for m, r in results.items():
        L.append(f"| {m} | {r['ours_load']:.0f} ms | {r['torch_load']:.0f} ms | {r['ratio_load']:.3f}"
                 f" | {r['ours_forward_b1']:.1f} ms | {r['torch_forward_b1']:.1f} ms | {r['ratio_forward_b1']:.3f} |"
                 f" {r['ours_forward_b8']:.0f} ms | {r['torch_forward_b8']:.0f} ms | {r['ratio_forward_b8']:.3f} |")
    table(L, "Peak RSS (one image, end to end)",
          ["model", "classify-image", "original", "fair Python", "ours / original", "target ≤ 0.4"])
    for m, r in results.items():
        q = ratio(r["rss_ours"], r["rss_original"])
        L.append(f"| {m} | {r['rss_ours']:.0f} MiB | {r['rss_original']:.0f} MiB | {r['rss_fair']:.0f} MiB | {q:.3f} |"
                 f" {verdict(q <= 0.4)} |")
    table(L, f"Folder of {folder_images} images, {THROUGHPUT_MODEL}, annotated copies written",
          ["run", "wall time", "images/s", "classify-image's speed-up", "peak RSS"])
    ours_t = folder_times["ours"]
    for name, label in (("ours", f"classify-image, one process, batches of {BATCH}"),
                        ("fair", f"fair Python, one process, batches of {BATCH}"),
                        ("original", "original, one process per image")):
        t = folder_times[name]
        rss = f"{folder_rss[name]:.0f} MiB" if name in folder_rss else "as one image"
        L.append(f"| {label} | {t:.2f} s | {folder_images / t:.2f} | {ratio(t, ours_t):.1f}× | {rss} |")
    table(L, "Targets", ["target", "measured", ""])
    for m, r in results.items():
        q = ratio(r["e2e_ours"], r["e2e_original"])
        L.append(f"| {m}: end to end ≤ 0.15× original | {q:.3f}× | {verdict(q <= 0.15)} |")
    if "vgg16" in results:
        q = results["vgg16"]["ratio_load"]
        L.append(f"| vgg16: load ≤ 0.5× torchvision's path | {q:.3f}× | {verdict(q <= 0.5)} |")
    for m, r in results.items():
        q = r["ratio_forward_b1"]
        L.append(f"| {m}: forward batch 1 ≤ 0.9× PyTorch eager | {q:.3f}× | {verdict(q <= 0.9)} |")
    if "resnet" in results:
        t = results["resnet"]["ours_forward_b1"]
        best = results["resnet"]["ours_forward_b1_best"]
        share = 2 * RESNET50_GMACS / (t / 1e3) / machine["sgemm_gflops"]
        L.append(f"| resnet: forward batch 1 ≤ 87 ms | {t:.1f} ms (best {best:.1f} ms) | {verdict(t <= 87)} |")
        L.append(f"| resnet: ≥ 60% of this CPU's fp32 peak | {100 * share:.0f}% of {machine['sgemm_gflops']:.0f}"
                 f" GFLOP/s ({2 * RESNET50_GMACS / (t / 1e3):.0f} GFLOP/s; best run"
                 f" {100 * 2 * RESNET50_GMACS / (best / 1e3) / machine['sgemm_gflops']:.0f}%) | {verdict(share >= 0.6)} |")
    q = ratio(folder_times["original"], ours_t)
    L.append(f"| folder: ≥ 30× the original run per image | {q:.1f}× | {verdict(q >= 30)} |")
    q = ratio(folder_times["fair"], ours_t)
    L.append(f"| folder: ≥ 1.1× the fair batch loop | {q:.2f}× | {verdict(q >= 1.1)} |")
    for m, r in results.items():
        q = ratio(r["rss_ours"], r["rss_original"])
        L.append(f"| {m}: peak RSS ≤ 0.4× original | {q:.3f}× | {verdict(q <= 0.4)} |")
    table(L, "Profile: ResNet-50, batch 1, as classify-image runs it (libtorch's profiler)", ["op", "calls", "ms per image", "share"])
    for key, count, ms, share in prof["table"]:
        L.append(f"| {key} | {count} | {ms:.1f} | {share:.0f}% |")
    conv_rate = 2 * RESNET50_GMACS / (prof["conv_ms"] / 1e3) if prof["conv_ms"] else float("nan")
    L.append("")
    L.append(f"Total {prof['total_ms']:.1f} ms per image; the convolutions alone take {prof['conv_ms']:.1f} ms, i.e."
             f" they run at {conv_rate:.0f} GFLOP/s ({100 * conv_rate / machine['sgemm_gflops']:.0f}% of the"
             f" sgemm peak). Timed interleaved, {prof['timed_runs']} runs: this network (the same ops as classify-image's) takes"
             f" {prof['same_ops_ms']:.1f} ms; libtorch's fastest CPU path, a frozen TorchScript graph after"
             f" `optimize_for_inference` (prepacked oneDNN weights, ReLU and sums fused into the convolutions, out of"
             f" tch's reach), {prof['frozen_ms']:.1f} ms (best {prof['frozen_best_ms']:.1f} ms, i.e."
             f" {100 * 2 * RESNET50_GMACS / (prof['frozen_best_ms'] / 1e3) / machine['sgemm_gflops']:.0f}% of the peak).")
    return "\n".join(L)


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write_section(path, report):
    text = open(path).read() if os.path.exists(path) else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{head}{BEGIN}\n{report}\n{END}{tail}")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--quick", action="store_true", help="ResNet-50 only, one run of each, 1 image: a smoke test")
    r.add_argument("--out", help="write the results into this Markdown file, between its bench markers")
    p = sub.add_parser("python-inprocess")
    p.add_argument("model")
    p.add_argument("weights")
    p.add_argument("loads", type=int)
    p.add_argument("forwards", type=int)
    args = ap.parse_args()
    {"run": run, "python-inprocess": python_inprocess_cmd}[args.cmd](args)


if __name__ == "__main__":
    main()
