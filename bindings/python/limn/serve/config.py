"""The settings of `limn serve`: one dataclass holding every command-line option and its default."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import List, Optional

__all__ = ["ServeConfig", "parse_bytes", "builtin_model"]

_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_BYTES = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """A byte count with an optional K, M, G or T suffix (powers of 1024): "2G", "512K", "1048576"."""
    m = _BYTES.match(str(text))
    if not m:
        raise ValueError(f"invalid size {text!r}: expected bytes with an optional K, M, G or T suffix, e.g. 20M")
    return int(float(m.group(1)) * _SUFFIXES[m.group(2).upper()])


def builtin_model() -> str:
    """The cartoon model shipped in the installed package (limn/models/classical-cartoon.pt)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                        "classical-cartoon.pt")


@dataclass
class ServeConfig:
    """Everything `limn serve` can be told; the defaults are the command's."""

    host: str = "127.0.0.1"
    port: int = 8000
    #: cartoon models (names or files); empty: the built-in classical-cartoon model
    models: List[str] = field(default_factory=list)
    heads: List[str] = field(default_factory=list)        #: head cartoon models (compound stylization)
    restorers: List[str] = field(default_factory=list)    #: face_restore models
    detectors: List[str] = field(default_factory=list)    #: face_detect models
    device: str = "auto"
    precision: str = "auto"
    memory_limit: int = 0                 #: bytes limn may use on the device; 0: no cap
    max_pixels: int = 3000 * 3000         #: larger images are refused with 413 (the seeds' 3000x3000)
    max_upload: int = 32 << 20            #: request bodies larger than this are refused with 413
    queue: int = 16                       #: requests waiting per model; more are refused with 429
    concurrency: int = 1                  #: requests running at once per model
    timeout: Optional[float] = 60.0       #: seconds from arrival to result (a request may ask less); None: none
    api_key: Optional[str] = None         #: bearer token; None: no authentication
    cors_origins: List[str] = field(default_factory=list)
    grace: float = 30.0                   #: seconds queued and running work may take after SIGTERM
    access_log: Optional[str] = None      #: JSON-lines access log file; "-": standard output
    auth_health: bool = False             #: the API key protects /healthz, /readyz and /metrics too
    job_ttl: float = 600.0                #: seconds a finished job and its result are kept
    job_max: int = 1000                   #: jobs kept at most (oldest finished ones go first)
    job_max_bytes: int = 256 << 20        #: bytes of job results kept at most
    #: the /v1/jobs routes; off behind Ray Serve, where a job's later requests may reach another
    #: replica than the one holding it (its routes answer 501; the web page then waits on /v1/OP)
    jobs: bool = True

    def check(self) -> None:
        """Raises ValueError naming the first option out of range."""
        rules = [
            ("port", 0 <= self.port <= 65535, "0..65535"),
            ("memory-limit", self.memory_limit >= 0, ">= 0"),
            ("max-pixels", self.max_pixels > 0, "> 0"),
            ("max-upload", self.max_upload > 0, "> 0"),
            ("queue", self.queue >= 0, ">= 0"),
            ("concurrency", self.concurrency >= 1, ">= 1"),
            ("timeout", self.timeout is None or self.timeout > 0, "> 0"),
            ("grace", self.grace >= 0, ">= 0"),
            ("job-ttl", self.job_ttl > 0, "> 0"),
            ("job-max", self.job_max >= 1, ">= 1"),
            ("job-max-bytes", self.job_max_bytes >= 1, ">= 1"),
        ]
        for name, ok, want in rules:
            if not ok:
                raise ValueError(f"--{name} must be {want}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("--api-key must not be empty")
        if self.heads and not self.detectors:
            raise ValueError("--head needs --detector: compound stylization finds the faces with it")
        if self.restorers and not self.detectors:
            raise ValueError("--restorer needs --detector: restore-faces finds the faces with it")
