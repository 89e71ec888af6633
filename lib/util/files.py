"""Writing files so that nothing is lost: atomic replacement, ordinary permissions, one writer per run folder.

Every file the project writes (checkpoints, summaries, the corpus, figures, the report) goes through
atomic_path(): the content is written to a hidden temporary file beside the target, flushed to disk,
given the permissions an ordinary new file gets (0644 under the usual umask 022) and renamed over the
target. A crash, Ctrl-C or SIGKILL at any moment leaves the old file or the new one, never a mix.
Temporary files carry their writer's process id, so a writer removes only the leftovers of writers that
are gone, never the file another live process is still writing.
"""
import errno
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:                         # Windows: no advisory locks; one writer is not enforced
    fcntl = None


class FolderError(ValueError):
    """A folder that cannot hold a run, with a message that says what to do."""


def _umask():
    old = os.umask(0)
    os.umask(old)
    return old


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                 # another user's process
        return True
    return True


def remove_stale_parts(path):
    """Delete the temporary files beside path left by writers that no longer run."""
    path = Path(path)
    for part in path.parent.glob(f".{path.name}.*.part*"):
        pid = part.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            part.unlink(missing_ok=True)


@contextmanager
def atomic_path(path, suffix=".part"):
    """Yields a temporary path beside path (ending in suffix); when the block ends without error, that
    file is flushed to disk, given ordinary permissions and renamed over path. On an error it is removed."""
    path = Path(path)
    if path.is_symlink():                   # written through a link to its target; the link stays
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:                                    # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def write_bytes(path, data):
    """Write bytes to path atomically (see atomic_path)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path, text):
    """Write a UTF-8 text to path atomically (see atomic_path)."""
    write_bytes(path, text.encode("utf-8"))


def regular_file(path, what):
    """Path of an existing regular file, or a ValueError-kind message: a folder, a FIFO, a device or a
    socket is refused at once (reading one could block forever or never end)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise FolderError(f"Cannot read {what} {path}: {err.strerror}.") from None
    if stat.S_ISDIR(st.st_mode):
        raise FolderError(f"{what.capitalize()} {path} is a folder, not a file.")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise FolderError(f"{what.capitalize()} {path} is {kind}; give a regular file.")
    return st


OWN_FILES = ("checkpoint.npz", "summary.json", "study.log", "best.json")   # a run's and a study's own files


def not_an_input(path, option, inputs=(), own=OWN_FILES, folder=None):
    """FolderError when writing path (given as option) would replace what must stay: one of inputs
    ((what, path) pairs: the files the command reads), by whatever name, or an existing file named as a
    run's or a study's own (own), which only training and the search write. folder: the folder given as
    option, when path is a file the command writes in it."""
    path = Path(path)
    if not path.exists():
        return
    if path.name in own:
        raise FolderError(f"{option} {path} would replace a run's or a study's own {path.name}; give another "
                          "file name.")
    for what, source in inputs:
        if source is not None and Path(source).exists() and os.path.samefile(path, source):
            if folder is not None:
                raise FolderError(f"{option} {folder} would have its {path.name} written over {what} this command "
                                  f"reads ({source}); give another {option}, or a copy of the text.")
            raise FolderError(f"{option} {path} is {what} this command reads; writing there would replace it. "
                              "Give another file name.")


def output_file(path, option, inputs=()):
    """Check, before any work, that the file path (given as option) can be written: not a folder, a
    device, a FIFO or a socket, not one of inputs nor a run's own file (not_an_input), in a folder (made
    when missing) that this process can write in. A link is written through to its target. Returns the
    path; FolderError names option and the path given."""
    given = path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):      # a new file (check_folder judges where it would go)
        st = None
    except OSError as err:
        raise FolderError(f"Cannot write {option} {given}: {err.strerror}.") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) \
            else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
        raise FolderError(f"{option} {given} is {kind}; give the name of a regular file.")
    not_an_input(path, option, inputs)
    check_folder(path.parent, f"the folder of {option} {given}")
    return given


def check_folder(folder, what):
    """A folder (made when missing) this process can write in; FolderError naming `what` (how the user
    gave it: "--out runs/x") otherwise."""
    folder = Path(folder)
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise FolderError(f"{what} cannot be used: {parent} is a file, not a folder; give a folder.")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FolderError(f"Cannot create {what}: {err.strerror}.") from None
    try:
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"0")
    except OSError as err:
        raise FolderError(f"Cannot write in {what}: {err.strerror}. Use a folder you can write to.") from None


def human(n_bytes):
    """1536 -> '1.5 KB' (powers of 1024, one decimal)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n_bytes) < 1024 or unit == "TB":
            return f"{n_bytes:.0f} bytes" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024


def check_out_dir(folder, need_bytes, option="--out", names=("checkpoint.npz",), inputs=()):
    """Make sure folder can hold a run before any training: a folder (created if missing) that this
    process can write in, in which none of the run's files (names) is a folder or one of inputs ((what,
    path) pairs, as for not_an_input), with room for two checkpoints of need_bytes (the new one is written
    beside the old one)."""
    folder = Path(folder)
    check_folder(folder, f"{option} {folder}")
    for name in names:
        if (folder / name).is_dir():
            raise FolderError(f"{folder / name} is a folder; a run's {name} must be a file. Move it away or use "
                              f"another {option}.")
        not_an_input(folder / name, option, inputs, own=(), folder=folder)
    free = shutil.disk_usage(folder).free
    if free < 2 * need_bytes:
        raise FolderError(f"{option} {folder} has {human(free)} free; a checkpoint of this run needs about "
                          f"{human(need_bytes)} (twice that while it is replaced). Free some space or use "
                          f"another {option}.")


class FolderLock:
    """One writer per run folder: an advisory lock on folder/.lock that holds the writer's process id.

    The lock ends with the process, however it ends, so a killed run never leaves its folder locked.
        with FolderLock(folder): ...       # FolderError naming the other process if it is taken
    """

    def __init__(self, folder, what="run"):
        self.path, self.what = Path(folder) / ".lock", what
        self.fd = None

    def __enter__(self):
        if fcntl is None:
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                pid = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise FolderError(
                    f"{self.path.parent} is in use by another {self.what} (process {pid}); wait for it to end, "
                    "stop it (kill -TERM saves it), or use another folder.") from None
            try:                            # the file may have been removed by its last holder meanwhile
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None
