"""The job store of POST /v1/jobs: jobs by id, with results kept for a bounded time, count and size.

A job is admitted when it is submitted (so a full queue answers 429 at once) and runs in its own
asyncio task; its state, queue position and progress come from its :class:`~.service.Ticket`.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, OrderedDict

from .service import ApiError, Service, Ticket

__all__ = ["Job", "JobStore", "STATES", "FINAL_STATES"]

STATES = ("queued", "running", "done", "failed", "cancelled", "timed_out")
FINAL_STATES = ("done", "failed", "cancelled", "timed_out")


class Job:
    """One submitted job: what it is, its ticket while it runs, its result or error once over."""

    def __init__(self, op: str, ticket: Ticket) -> None:
        self.id = secrets.token_urlsafe(12)
        self.op = op
        self.ticket = ticket
        self.created = time.time()
        self.finished_at: Optional[float] = None  # time.monotonic() when it ended
        self.state = "queued"
        self.error: Optional[Dict[str, str]] = None
        self.result: Optional[bytes] = None
        self.content_type: Optional[str] = None
        self.seconds: Optional[float] = None
        self.fetched = False
        self.task: Optional["asyncio.Task[None]"] = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def to_json(self, service: Service) -> Dict[str, Any]:
        state = self.state
        if not self.final:
            state = "running" if self.ticket.state in ("running", "finished") else "queued"
        done, total = self.ticket.progress
        return {
            "id": self.id, "op": self.op, "model": self.ticket.model.name, "state": state,
            "queue_position": service.position(self.ticket) if state == "queued" else None,
            "progress": {"done": done, "total": total},
            "error": self.error,
            "result_url": f"/v1/jobs/{self.id}/result" if state == "done" else None,
            "content_type": self.content_type if state == "done" else None,
            "created": self.created, "seconds": self.seconds,
        }


_STATE_OF_CODE = {"timeout": "timed_out", "cancelled": "cancelled", "draining": "cancelled"}


class JobStore:
    """Jobs by id. Finished jobs expire after ``ttl`` seconds; at most ``max_jobs`` are kept and
    their results hold at most ``max_bytes`` (the oldest finished jobs go first)."""

    def __init__(self, service: Service, ttl: float, max_jobs: int, max_bytes: int) -> None:
        self.service = service
        self.ttl = ttl
        self.max_jobs = max_jobs
        self.max_bytes = max_bytes
        self.bytes = 0
        self._jobs: OrderedDict[str, Job] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, job_id: str) -> Job:
        self._expire()
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "job_not_found", f"no job '{job_id}' (unknown, deleted or expired)")
        return job

    def submit(self, op: str, ticket: Ticket, work: Callable[[Job], Awaitable[tuple]]) -> Job:
        """Admits ``ticket`` (429/503 raised here) and starts ``work(job)`` -> (bytes, content type)."""
        self._expire()
        self._make_room(extra_jobs=1, extra_bytes=0)
        self.service.admit(ticket)
        job = Job(op, ticket)
        self._jobs[job.id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job, work))
        return job

    async def _run(self, job: Job, work: Callable[[Job], Awaitable[tuple]]) -> None:
        start = time.monotonic()
        try:
            data, content_type = await work(job)
            if len(data) > self.max_bytes:  # before making room: it would never fit anyway
                raise ApiError(507, "result_too_large", f"the result ({len(data)} bytes) is larger than the "
                                                        f"job store holds ({self.max_bytes} bytes)")
            self._make_room(extra_jobs=0, extra_bytes=len(data))
            job.result, job.content_type = data, content_type
            self.bytes += len(data)
            job.state = "done"
        except ApiError as e:
            job.error = {"code": e.code, "message": e.message}
            job.state = _STATE_OF_CODE.get(e.code, "failed")
        except asyncio.CancelledError:
            job.error = {"code": "cancelled", "message": "cancelled at shutdown"}
            job.state = "cancelled"
        except Exception as e:  # a bug: recorded in the job and logged by the caller's logger
            import logging

            logging.getLogger("limn.serve").exception("job %s failed", job.id)
            job.error = {"code": "internal", "message": f"internal error in job {job.id}: {type(e).__name__}"}
            job.state = "failed"
        finally:
            job.seconds = time.monotonic() - start
            job.finished_at = time.monotonic()
            job.task = None

    async def cancel(self, job: Job, wait: float = 2.0) -> None:
        """Cancels ``job`` through the library's cancel flag (a finished one is removed) and waits
        up to ``wait`` seconds for it to stop."""
        if job.final:
            self._remove(job)
            return
        job.ticket.request_cancel("cancelled")
        end = time.monotonic() + wait
        while not job.final and time.monotonic() < end:
            await asyncio.sleep(0.02)

    def unsettled_ids(self) -> List[str]:
        """Jobs queued or running (their results, once done, are worth waiting for at shutdown)."""
        return [j.id for j in self._jobs.values() if not j.final]

    def settled(self, ids: List[str]) -> bool:
        """True when each of ``ids`` is gone, failed, or done and fetched."""
        for job_id in ids:
            j = self._jobs.get(job_id)
            if j is not None and (not j.final or (j.state == "done" and not j.fetched)):
                return False
        return True

    def _remove(self, job: Job) -> None:
        if self._jobs.pop(job.id, None) is not None and job.result is not None:
            self.bytes -= len(job.result)
            job.result = None

    def _expire(self) -> None:
        now = time.monotonic()
        for job in [j for j in self._jobs.values() if j.final and now - (j.finished_at or now) > self.ttl]:
            self._remove(job)

    def _make_room(self, extra_jobs: int, extra_bytes: int) -> None:
        """Drops the oldest finished jobs until one more job / ``extra_bytes`` more fit."""
        for job in [j for j in self._jobs.values() if j.final]:
            if len(self._jobs) + extra_jobs <= self.max_jobs and self.bytes + extra_bytes <= self.max_bytes:
                return
            self._remove(job)
        if len(self._jobs) + extra_jobs > self.max_jobs:
            raise ApiError(429, "too_many_jobs", f"{len(self._jobs)} jobs are running or waiting; retry later",
                           {"Retry-After": "5"})
