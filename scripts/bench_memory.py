"""Memory over long runs: classify-image's resident memory after the first 100 items and at the end, on a folder
of 5,000 generated images and on a generated video of 10,000 frames (EfficientNet-Lite0, real weights). The
goal is growth of at most 50 MB. Writes its table into docs/BENCHMARKS.md between the memory markers.

    .venv/bin/python scripts/bench_memory.py [--images N] [--frames N] [--out docs/BENCHMARKS.md]
"""
import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "classify-image"
WORK = ROOT / "target" / "bench" / "memory"
BEGIN, END = "<!-- memory:begin -->", "<!-- memory:end -->"


def log(*parts):
    print("[bench-memory]", *parts, file=sys.stderr, flush=True)


def frame(rng, i, w=320, h=240):
    """Smooth random colours (upsampled noise) with a moving bar, so no two frames are alike."""
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    x = (i * 7) % w
    img[:, x:x + 12] = (255 - i % 256, i % 256, 128)
    return img


def make_images(n):
    folder = WORK / f"images-{n}"
    if folder.is_dir() and len(list(folder.iterdir())) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), frame(rng, i), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return folder


def make_video(n):
    path = WORK / f"video-{n}.avi"
    if path.is_file():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    tmp = path.with_suffix(".tmp.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for i in range(n):
        writer.write(frame(rng, i))
    writer.release()
    tmp.rename(path)
    return path


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(args, total):
    """Runs classify-image with JSON Lines output; returns (RSS after 100 records, RSS at the last record, peak RSS,
    records, seconds). RSS is sampled every 20 ms; 'after N records' is the sample taken when record N arrives."""
    proc = subprocess.Popen([str(BIN), *args, "--format", "jsonl", "-q"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    latest = {"rss": 0.0, "peak": 0.0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            r = rss_mib(proc.pid)
            if r is not None:
                latest["rss"] = r
                latest["peak"] = max(latest["peak"], r)
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    started = time.time()
    at_100 = at_end = None
    records = 0
    for _ in proc.stdout:
        records += 1
        r = rss_mib(proc.pid) or latest["rss"]
        if records == 100:
            at_100 = r
        if records == total:
            at_end = r
    proc.wait()
    done.set()
    t.join()
    if proc.returncode != 0 or records != total:
        raise SystemExit(f"classify-image {' '.join(args)}: exit {proc.returncode}, {records} of {total} records")
    return at_100, at_end, latest["peak"], records, time.time() - started


def cpu():
    """The CPU model, core count and the vector ISA that matters for inference."""
    model, flags = platform.processor(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == platform.processor():
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model}, {os.cpu_count()} cores, {' '.join(isa) or 'no AVX2'}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--out")
    a = ap.parse_args()
    log(f"generating {a.images} images and a {a.frames}-frame video under {WORK}")
    images, video = make_images(a.images), make_video(a.frames)
    rows = []
    for name, args, total in [
        (f"folder of {a.images} images (320×240 JPEG), --batch-size 8", ["-i", str(images)], a.images),
        (f"video of {a.frames} frames (320×240 MJPEG)", ["--video", str(video)], a.frames),
    ]:
        log("measuring", name)
        at_100, at_end, peak, records, seconds = measure([*args, "-m", "efficientnet_lite0"], total)
        rows.append((name, at_100, at_end, peak, records / seconds))
    lines = [
        f"Machine: {cpu()}. EfficientNet-Lite0 (real weights), `--format jsonl`; resident memory (VmRSS) sampled",
        "when the 100th and the last record arrive. Goal: growth ≤ 50 MB.",
        "",
        "| run | RSS after 100 | RSS at the end | growth | peak | items/s | goal |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, at_100, at_end, peak, rate in rows:
        growth = at_end - at_100
        lines.append(f"| {name} | {at_100:.0f} MiB | {at_end:.0f} MiB | {growth:+.1f} MiB | {peak:.0f} MiB | "
                     f"{rate:.0f} | {'met' if growth <= 50 else 'MISSED'} |")
    report = "\n".join(lines)
    print(report)
    if a.out:
        path = Path(a.out)
        text = path.read_text()
        head, rest = text.split(BEGIN, 1)
        text = head + BEGIN + "\n" + report + "\n" + END + rest.split(END, 1)[1]
        path.write_text(text)


if __name__ == "__main__":
    main()
