"""A small case-folding, normalisation-insensitive filesystem for the tests: macOS's APFS as a sync
sees it, on a Linux kernel that mounts neither ext4 ``-O casefold`` nor vfat (FACTS.md).

Run as its own process (``python foldfs.py BACKING MOUNTPOINT``): a FUSE layer over a plain
folder. A name is looked up by its key (Unicode NFC, then case folded), so ``A.ipynb`` opens
``a.ipynb`` and a composed ``café`` opens a decomposed one; a new name is stored as spelled
(case preserving, as APFS is); creating a name whose key is taken finds the one that is there.
Inode numbers are the backing folder's (``use_ino``), and nothing is cached by the kernel, so
every lookup asks this layer.
"""

from __future__ import annotations

import errno
import os
import sys
import unicodedata
from typing import Any

import mfusepy as fuse


def key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


class FoldFS(fuse.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, backing: str) -> None:
        self.backing = os.path.realpath(backing)

    # --- names ------------------------------------------------------------------------------

    def _find(self, folder: str, name: str) -> str | None:
        """The stored name in ``folder`` whose key is ``name``'s, or None."""
        if os.path.lexists(os.path.join(folder, name)):
            return name
        wanted = key(name)
        try:
            entries = os.listdir(folder)
        except OSError:
            return None
        for entry in entries:
            if key(entry) == wanted:
                return entry
        return None

    def _real(self, path: str) -> str:
        """The backing path of an existing ``path`` (ENOENT if there is none)."""
        real = self.backing
        for part in [p for p in path.split("/") if p]:
            found = self._find(real, part)
            if found is None:
                raise fuse.FuseOSError(errno.ENOENT)
            real = os.path.join(real, found)
        return real

    def _new(self, path: str) -> tuple[str, str | None]:
        """(the backing path as spelled, the backing path of what has its key there, if any)."""
        parent, _, name = path.rstrip("/").rpartition("/")
        folder = self._real(parent)
        found = self._find(folder, name)
        return os.path.join(folder, name), None if found is None else os.path.join(folder, found)

    # --- metadata ---------------------------------------------------------------------------

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        info = os.lstat(self._real(path))
        fields = ("st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size")
        attrs: dict[str, Any] = {name: getattr(info, name) for name in fields}
        attrs.update(
            st_atime=info.st_atime_ns, st_mtime=info.st_mtime_ns, st_ctime=info.st_ctime_ns
        )
        return attrs

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._real(path), amode):
            raise fuse.FuseOSError(errno.EACCES)
        return 0

    def readdir(self, path: str, fh: int) -> list[tuple[str, dict[str, int], int]]:
        """Each entry with its inode (an entry of inode 0 is one that readdir skips)."""
        folder = self._real(path)
        entries = []
        for name in (".", "..", *os.listdir(folder)):
            info = os.lstat(os.path.join(folder, name))
            entries.append((name, {"st_mode": info.st_mode, "st_ino": info.st_ino}, 0))
        return entries

    def readlink(self, path: str) -> str:
        return os.readlink(self._real(path))

    def statfs(self, path: str) -> dict[str, int]:
        info = os.statvfs(self._real(path))
        names = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                 "f_files", "f_flag", "f_frsize", "f_namemax")  # fmt: skip
        return {name: getattr(info, name) for name in names}

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.lchown(self._real(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if times is None:
            os.utime(self._real(path), follow_symlinks=False)
        else:
            os.utime(self._real(path), ns=times, follow_symlinks=False)
        return 0

    # --- names made and removed -------------------------------------------------------------

    def mkdir(self, path: str, mode: int) -> int:
        spelled, found = self._new(path)
        if found is not None:
            raise fuse.FuseOSError(errno.EEXIST)
        os.mkdir(spelled, mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._real(path))
        return 0

    def unlink(self, path: str) -> int:
        os.unlink(self._real(path))
        return 0

    def symlink(self, target: str, source: str) -> int:
        spelled, found = self._new(target)
        if found is not None:
            raise fuse.FuseOSError(errno.EEXIST)
        os.symlink(source, spelled)
        return 0

    def link(self, target: str, source: str) -> int:
        spelled, found = self._new(target)
        if found is not None:
            raise fuse.FuseOSError(errno.EEXIST)
        os.link(self._real(source), spelled)
        return 0

    def rename(self, old: str, new: str) -> int:
        real_old = self._real(old)
        spelled, found = self._new(new)
        if found is not None and found != real_old and found != spelled:
            os.replace(real_old, found)  # onto what holds the key there, then spelled as asked
            os.rename(found, spelled)
        else:
            os.replace(real_old, spelled)
        return 0

    # --- contents ---------------------------------------------------------------------------

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        spelled, found = self._new(path)
        return os.open(found or spelled, os.O_RDWR | os.O_CREAT, mode)

    def open(self, path: str, flags: int) -> int:
        return os.open(self._real(path), flags & ~os.O_CREAT)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return os.pwrite(fh, data, offset)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self._real(path), length)
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        os.fsync(fh)
        return 0

    def release(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0


def main() -> None:
    backing, mountpoint = sys.argv[1], sys.argv[2]
    fuse.FUSE(
        FoldFS(backing),
        mountpoint,
        foreground=True,
        nothreads=True,
        use_ino=True,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
        allow_other=os.getuid() == 0,
        default_permissions=True,
    )


if __name__ == "__main__":
    main()
