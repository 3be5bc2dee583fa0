"""Types of sim/_ftrace_scan.c, the C fast path of sim/ftrace.py's parser."""

class Scanner:
    def __init__(self, kinds: dict[str, int], cpus: dict[str, int],
                 tails: list[dict[str, tuple | None]], kfree_tail: tuple,
                 null_page: str) -> None: ...
    def line(self, line: str, lineno: int) -> tuple | None: ...
