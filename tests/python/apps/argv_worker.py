"""A process whose command line holds secrets: stores one sample into the
store given as its first argument and exits. The other arguments are only
there to be seen (and redacted) in /api/procs and `pyloot report`."""
import sys

from pyloot import PyLoot

loot = PyLoot(path=sys.argv[1], interval=60)
loot.collect_objects()
loot.backend.close()
