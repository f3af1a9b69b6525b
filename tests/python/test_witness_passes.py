"""One witness pass serves every growing type: three types growing together
are remembered by one walk of the heap and witnessed by the next one
(docs/witnesses.md, "The rule"), rather than a remembering pass and a search
per type. Run in a child process, so that its witness counters are its own."""
import json
import os
import subprocess
import sys

CHILD = r'''
import json, sys, time
from pyloot import PyLoot, _pyloot

class Session: pass
class Token: pass
class Job: pass
SESSIONS, TOKENS, JOBS = [], [], []

loot = PyLoot(path=sys.argv[1], interval=0.1, gc_collect=False)
loot.start()
# Grows the three types once per collection (each sample sees them rise),
# 200 instances each: they are the three largest growers. Bounded in rounds.
for _ in range(60):
    for _ in range(200):
        SESSIONS.append(Session())
        TOKENS.append(Token())
        JOBS.append(Job())
    seen = _pyloot.collector_stats()["collections"]
    deadline = time.monotonic() + 10
    while _pyloot.collector_stats()["collections"] <= seen and time.monotonic() < deadline:
        time.sleep(0.01)
    if _pyloot.witness_stats()["written"] >= 3:
        break
loot.stop(blocking=True)
print(json.dumps(_pyloot.witness_stats()))
'''


def test_one_pass_remembers_and_one_searches_for_all_growing_types(tmp_path):
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "store")], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["written"] == 3 and stats["errors"] == 0, stats
    # One pass remembered the three candidates, the next searched all three.
    assert stats["passes"] == 2 and stats["remembered"] == 1 and stats["searches"] == 3, stats
