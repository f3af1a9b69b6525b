"""Bounded demo traffic: logs users in (a leak) and does freed work, for at
most 30 minutes, against the demo server given on the command line; stops
when the server has not answered for 30 s."""
import sys
import time
import urllib.request

base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
deadline = time.monotonic() + 30 * 60
i = 0
time.sleep(2)
answered = time.monotonic()
while time.monotonic() < deadline and time.monotonic() - answered < 30:
    for path in ("/login/user%d" % i, "/work", "/"):
        try:
            urllib.request.urlopen(base + path, timeout=5).read()
            answered = time.monotonic()
        except OSError:
            pass
    i += 1
    time.sleep(0.2)
