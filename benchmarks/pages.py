"""Frame rate of the convolution animation in a real browser (Debian's Chromium).

Starts the server on a free loopback port, creates a tiny-vgg run from a sample, opens the
conv1_2 layer view, plays the animation at its fastest speed for a few seconds, and records
the interval between animation frames (requestAnimationFrame) and how many steps the
player advanced.

    OPENBLAS_NUM_THREADS=1 python benchmarks/pages.py [--seconds 5] [--layer conv1_2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.browser.conftest import (  # noqa: E402
    CHROMIUM_ARGS,
    VIEWPORT,
    _start_server,
    _stop,
    chromium_path,
)

# The speed slider at its maximum, as if dragged there.
FASTEST = "el => { el.value = el.max; el.dispatchEvent(new Event('input', {bubbles: true})); }"
# Every animation frame's timestamp, from now on.
RECORD_FRAMES = """() => {
    window.__frames = [];
    const tick = (t) => { window.__frames.push(t); requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
}"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--layer", default="conv1_2")
    parser.add_argument("--settle", type=float, default=1.5, help="seconds to let the page load")
    args = parser.parse_args()
    log = Path(tempfile.mkdtemp()) / "server.log"
    proc, url = _start_server(log)
    try:
        form = (
            b"--x\r\nContent-Disposition: form-data; "
            b'name="sample"\r\n\r\ncifar10-cat-1\r\n--x--\r\n'
        )
        request = urllib.request.Request(
            f"{url}/api/v1/models/tiny-vgg/runs",
            data=form,
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        run_id = json.load(urllib.request.urlopen(request))["run_id"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/runs/{run_id}/layers/{args.layer}?channel=0&y=0&x=0")
            page.wait_for_selector('[data-testid="cell-value"]')
            page.wait_for_timeout(args.settle * 1000)
            speed = page.get_by_test_id("speed")
            speed.evaluate(FASTEST)
            start = page.get_by_test_id("cell-position").inner_text()
            page.evaluate(RECORD_FRAMES)
            page.get_by_test_id("play").click()
            page.wait_for_timeout(args.seconds * 1000)
            page.get_by_test_id("play").click()
            frames = page.evaluate("window.__frames")
            end = page.get_by_test_id("cell-position").inner_text()
            browser.close()
    finally:
        _stop(proc)
    gaps = [b - a for a, b in zip(frames, frames[1:], strict=False)]
    gaps.sort()
    print(
        json.dumps(
            {
                "layer": args.layer,
                "seconds": args.seconds,
                "frames": len(frames),
                "fps": round(len(gaps) / (sum(gaps) / 1000), 1) if gaps else 0,
                "frame_ms_p50": round(statistics.median(gaps), 2) if gaps else None,
                "frame_ms_p95": round(gaps[int(0.95 * (len(gaps) - 1))], 2) if gaps else None,
                "frames_over_33ms": sum(g > 33.4 for g in gaps),
                "cell_before": start,
                "cell_after": end,
            }
        )
    )


if __name__ == "__main__":
    main()
