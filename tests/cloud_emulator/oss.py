"""The OSS-compatible object store of the emulator (path-style: ``/<bucket>/<key>``).

Enough of the Aliyun OSS REST API for ``oss2`` on an IP endpoint: PutObject,
GetObject, HeadObject, DeleteObject, InitiateMultipartUpload (``?uploads``),
UploadPart (``?partNumber=&uploadId=``), CompleteMultipartUpload
(``?uploadId=``), AbortMultipartUpload. Signatures are not checked, but writes
must carry an ``x-oss-security-token`` the emulator issued as STS credentials.
ETag and ``x-oss-hash-crc64ecma`` are computed as OSS does, so ``oss2``'s CRC
checks really run.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from .state import MultipartUpload, State, StoredObject, crc64


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def operation(method: str, query: Mapping[str, str]) -> str:
    """The OSS operation name of a request (used for call counts)."""
    if method == "PUT":
        return "UploadPart" if "uploadId" in query else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "InitiateMultipartUpload"
        return "CompleteMultipartUpload" if "uploadId" in query else "PostObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return {"GET": "GetObject", "HEAD": "HeadObject"}.get(method, method)


def error(status: int, code: str, message: str) -> Response:
    request_id = secrets.token_hex(12).upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>127.0.0.1</HostId></Error>"
    ).encode()
    return Response(status, body, {"Content-Type": "application/xml"})


def _xml(root: str, **fields: str) -> Response:
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>'.encode()
    return Response(200, body, {"Content-Type": "application/xml"})


def _object_headers(obj: StoredObject) -> dict[str, str]:
    headers = {"ETag": f'"{obj.etag}"'}
    if obj.crc is not None:
        headers["x-oss-hash-crc64ecma"] = str(obj.crc)
    return headers


def handle(
    state: State,
    method: str,
    bucket: str,
    key: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
) -> Response:
    """Serve one OSS request."""
    if not key:
        return error(400, "NotImplemented", "bucket-level operations are not emulated")
    op = operation(method, query)
    if method in ("PUT", "POST", "DELETE"):
        token = headers.get("x-oss-security-token", "")
        with state.lock:
            known = token in state.sts_tokens
        if not known:
            return error(403, "InvalidAccessKeyId", "missing or unknown STS security token")
    if op in ("GetObject", "HeadObject"):
        return _get(state, bucket, key, head=(method == "HEAD"))
    if op == "PutObject":
        return Response(200, b"", _object_headers(state.put_object(bucket, key, body)))
    if op == "DeleteObject":
        with state.lock:
            state.objects.pop((bucket, key), None)
        return Response(204)
    return _multipart(state, op, bucket, key, query, body)


def _get(state: State, bucket: str, key: str, *, head: bool) -> Response:
    obj = state.get_object(bucket, key)
    if obj is None:
        return error(404, "NoSuchKey", "The specified key does not exist.")
    headers = _object_headers(obj)
    headers.update(
        {
            "Content-Type": "application/octet-stream",
            "Last-Modified": formatdate(time.time(), usegmt=True),
            "x-oss-object-type": "Multipart" if obj.multipart else "Normal",
        }
    )
    if head:
        headers["Content-Length"] = str(len(obj.data))
        return Response(200, b"", headers)
    return Response(200, obj.data, headers)


def _multipart(
    state: State, op: str, bucket: str, key: str, query: Mapping[str, str], body: bytes
) -> Response:
    if op == "InitiateMultipartUpload":
        upload_id = secrets.token_hex(16).upper()
        with state.lock:
            state.uploads[upload_id] = MultipartUpload(bucket, key)
        return _xml("InitiateMultipartUploadResult", Bucket=bucket, Key=key, UploadId=upload_id)
    with state.lock:
        upload = state.uploads.get(query.get("uploadId", ""))
    if upload is None or (upload.bucket, upload.key) != (bucket, key):
        return error(404, "NoSuchUpload", "The specified upload does not exist.")
    if op == "UploadPart":
        try:
            number = int(query.get("partNumber", ""))
        except ValueError:
            return error(400, "InvalidArgument", "partNumber must be an integer")
        with state.lock:
            upload.parts[number] = body
        part = StoredObject(body, hashlib.md5(body).hexdigest().upper(), crc64(body))
        return Response(200, b"", _object_headers(part))
    if op == "AbortMultipartUpload":
        with state.lock:
            state.uploads.pop(query["uploadId"], None)
        return Response(204)
    if op == "CompleteMultipartUpload":
        return _complete(state, query["uploadId"], upload, body)
    return error(400, "NotImplemented", f"{op} is not emulated")


def _complete(state: State, upload_id: str, upload: MultipartUpload, body: bytes) -> Response:
    try:
        root = ElementTree.fromstring(body)
        listed = [
            (int(p.findtext("PartNumber", "")), (p.findtext("ETag") or "").strip('"'))
            for p in root.findall("Part")
        ]
    except (ElementTree.ParseError, ValueError):
        return error(400, "MalformedXML", "cannot parse the CompleteMultipartUpload body")
    if not listed or [n for n, _ in listed] != sorted({n for n, _ in listed}):
        return error(400, "InvalidPartOrder", "parts must be listed once, in ascending order")
    chunks: list[bytes] = []
    digests = b""
    for number, tag in listed:
        data = upload.parts.get(number)
        if data is None or hashlib.md5(data).hexdigest().upper() != tag.upper():
            return error(400, "InvalidPart", f"part {number} was not uploaded with that ETag")
        chunks.append(data)
        digests += hashlib.md5(data).digest()
    data = b"".join(chunks)
    obj = StoredObject(
        data, f"{hashlib.md5(digests).hexdigest().upper()}-{len(listed)}", crc64(data), True
    )
    with state.lock:
        state.objects[(upload.bucket, upload.key)] = obj
        state.uploads.pop(upload_id, None)
    response = _xml(
        "CompleteMultipartUploadResult",
        Location=f"/{upload.bucket}/{upload.key}",
        Bucket=upload.bucket,
        Key=upload.key,
        ETag=f'"{obj.etag}"',
    )
    response.headers.update(_object_headers(obj))
    return response
