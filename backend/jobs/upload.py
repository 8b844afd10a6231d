"""Receive a multipart job upload as a stream into a temporary file (never whole in memory),
enforcing the size limit while bytes arrive, then identify the audio by its magic bytes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from backend.errors import (
    BadRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)

FILE_FIELD = "file"
PARAMS_FIELD = "params"
MAX_FIELD_BYTES = 64 * 1024  # `params` and any other small form field


@dataclass
class ReceivedUpload:
    path: Path | None
    size: int
    filename: str | None
    fields: dict[str, str]

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class _Receiver:
    """python-multipart callbacks writing the `file` part to disk, other parts to memory."""

    def __init__(self, dest_dir: Path, max_bytes: int) -> None:
        self.dest_dir = dest_dir
        self.max_bytes = max_bytes
        self.result = ReceivedUpload(path=None, size=0, filename=None, fields={})
        self._headers: dict[bytes, bytes] = {}
        self._hname = b""
        self._hvalue = b""
        self._name: str | None = None
        self._is_file = False
        self._buf = bytearray()
        self._fh: Any = None

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._name = None
        self._is_file = False
        self._buf = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._hname.lower()] = self._hvalue
        self._hname = b""
        self._hvalue = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise BadRequestError("A multipart part has no name.")
        self._name = name.decode("utf-8", "replace")
        if self._name == FILE_FIELD:
            if self.result.path is not None:
                raise BadRequestError("Send exactly one `file` part.")
            self._is_file = True
            filename = options.get(b"filename")
            self.result.filename = filename.decode("utf-8", "replace") if filename else None
            fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.dest_dir)
            self._fh = os.fdopen(fd, "wb")
            self.result.path = Path(tmp)
        elif "filename" in {k.decode("latin-1") for k in options}:
            raise BadRequestError(
                f"Unexpected file part {self._name!r}; send the audio in the `file` field."
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.result.size += end - start
            if self.result.size > self.max_bytes:
                raise PayloadTooLargeError(
                    f"The file is larger than the {_mb(self.max_bytes)} limit for remote "
                    "processing; process it locally instead, or split it."
                )
            self._fh.write(data[start:end])
        else:
            self._buf += data[start:end]
            if len(self._buf) > MAX_FIELD_BYTES:
                raise PayloadTooLargeError(f"Form field {self._name!r} is too large.")

    def on_part_end(self) -> None:
        if self._is_file:
            self._fh.close()
            self._fh = None
        elif self._name is not None:
            self.result.fields[self._name] = self._buf.decode("utf-8", "replace")

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.result.discard()


async def receive_multipart(
    content_type: str | None, stream: AsyncIterator[bytes], *, dest_dir: Path, max_bytes: int
) -> ReceivedUpload:
    """Parse a multipart/form-data body chunk by chunk; the `file` part goes to a temp file in
    `dest_dir`. Raises 413 as soon as the file passes `max_bytes`, 400/415 for a malformed or
    non-multipart body, 422 when no file was sent."""
    ctype, options = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data" or b"boundary" not in options:
        raise UnsupportedMediaTypeError(
            "Send the job as multipart/form-data with the audio in a `file` field."
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(dest_dir, max_bytes)
    parser = MultipartParser(options[b"boundary"], receiver.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in stream:
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except (BadRequestError, PayloadTooLargeError):
        receiver.abort()
        raise
    except Exception as exc:
        receiver.abort()
        raise BadRequestError(f"Malformed multipart body: {exc}") from exc
    if receiver.result.path is None or receiver.result.size == 0:
        receiver.abort()
        raise ValidationFailedError("No audio received: put the file in the `file` field.")
    return receiver.result


# (offset, signature, extension) - the containers FFmpeg decodes that people actually upload.
_SIGNATURES: list[tuple[int, bytes, str]] = [
    (0, b"fLaC", ".flac"),
    (0, b"OggS", ".ogg"),
    (0, b"ID3", ".mp3"),
    (0, b"\x1a\x45\xdf\xa3", ".webm"),  # Matroska / WebM
    (0, b"#!AMR", ".amr"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", ".wma"),  # ASF
    (0, b"caff", ".caf"),
    (4, b"ftyp", ".m4a"),  # MP4 family: m4a, mp4, mov, 3gp
]


def sniff_audio(path: Path) -> str:
    """The file extension for a known audio/video container, judged by magic bytes only
    (the client's name and Content-Type are not trusted). Raises 415 otherwise."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return ".wav"
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return ".aiff"
    for offset, sig, ext in _SIGNATURES:
        if head[offset : offset + len(sig)] == sig:
            return ext
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        # MPEG audio frame sync: MP3 without an ID3 tag, or ADTS AAC.
        return ".aac" if (head[1] & 0x06) == 0 else ".mp3"
    raise UnsupportedMediaTypeError(
        "The file is not a supported audio or video format (WAV, MP3, FLAC, OGG/Opus, M4A/MP4, "
        "WebM/MKV, AAC, AIFF, WMA, AMR)."
    )


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB"
