"""The README's picture and timing of ``mcdm serve``: headless chromium loads an example face, clicks generate.

    .venv/bin/python scripts/serve_screenshot.py --model synthfaces-32 --repeats 3 --out docs/img/serve.png

Prints the seconds from each click to the finished image (the page's default settings) and writes a screenshot
of the page after the last one. Needs the serve extra, playwright and Debian's chromium.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time

from playwright.sync_api import sync_playwright

BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="synthfaces-32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--example", type=int, default=0, help="Which example face to load.")
    parser.add_argument("--out", default="docs/img/serve.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    from mcdm.serve.app import serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = serve(args.model, port=port, quiet=True, block=False)
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(tempfile.mkdtemp(), executable_path=args.chromium,
                                                           headless=True, args=BROWSER_ARGS,
                                                           viewport={"width": 1400, "height": 1500})
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#examples img", timeout=60_000)
            page.locator("#examples img").nth(args.example).click()
            page.wait_for_timeout(5000)  # the canvases draw the loaded inputs
            seconds = []
            for n in range(1, args.repeats + 1):
                started = time.perf_counter()
                page.locator("#generate").click()
                page.wait_for_function("n => document.querySelector('#status').innerText.includes(`(request ${n})`)",
                                       arg=n, timeout=300_000)
                seconds.append(time.perf_counter() - started)
                status = page.locator("#status").first.inner_text()
                if "done" not in status:
                    raise SystemExit(status)
                print(f"click to image {n}: {seconds[-1]:.2f} s ({status})")
            print(f"median {statistics.median(seconds):.2f} s over {len(seconds)}")
            page.wait_for_timeout(500)
            page.screenshot(path=args.out, full_page=True)
            context.close()
    finally:
        app.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
