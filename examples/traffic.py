"""Bounded demo traffic: logs users in (a leak) and does freed work, for at
most 30 minutes, against the demo server given on the command line; stops
when the server has not answered for 30 s. Each round is a random mix of the
routes, so that the growth per request of each one can be told apart
(/api/routes?group=demo_app.Session)."""
import random
import sys
import time
import urllib.request

base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
deadline = time.monotonic() + 30 * 60
i = 0
time.sleep(2)
answered = time.monotonic()
while time.monotonic() < deadline and time.monotonic() - answered < 30:
    mix = ["/login/user%d" % i] * random.randint(0, 3) + ["/work"] * random.randint(0, 4) + ["/"] * random.randint(0, 4)
    random.shuffle(mix)
    for path in mix:
        try:
            urllib.request.urlopen(base + path, timeout=5).read()
            answered = time.monotonic()
        except OSError:
            pass
    i += 1
    time.sleep(0.1)
