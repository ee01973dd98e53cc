"""Cleanup benchmark: batched two-pass cleanup against the old monitor's one-DELETE-per-key loop.

    uv run python benchmarks/cleanup.py --json [--server gofakes3|moto]

prints one JSON line. Everything is measured in this run against one S3 server on 127.0.0.1, in
its own process so that its memory is not ours; `"server"` in the JSON says which:

- gofakes3 (the default when `.ci/install.d/25-gofakes3.sh` has built `.tools/bin/gofakes3`): an
  S3-protocol server in Go with an in-memory backend (tools/gofakes3). Listing a 1000-key page
  seeks a skip list, so the server's cost per page does not grow with the bucket.
- moto (the fallback): a Python *emulator* whose ListObjectsV2 rescans and sorts the whole bucket
  for every 1000-key page (~0.3 s per page at 100k objects), so against it listing the emulator
  dominates the run rather than our code.

Latency (~30 ms per request) is added by the HTTP delay proxy of testkit/fault_proxy.py in
front of the server.

- batched: `python -m steps.cleanup` as Argo runs it (count pass, delete pass, DeleteObjects of
  1000 keys, 4 threads per process, `--processes` 0: one process per CPU, each listing and
  deleting key ranges). Its rate is deleted / the report's elapsed_s (clock check, range
  planning, worker start-up, both listings and the deletes; interpreter start-up and the boto3
  import excluded, as on the baseline side). Peak RSS is the report's `peak_rss_mb`: the step's
  own peak plus each worker's, summed (an upper bound; wait4's ru_maxrss would give only the
  largest process of the tree).
- one_by_one: the old monitor's shape, in its own process: list everything, then one DeleteObject
  per key, sequentially. Both sides include listing.

The one-by-one side deletes fewer objects (at ~30 ms per request, 100k sequential DELETEs would
take ~an hour): rates are compared, and each count is printed. Buckets are seeded straight into
the server's memory (setup, not measured): 100k PUTs over HTTP would take minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The repository root only: tests/ is a package tree (tests/steps/...), so putting tests/ itself on
# the path would shadow the real `steps` package.
sys.path.insert(0, str(REPO))

from benchmarks import s3server  # noqa: E402

AGE_S = 3 * 86_400  # seeded objects are 3 days old; the run deletes those older than 1 day


# -- the servers ----------------------------------------------------------------------------------
SIBLING, YOUNG = "uploads-archive/keep.png", "uploads/young.png"


def _key(i: int) -> str:
    return f"uploads/{i // 1000:04d}/{i % 1000:04d}.png"


def serve() -> None:
    """Run moto on a free port; read `seed <bucket> <count>` lines on stdin, answer `ok`."""
    from datetime import UTC, datetime, timedelta

    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"http://{host}:{port}", flush=True)
    backend = s3_backends["123456789012"]["global"]
    old = (datetime.now(UTC) - timedelta(seconds=AGE_S)).replace(tzinfo=None)
    for line in sys.stdin:
        command, bucket, count = line.split()
        assert command == "seed"
        backend.create_bucket(bucket, "us-east-1")
        for i in range(int(count)):
            key = backend.put_object(bucket, _key(i), b"0123456789")
            key.last_modified = old
        # Siblings and young objects, so that the rule has something to leave alone.
        backend.put_object(bucket, SIBLING, b"k").last_modified = old
        backend.put_object(bucket, YOUNG, b"y")
        print("ok", flush=True)
    server.stop()


class Moto:
    """moto's ThreadedMotoServer in a child process, seeded through its in-memory backend."""

    name = "moto"
    detail = "moto S3 emulator on 127.0.0.1 (separate process)"

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.endpoint = self.process.stdout.readline().strip()  # type: ignore[union-attr]
        self.buckets = 0

    def seed(self, count: int) -> str:
        self.buckets += 1
        bucket = f"bench-{self.buckets}-{count}"
        self.process.stdin.write(f"seed {bucket} {count}\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        assert self.process.stdout.readline().strip() == "ok"  # type: ignore[union-attr]
        return bucket

    def close(self) -> None:
        self.process.stdin.close()  # type: ignore[union-attr]
        self.process.wait(timeout=60)


class GoFakeS3:
    """tools/gofakes3 (gofakes3's in-memory backend) in a child process, seeded through its
    /_kiosk/seed route, which stamps the objects' LastModified `age` in the past.
    """

    name = "gofakes3"
    detail = s3server.DETAIL

    def __init__(self, binary: Path) -> None:
        self.server = s3server.GoFakeS3Process(binary)
        self.endpoint = self.server.endpoint
        self.buckets = 0

    def _put(self, bucket: str, age_s: int, keys: list[str], size: int) -> None:
        from urllib.request import Request, urlopen

        query = f"bucket={bucket}&age={age_s}s&size={size}"
        request = Request(f"{self.endpoint}/_kiosk/seed?{query}", data="\n".join(keys).encode(), method="POST")
        with urlopen(request, timeout=600) as response:
            assert int(response.read()) == len(keys)

    def seed(self, count: int) -> str:
        self.buckets += 1
        bucket = f"bench-{self.buckets}-{count}"
        self._put(bucket, AGE_S, [_key(i) for i in range(count)], 10)
        # Siblings and young objects, so that the rule has something to leave alone.
        self._put(bucket, AGE_S, [SIBLING], 1)
        self._put(bucket, 0, [YOUNG], 1)
        return bucket

    def close(self) -> None:
        self.server.close()


def start_server(name: str) -> Moto | GoFakeS3:
    binary = s3server.gofakes3_binary()
    if name == "auto":
        name = "gofakes3" if binary else "moto"
    if name == "moto":
        return Moto()
    if binary is None:
        raise SystemExit("gofakes3 is not installed: run bash .ci/install.d/25-gofakes3.sh (or --server moto)")
    return GoFakeS3(binary)


# -- the one-by-one baseline process ---------------------------------------------------------------
def baseline(store_uri: str, endpoint: str) -> None:
    from steps.cleanup.rules import cutoff_for, in_prefix
    from steps.common.storage import open_store
    from steps.common.storage.s3_versions import delete_object

    started = time.monotonic()
    store = open_store(store_uri, s3_endpoint=endpoint)
    from datetime import timedelta

    cutoff = cutoff_for(store.server_time(), timedelta(days=1))
    # The old monitor: list everything first, then delete one key per request.
    doomed = [o.key for o in store.list("uploads") if in_prefix(o.key, "uploads/") and o.last_modified < cutoff]
    for key in doomed:
        delete_object(store, key)  # type: ignore[arg-type]
    print(json.dumps({"deleted": len(doomed), "elapsed_s": time.monotonic() - started}))


# -- measuring -------------------------------------------------------------------------------------
def _child(command: list[str]) -> tuple[dict, float]:
    """Run a child; its last stdout line (JSON) and its own peak RSS in MiB."""
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, cwd=REPO, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        err = process.stderr.read()  # type: ignore[union-attr]
        out.seek(0)
        lines = out.read().strip().splitlines()
    if process.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(command[:4])}... failed ({process.returncode}): {err.strip()[-2000:]}")
    return json.loads(lines[-1]), usage.ru_maxrss / 1024


