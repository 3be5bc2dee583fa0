"""Migratetypes, numbered as in include/linux/mmzone.h of Linux 6.18.

The numbering is that of a kernel built without CONFIG_CMA and with
CONFIG_MEMORY_ISOLATION, which is the kernel the shared data was recorded on: its
pagetypeinfo lists exactly Unmovable, Movable, Reclaimable, HighAtomic, Isolate.
(With CONFIG_CMA, MIGRATE_CMA would sit before MIGRATE_ISOLATE.)
"""

MIGRATE_UNMOVABLE = 0
MIGRATE_MOVABLE = 1
MIGRATE_RECLAIMABLE = 2
# The per-CPU page lists keep one list per type below this one.
MIGRATE_PCPTYPES = 3
MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES
MIGRATE_ISOLATE = 4
MIGRATE_TYPES = 5

# mm/vmstat.c migratetype_names[], as printed by /proc/pagetypeinfo.
MIGRATETYPE_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")
