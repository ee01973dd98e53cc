"""The cleanup report: counts per prefix, errors (capped), and the exit code they imply."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

EXIT_OK = 0
EXIT_UNRESOLVED = 1  # some deletes or listings failed for good; rerunning is safe and converges
EXIT_MAX_DELETES = 4  # aborted before deleting anything: more objects matched than --max-deletes

#: The report lists this many failed keys at most; the counts stay exact. It has to stay small
#: because it is printed on one line and may be read back as an Argo output.
MAX_LISTED_ERRORS = 100


@dataclass
class PrefixReport:
    scanned: int = 0  # objects listed under the prefix
    versions_scanned: int = 0  # versions and delete markers listed (--purge-noncurrent only)
    matched: int = 0  # of those, older than the cutoff: what the run would delete
    matched_bytes: int = 0
    deleted: int = 0
    bytes: int = 0
    noncurrent_matched: int = 0
    noncurrent_matched_bytes: int = 0
    noncurrent_deleted: int = 0
    noncurrent_bytes: int = 0
    errors: int = 0
    listing_failed: str = ""  # why the prefix could not be listed, if it could not


_COUNTS = tuple(f.name for f in fields(PrefixReport) if isinstance(f.default, int))


@dataclass
class Tally:
    """What one task did, merged into the Report by the parent. Plain data, so that a worker
    process can send it back; the caller serialises updates from threads.
    """

    prefix: str
    counts: PrefixReport = field(default_factory=PrefixReport)
    errors: list[dict[str, str]] = field(default_factory=list)
    error_count: int = 0
    notes: list[str] = field(default_factory=list)
    worker: tuple[int, float] = (0, 0.0)  # (pid, peak RSS in MiB) of the process that ran it

    def add_error(self, key: str, code: str, message: str, version_id: str = "") -> None:
        self.error_count += 1
        self.counts.errors += 1
        if len(self.errors) < MAX_LISTED_ERRORS:
            entry = {"prefix": self.prefix, "key": key, "code": code, "message": message[:300]}
            if version_id:
                entry["version_id"] = version_id
            self.errors.append(entry)

    def add_deleted(self, count: int, size: int, noncurrent: bool) -> None:
        if noncurrent:
            self.counts.noncurrent_deleted += count
            self.counts.noncurrent_bytes += size
        else:
            self.counts.deleted += count
            self.counts.bytes += size


@dataclass
class Report:
    store: str
    older_than: str
    cutoff: str
    dry_run: bool
    max_deletes: int
    per_prefix: dict[str, PrefixReport]
    covered_prefixes: dict[str, str] = field(default_factory=dict)
    versioning: str = "n/a"
    purge_noncurrent: bool = False
    aborted: str = ""
    notes: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    error_count: int = 0
    elapsed_s: float = 0.0
    count_s: float = 0.0  # the listing (count) pass
    delete_s: float = 0.0  # the delete pass (its listing included)
    processes: int = 1  # processes that listed and deleted (key ranges side by side when > 1)
    ranges: int = 0  # the tasks they shared: prefixes, or key ranges of them
    #: This process plus every worker's own peak, summed: an upper bound of the run's memory.
    peak_rss_mb: float = 0.0
    #: Pushgateway groups of batch runs pruned (a dry run: that would be); None: not asked for.
    metrics_groups_pruned: int | None = None
    worker_rss_mb: dict[int, float] = field(default_factory=dict, repr=False)  # pid -> its peak

    def merge(self, tally: Tally) -> None:
        """Add what one task did (a prefix, or a key range of it, maybe in a worker process)."""
        entry = self.per_prefix[tally.prefix]
        for name in _COUNTS:
            setattr(entry, name, getattr(entry, name) + getattr(tally.counts, name))
        if tally.counts.listing_failed and not entry.listing_failed:
            entry.listing_failed = tally.counts.listing_failed
        self.error_count += tally.error_count
        self.errors.extend(tally.errors[: MAX_LISTED_ERRORS - len(self.errors)])
        self.notes.extend(n for n in tally.notes if n not in self.notes)
        pid, rss = tally.worker
        if pid:
            self.worker_rss_mb[pid] = max(rss, self.worker_rss_mb.get(pid, 0.0))

    def _sum(self, name: str) -> int:
        return sum(getattr(p, name) for p in self.per_prefix.values())

    @property
    def would_delete(self) -> int:
        return self._sum("matched") + self._sum("noncurrent_matched")

    @property
    def exit_code(self) -> int:
        if self.aborted:
            return EXIT_MAX_DELETES
        if self.error_count or any(p.listing_failed for p in self.per_prefix.values()):
            return EXIT_UNRESOLVED
        return EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "deleted": self._sum("deleted") + self._sum("noncurrent_deleted"),
            "bytes": self._sum("bytes") + self._sum("noncurrent_bytes"),
            "dry_run": self.dry_run,
            "scanned": self._sum("scanned"),
            "would_delete": self.would_delete,
            "would_delete_bytes": self._sum("matched_bytes") + self._sum("noncurrent_matched_bytes"),
            "max_deletes": self.max_deletes,
            "aborted": self.aborted,
            "error_count": self.error_count,
            "errors": self.errors,
            "per_prefix": {k: asdict(v) for k, v in self.per_prefix.items()},
            "covered_prefixes": self.covered_prefixes,
            "store": self.store,
            "older_than": self.older_than,
            "cutoff": self.cutoff,
            "versioning": self.versioning,
            "purge_noncurrent": self.purge_noncurrent,
            "notes": self.notes,
            "elapsed_s": round(self.elapsed_s, 3),
            "count_s": round(self.count_s, 3),
            "delete_s": round(self.delete_s, 3),
            "processes": self.processes,
            "ranges": self.ranges,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "metrics_groups_pruned": self.metrics_groups_pruned,
            "exit_code": self.exit_code,
        }
