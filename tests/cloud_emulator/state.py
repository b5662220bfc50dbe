"""Shared state of the cloud emulator: accounts, tokens, objects, faults, call counts."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

_crc64: Callable[[bytes], int] | None
try:  # oss2 depends on crcmod; without it the emulator sends no CRC header
    import crcmod  # type: ignore[import-untyped]

    _crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)
except ImportError:  # pragma: no cover
    _crc64 = None

RejectMode = Literal["http", "code"]
HostileKind = Literal["dotdot", "absolute", "symlink"]
HOSTILE_KINDS: tuple[HostileKind, ...] = ("dotdot", "absolute", "symlink")


def crc64(data: bytes) -> int | None:
    """CRC-64/ECMA-182 as OSS reports it in ``x-oss-hash-crc64ecma``."""
    return None if _crc64 is None else int(_crc64(data))


def etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()


@dataclass
class StoredObject:
    data: bytes
    etag: str
    crc: int | None
    multipart: bool = False


@dataclass
class MultipartUpload:
    bucket: str
    key: str
    parts: dict[int, bytes] = field(default_factory=dict)


@dataclass
class _CountedFault:
    remaining: int
    path_prefix: str | None
    status: int = 503
    seconds: float = 0.0
    skip: int = 0  # let this many matching requests through first

    def matches(self, path: str) -> bool:
        prefix = self.path_prefix
        return self.remaining > 0 and (prefix is None or path.startswith(prefix))


@dataclass
class Faults:
    """What the emulator does wrong on purpose."""

    failures: list[_CountedFault] = field(default_factory=list)
    delays: list[_CountedFault] = field(default_factory=list)
    reject_mode: RejectMode = "http"
    forced_exit: dict[int | None, int] = field(default_factory=dict)  # None: every job
    hostile: dict[int | None, HostileKind] = field(default_factory=dict)

    @staticmethod
    def _take(faults: list[_CountedFault], path: str) -> _CountedFault | None:
        for fault in faults:
            if fault.matches(path):
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.remaining -= 1
                return fault
        return None


class State:
    """Everything the HTTP handlers share; every access goes through ``lock``."""

    def __init__(self, bucket: str) -> None:
        self.lock = threading.RLock()
        self.bucket = bucket
        self.users: dict[str, str] = {}  # email or phone -> password
        self.tokens: set[str] = set()
        self.tickets: set[str] = set()
        self.sts_tokens: set[str] = set()
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.uploads: dict[str, MultipartUpload] = {}
        self.calls: Counter[str] = Counter()
        self.auth_seen: list[tuple[str, str]] = []  # (route, "jwt" | "ticket")
        self.rejected: list[str] = []  # requests refused for their shape
        self.requests: list[dict[str, Any]] = []  # every request, see server.recorded
        self.faults = Faults()
        self.allowed_projects: set[int] | None = None

    # accounts ----------------------------------------------------------------
    def add_user(self, password: str, email: str | None, phone: str | None) -> None:
        with self.lock:
            for name in (email, phone):
                if name:
                    self.users[name] = password

    def check_login(self, identity: str, password: str) -> Literal["ok", "user", "password"]:
        with self.lock:
            if identity not in self.users:
                return "user"
            return "ok" if secrets.compare_digest(self.users[identity], password) else "password"

    def new_token(self) -> str:
        token = "tok-" + secrets.token_hex(16)
        with self.lock:
            self.tokens.add(token)
        return token

    def new_sts(self) -> dict[str, str]:
        security = base64.b64encode(secrets.token_bytes(24)).decode()
        with self.lock:
            self.sts_tokens.add(security)
        return {
            "AccessKeyId": "STS.emulator" + secrets.token_hex(4),
            "AccessKeySecret": secrets.token_hex(16),
            "SecurityToken": security,
            "Expiration": "2099-01-01T00:00:00Z",
        }

    # objects -----------------------------------------------------------------
    def put_object(self, bucket: str, key: str, data: bytes) -> StoredObject:
        obj = StoredObject(data=data, etag=etag(data), crc=crc64(data))
        with self.lock:
            self.objects[(bucket, key)] = obj
        return obj

    def get_object(self, bucket: str, key: str) -> StoredObject | None:
        with self.lock:
            return self.objects.get((bucket, key))

    # faults ------------------------------------------------------------------
    def take_failure(self, path: str) -> int | None:
        with self.lock:
            fault = Faults._take(self.faults.failures, path)
        return None if fault is None else fault.status

    def take_delay(self, path: str) -> float:
        with self.lock:
            fault = Faults._take(self.faults.delays, path)
        return 0.0 if fault is None else fault.seconds
