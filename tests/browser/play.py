#!/usr/bin/env python3
"""Plays ringcast's player page in a real browser and says whether it played.

    python3 tests/browser/play.py URL SECONDS [--then SECONDS]

Opens URL (the page, e.g. http://127.0.0.1:8080/?stream=live/cam&transport=ws)
in Debian's headless Chromium driven by Playwright, waits until the page says
it is playing (window.ringcast.state), then watches the video for SECONDS.
Prints one JSON line:

    {"advanced_s": 5.9, "total_frames": 178, "dropped_frames": 0,
     "latency_s": 0.6, "buffered_end_s": 7.1, "state": "playing",
     "error": null, "reason": null}

and exits 0 only when the video's currentTime advanced by >= 3 s, the browser
decoded more than 60 frames and dropped fewer than 10% of them. Otherwise it
exits 1 with the reason in "reason" and, on stderr, what the browser saw
(console messages, failed requests, response statuses). Exit 2: bad usage or
nothing to run the browser with (the message names the install command).

With --then, a first watch that played is followed by a second: play.py
prints the first line, reads a line from stdin (the caller changes the stream
meanwhile, e.g. restarts its publisher, and then writes one), and watches the
page for the second SECONDS. It prints a second line judged over that watch
alone (its frames and drops), with "beyond_s", how far currentTime got past
the end of what was buffered when the first watch ended: >= 3 s means the
video played on into media the server made after the change.

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
    buffered_end: b.length ? b.end(b.length - 1) : null,
    state: window.ringcast ? window.ringcast.state : 'no window.ringcast',
    error: window.ringcast ? window.ringcast.error : null,
  };
}"""


def main(argv):
    if len(argv) not in (3, 5) or (len(argv) == 5 and argv[3] != "--then"):
        print("usage: play.py URL SECONDS [--then SECONDS]", file=sys.stderr)
        return 2
    url, seconds = argv[1], float(argv[2])
    then = float(argv[4]) if len(argv) == 5 else None
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
                result = watch(page, url, seconds, then)
            except BrowserError as e:  # the page did not load, the browser died
                result = report(result_of(None, None, f"the browser failed: {e.message}"))
        finally:
            browser.close()

    if result["reason"] is not None:
        print("what the browser saw:", file=sys.stderr)
        for line in seen:
            print("  " + line, file=sys.stderr)
        return 1
    return 0


def watch(page, url, seconds, then):
    """Opens the page, waits for playing, samples for `seconds` and, with
    `then`, for `then` more once stdin says so; prints each result and
    returns the last."""
    response = page.goto(url, wait_until="load")
    if response is None or not response.ok:
        status = "nothing" if response is None else response.status
        return report(result_of(None, None, f"the page answered {status}"))
    deadline = time.monotonic() + START_S_MAX
    first = page.evaluate(SAMPLE)
    while first["state"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.1)
        first = page.evaluate(SAMPLE)
    if first["state"] != "playing":
        why = (f"the page never played within {START_S_MAX:.0f} s"
               if first["state"] == "loading" else f"the page says {first['state']}: {first['error']}")
        return report(result_of(first, first, why))

    last = sample_for(page, first, seconds)
    result = report(result_of(first, last, verdict(first, last)))
    if then is None or result["reason"] is not None:
        return result
    sys.stdin.readline()  # the caller changed the stream
    past = last["buffered_end"] if last["buffered_end"] is not None else last["time"]
    second = page.evaluate(SAMPLE)
    end = sample_for(page, second, then)
    result = result_of(second, end, verdict(second, end, frames_from=second, past=past))
    result["beyond_s"] = round(end["time"] - past, 3)
    return report(result)


def sample_for(page, first, seconds):
    """Samples the page until `seconds` passed or it stopped playing."""
    end = time.monotonic() + seconds
    last = first
    while time.monotonic() < end and last["state"] == "playing":
        time.sleep(0.25)
        last = page.evaluate(SAMPLE)
    return last


def report(result):
    print(json.dumps(result), flush=True)
    return result


def verdict(first, last, frames_from=None, past=None):
    """None when the playback from `first` to `last` was good, else why not.
    Frames count from the sample `frames_from` (default: the page's start);
    with `past`, currentTime must also get ADVANCED_S_MIN past that media
    time."""
    advanced = last["time"] - first["time"]
    total = last["total"] - (frames_from["total"] if frames_from else 0)
    dropped = last["dropped"] - (frames_from["dropped"] if frames_from else 0)
    if last["state"] != "playing":
        return f"the page went from playing to {last['state']}: {last['error']}"
    if advanced < ADVANCED_S_MIN:
        return f"currentTime advanced {advanced:.2f} s, want >= {ADVANCED_S_MIN} s"
    if past is not None and last["time"] - past < ADVANCED_S_MIN:
        return (f"currentTime got {last['time'] - past:.2f} s past the media buffered "
                f"before the change ({past:.2f} s), want >= {ADVANCED_S_MIN} s")
    if total <= FRAMES_MIN:
        return f"{total} frames decoded, want > {FRAMES_MIN}"
    if dropped >= DROPPED_FRACTION_MAX * total:
        return f"{dropped} of {total} frames dropped, want < {DROPPED_FRACTION_MAX:.0%}"
    return None


def result_of(first, last, reason):
    """The JSON line of a watch from `first` to `last`; frames are the
    browser's totals, counted from the page's start."""
    if first is None:  # no page to sample
        first = last = {"time": 0, "total": 0, "dropped": 0, "latency": None,
                        "buffered_end": None, "state": "no page", "error": None}
    latency = last["latency"]
    end = last["buffered_end"]
    return {
        "advanced_s": round(last["time"] - first["time"], 3),
        "total_frames": last["total"],
        "dropped_frames": last["dropped"],
        "latency_s": None if latency is None else round(latency, 3),
        "buffered_end_s": None if end is None else round(end, 3),
        "state": last["state"],
        "error": last["error"],
        "reason": reason,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv))
