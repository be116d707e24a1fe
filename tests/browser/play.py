#!/usr/bin/env python3
"""Plays ringcast's player page in a real browser and says whether it played.

    python3 tests/browser/play.py URL SECONDS

Opens URL (the page, e.g. http://127.0.0.1:8080/?stream=live/cam&transport=ws)
in Debian's headless Chromium driven by Playwright, waits until the page says
it is playing (window.ringcast.state), then watches the video for SECONDS.
Prints one JSON line:

    {"advanced_s": 5.9, "total_frames": 178, "dropped_frames": 0,
     "latency_s": 0.6, "state": "playing", "error": null, "reason": null}

and exits 0 only when the video's currentTime advanced by >= 3 s, the browser
decoded more than 60 frames and dropped fewer than 10% of them. Otherwise it
exits 1 with the reason in "reason" and, on stderr, what the browser saw
(console messages, failed requests, response statuses). Exit 2: bad usage or
nothing to run the browser with (the message names the install command).

Needs `apt-get install chromium` and `pip install playwright==1.49.1`;
Playwright's own browser download is not used.
"""

import json
import sys
import time

CHROMIUM = "/usr/bin/chromium"
ADVANCED_S_MIN = 3.0
FRAMES_MIN = 60  # more than this many decoded
DROPPED_FRACTION_MAX = 0.10
# The page has this long to reach "playing": the first GOP comes at once
# from the server's cache, but a cold Chromium on a busy CI machine is slow.
START_S_MAX = 20.0

SAMPLE = """() => {
  const v = document.querySelector('video');
  const q = v.getVideoPlaybackQuality();
  const b = v.buffered;
  return {
    time: v.currentTime,
    total: q.totalVideoFrames,
    dropped: q.droppedVideoFrames,
    latency: b.length ? b.end(b.length - 1) - v.currentTime : null,
    state: window.ringcast ? window.ringcast.state : 'no window.ringcast',
    error: window.ringcast ? window.ringcast.error : null,
  };
}"""


def main(argv):
    if len(argv) != 3:
        print("usage: play.py URL SECONDS", file=sys.stderr)
        return 2
    url, seconds = argv[1], float(argv[2])
    try:
        from playwright.sync_api import Error as BrowserError, sync_playwright
    except ImportError:
        print("the playwright module is missing: "
              "python3 -m pip install playwright==1.49.1", file=sys.stderr)
        return 2
    import os
    if not os.access(CHROMIUM, os.X_OK):
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2

    seen = []  # what the browser saw, for the failure report
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        )
        try:
            page = browser.new_page()
            page.on("console", lambda m: seen.append(f"console {m.type}: {m.text}"))
            page.on("pageerror", lambda e: seen.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: seen.append(
                f"request failed: {r.method} {r.url}: {r.failure}"))
            page.on("response", lambda r: seen.append(
                f"response {r.status} {r.url} {dict(r.headers)}"))
            page.on("websocket", lambda ws: seen.append(f"websocket opened: {ws.url}"))
            try:
                result = watch(page, url, seconds)
            except BrowserError as e:  # the page did not load, the browser died
                result = result_of(None, None, f"the browser failed: {e.message}")
        finally:
            browser.close()

    print(json.dumps(result))
    if result["reason"] is not None:
        print("what the browser saw:", file=sys.stderr)
        for line in seen:
            print("  " + line, file=sys.stderr)
        return 1
    return 0


def watch(page, url, seconds):
    """Opens the page, waits for playing, samples for `seconds`: the result."""
    response = page.goto(url, wait_until="load")
    if response is None or not response.ok:
        status = "nothing" if response is None else response.status
        return result_of(None, None, f"the page answered {status}")
    deadline = time.monotonic() + START_S_MAX
    first = page.evaluate(SAMPLE)
    while first["state"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.1)
        first = page.evaluate(SAMPLE)
    if first["state"] != "playing":
        why = (f"the page never played within {START_S_MAX:.0f} s"
               if first["state"] == "loading" else f"the page says {first['state']}: {first['error']}")
        return result_of(first, first, why)

    end = time.monotonic() + seconds
    last = first
    while time.monotonic() < end and last["state"] == "playing":
        time.sleep(0.25)
        last = page.evaluate(SAMPLE)
    return result_of(first, last, verdict(first, last))


def verdict(first, last):
    """None when the playback was good, else why not."""
    advanced = last["time"] - first["time"]
    if last["state"] != "playing":
        return f"the page went from playing to {last['state']}: {last['error']}"
    if advanced < ADVANCED_S_MIN:
        return f"currentTime advanced {advanced:.2f} s, want >= {ADVANCED_S_MIN} s"
    if last["total"] <= FRAMES_MIN:
        return f"{last['total']} frames decoded, want > {FRAMES_MIN}"
    if last["dropped"] >= DROPPED_FRACTION_MAX * last["total"]:
        return (f"{last['dropped']} of {last['total']} frames dropped, "
                f"want < {DROPPED_FRACTION_MAX:.0%}")
    return None


def result_of(first, last, reason):
    if first is None:  # no page to sample
        first = last = {"time": 0, "total": 0, "dropped": 0, "latency": None,
                        "state": "no page", "error": None}
    latency = last["latency"]
    return {
        "advanced_s": round(last["time"] - first["time"], 3),
        "total_frames": last["total"],
        "dropped_frames": last["dropped"],
        "latency_s": None if latency is None else round(latency, 3),
        "state": last["state"],
        "error": last["error"],
        "reason": reason,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv))