def batched(server: Moto | GoFakeS3, endpoint: str, count: int, processes: int = 0) -> tuple[float, float, dict]:
    bucket = server.seed(count)
    report, _ = _child(
        [
            sys.executable,
            "-c",
            # `python -m steps.cleanup`, with boto3 imported first: the step imports it lazily
            # inside its timed span, the baseline before its clock starts; both now exclude it.
            "import runpy, steps.common.storage.s3_versions; runpy.run_module('steps.cleanup', run_name='__main__')",
            f"--store=s3://{bucket}",
            f"--s3-endpoint={endpoint}",
            "--prefix=uploads",
            "--older-than=1d",
            "--dry-run=false",
            f"--max-deletes={count}",
            "--json=true",
            "--workers=4",
            f"--processes={processes}",
            f"--outputs-dir={tempfile.mkdtemp()}",
        ]
    )
    assert report["deleted"] == count and report["exit_code"] == 0, report
    return count / report["elapsed_s"], report["peak_rss_mb"], report


def one_by_one(server: Moto | GoFakeS3, endpoint: str, count: int) -> float:
    bucket = server.seed(count)
    result, _ = _child([sys.executable, __file__, "--baseline", f"s3://{bucket}", endpoint])
    assert result["deleted"] == count, result
    return count / result["elapsed_s"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON line (the only output)")
    parser.add_argument("--objects", type=int, default=100_000, help="objects the batched run deletes")
    parser.add_argument("--small-objects", type=int, default=10_000, help="the batched run compared for RSS")
    parser.add_argument("--one-by-one-objects", type=int, default=3_000)
    parser.add_argument("--latency-objects", type=int, default=20_000, help="batched objects with latency")
    parser.add_argument("--one-by-one-latency-objects", type=int, default=400)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds without latency; medians are printed")
    parser.add_argument(
        "--server",
        choices=("auto", "gofakes3", "moto"),
        default="auto",
        help="S3 server for both sides (auto: gofakes3 when .tools/bin/gofakes3 or PATH has it, else moto)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", nargs=2, metavar=("STORE", "ENDPOINT"), help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = _parser().parse_args()
    if args.serve:
        return serve()
    if args.baseline:
        return baseline(*args.baseline)

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = start_server(args.server)
    try:
        measured = _measure(server, args)
    finally:
        server.close()
    result = _result(args, server, measured)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


@dataclass
class _Measured:
    small_dps: float
    small_rss: float
    rounds: list[dict]
    batched_latency: float
    single_latency: float


def _measure(server: Moto | GoFakeS3, args: argparse.Namespace) -> _Measured:
    from testkit.fault_proxy import FaultProxy

    small_dps, small_rss, _ = batched(server, server.endpoint, args.small_objects)
    rounds: list[dict] = []
    # Interleaved rounds: both sides are CPU-bound, and this machine's speed drifts by up to 2x
    # between minutes (other tenants), so each round pairs the two sides in time.
    for _ in range(args.rounds):
        dps, rss, report = batched(server, server.endpoint, args.objects)
        one_dps, _, _ = batched(server, server.endpoint, args.objects, processes=1)
        single = one_by_one(server, server.endpoint, args.one_by_one_objects)
        rounds.append(
            {"batched_dps": dps, "one_process_dps": one_dps, "one_by_one_dps": single, "rss": rss, "report": report}
        )
    with FaultProxy(server.endpoint) as proxy:
        proxy.delay(args.latency_ms / 1000)
        batched_latency, _, _ = batched(server, proxy.url, args.latency_objects)
        single_latency = one_by_one(server, proxy.url, args.one_by_one_latency_objects)
    return _Measured(small_dps, small_rss, rounds, batched_latency, single_latency)


def _result(args: argparse.Namespace, server: Moto | GoFakeS3, measured: _Measured) -> dict:
    """The JSON line: medians of the interleaved rounds, each round's own ratio, and the latency run."""
    rounds = measured.rounds

    def median(name: str) -> float:
        return statistics.median(r[name] for r in rounds)

    batched_dps, single_dps, one_process_dps = (
        median("batched_dps"),
        median("one_by_one_dps"),
        median("one_process_dps"),
    )
    small_dps, small_rss = measured.small_dps, measured.small_rss
    batched_latency, single_latency = measured.batched_latency, measured.single_latency
    big = rounds[-1]["report"]
    return {
        "objects": args.objects,
        "rounds": args.rounds,
        "batched_dps": round(batched_dps, 1),
        "one_by_one_dps": round(single_dps, 1),
        "speedup": round(batched_dps / single_dps, 1),
        "peak_rss_mb": round(max(r["rss"] for r in rounds), 1),
        "peak_rss_mb_small": round(small_rss, 1),
        "small_objects": args.small_objects,
        "batched_dps_small": round(small_dps, 1),
        "speedup_small": round(small_dps / single_dps, 1),
        # Each round's own ratio, and the one-process figures (--processes=1) beside them.
        "speedup_per_round": [round(r["batched_dps"] / r["one_by_one_dps"], 1) for r in rounds],
        "batched_dps_per_round": [round(r["batched_dps"], 1) for r in rounds],
        "one_by_one_dps_per_round": [round(r["one_by_one_dps"], 1) for r in rounds],
        "one_process_dps": round(one_process_dps, 1),
        "speedup_one_process": round(one_process_dps / single_dps, 1),
        "processes": big["processes"],
        "ranges": big["ranges"],
        # Where the batched run's time goes: the count pass is a pure listing.
        "batched_count_pass_s": big["count_s"],
        "batched_delete_pass_s": big["delete_s"],
        "one_by_one_objects": args.one_by_one_objects,
        "latency_ms": args.latency_ms,
        "objects_latency": args.latency_objects,
        "one_by_one_objects_latency": args.one_by_one_latency_objects,
        "batched_dps_latency": round(batched_latency, 1),
        "one_by_one_dps_latency": round(single_latency, 1),
        "speedup_latency": round(batched_latency / single_latency, 1),
        "server": server.name,
        "server_detail": server.detail,
    }


if __name__ == "__main__":
    main()
