"""Reading zip archives safely: members are read in memory, never extracted; entries with
absolute paths or `..` are refused (zip slip) and size limits stop zip bombs."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from .base import InputError

MAX_TOTAL_BYTES = 1 << 30  # uncompressed, all members
MAX_MEMBER_BYTES = 256 << 20
MAX_RATIO = 200  # uncompressed / compressed, per member
MAX_MEMBERS = 100_000


def open_checked(path: Path) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: not a readable zip archive ({exc})") from None
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise InputError(f"{path}: refused: {len(infos)} entries (limit {MAX_MEMBERS})")
    total = 0
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
            zf.close()
            raise InputError(f"{path}: refused: unsafe entry path {name!r} (zip slip)")
        total += info.file_size
        if info.file_size > MAX_MEMBER_BYTES or (
            info.compress_size
            and info.file_size / info.compress_size > MAX_RATIO
            and info.file_size > 1 << 20
        ):
            zf.close()
            raise InputError(f"{path}: refused: entry {name!r} expands too much (zip bomb?)")
    if total > MAX_TOTAL_BYTES:
        zf.close()
        raise InputError(f"{path}: refused: {total} bytes uncompressed (limit {MAX_TOTAL_BYTES})")
    return zf


def read_member(zf: zipfile.ZipFile, name: str) -> bytes:
    """Read one member, stopping at its declared size even if the data says otherwise."""
    info = zf.getinfo(name)
    with zf.open(info) as f:
        data = f.read(info.file_size + 1)
    if len(data) > info.file_size:
        raise InputError(f"{zf.filename}: entry {name!r} is larger than it declares")
    return data
