"""Migratetypes, numbered as in include/linux/mmzone.h of Linux 6.18.

The numbering is that of a kernel built without CONFIG_CMA and with
CONFIG_MEMORY_ISOLATION, which is the kernel the shared data was recorded on: its
pagetypeinfo lists exactly Unmovable, Movable, Reclaimable, HighAtomic, Isolate.
(With CONFIG_CMA, MIGRATE_CMA would sit before MIGRATE_ISOLATE.)
"""

from typing import Final

MIGRATE_UNMOVABLE: Final = 0
MIGRATE_MOVABLE: Final = 1
MIGRATE_RECLAIMABLE: Final = 2
# The per-CPU page lists keep one list per type below this one.
MIGRATE_PCPTYPES: Final = 3
MIGRATE_HIGHATOMIC: Final = MIGRATE_PCPTYPES
MIGRATE_ISOLATE: Final = 4
MIGRATE_TYPES: Final = 5

# mm/vmstat.c migratetype_names[], as printed by /proc/pagetypeinfo.
MIGRATETYPE_NAMES: Final = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")
