"""The study's client: which replicates are missing, where they run, where they are kept.

Fits run on Dask: a LocalCluster by default, an existing cluster given its scheduler
address, or in this process with `workers=0`. Each finished replicate is written to the
store as soon as it arrives, so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mlm.cluster import dask_client
from mlm.fingerprint import digest
from mlm.progress import task
from mlm.store import Record, Store
from mlm.study.design import Study
from mlm.study.worker import fit_replicate


def run_study(
    study: Study,
    replicates: int,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Compute every missing replicate of every design point; returns all their records.

    `workers=0` runs in this process; otherwise a Dask LocalCluster of `workers` processes
    (default: one per core) is started, or the cluster at `scheduler` is used. Each result
    is written to the cache as soon as it arrives, so an interrupted study resumes.
    """
    store = Store(study.root)
    inputs = study.inputs()
    tasks, records = [], []
    for design in study.designs():
        key = study.point_key(design, inputs)
        point = Record(key, inputs, details={"design": design})
        store.write(store.paths.study_point(study.variant, key), point)
        for index in range(replicates):
            record = store.read_json(store.paths.replicate(study.variant, key, index))
            if record is None:
                tasks.append((design, key, index))
            else:
                records.append(record)
    say = progress or (lambda message: None)
    say(f"{len(records)} replicate(s) cached, {len(tasks)} to compute")
    if tasks:
        with task(f"study: {len(tasks)} replicate(s)", total=len(tasks)) as advance:
            keep = _keeper(store, study.variant, records, say, len(tasks), advance)
            if workers == 0 and scheduler is None:
                for design, key, index in tasks:
                    keep(key, fit_replicate(study, design, index))
            else:
                _run_on_dask(study, tasks, workers, scheduler, keep)
    order = {
        (digest(d), i): n
        for n, (d, i) in enumerate((d, i) for d in study.designs() for i in range(replicates))
    }
    return sorted(records, key=lambda r: order.get((digest(r["design"]), r["index"]), 0))


def _keeper(store: Store, variant: str, records: list, say, total: int, advance):
    """A callback that writes each arriving replicate to the store and counts it."""
    lock = threading.Lock()

    def keep(key: str, record: dict) -> None:
        with lock:
            store.write_json(store.paths.replicate(variant, key, record["index"]), record)
            records.append(record)
            record["computed"] = True
            advance()
            design = " ".join(f"{k}={v}" for k, v in record["design"].items())
            say(
                f"replicate {record['index']} {design} done "
                f"({sum(r.get('computed', False) for r in records)}/{total})"
            )

    return keep


def _run_on_dask(
    study: Study, tasks: list, workers: int | None, scheduler: str | None, keep
) -> None:
    with dask_client(
        workers, scheduler, "simulation studies run", "run in this process with --workers 0"
    ) as client:
        from distributed import as_completed

        futures = {
            client.submit(
                fit_replicate, study, design, index, pure=False, key=f"mlm-{key}-{index}"
            ): key
            for design, key, index in tasks
        }
        for future in as_completed(futures):
            keep(futures[future], future.result())
