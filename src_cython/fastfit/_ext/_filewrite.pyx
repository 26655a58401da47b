# cython: boundscheck=False, wraparound=False
"""A native thread that writes small checkpoint files without the GIL (Linux).

`ModelCheckpoint` saves a small model every epoch. Written by a Python thread, each of the write's system
calls hands the GIL back and forth with the training thread, and the woken thread often ran on the training
thread's core. Here a `FileWrite` holds one atomic file write (buffers owned by Python objects it keeps
alive) and `start` queues it to a single native thread, which never takes the GIL:

    stat the target (keep its permissions; a folder in the way is an error), create the temporary file
    (O_EXCL), write the header and the body, start its writeback to disk (sync_file_range), close, rename
    it over the target.

A failure removes the temporary file and leaves the target untouched, so a crash of the process never
leaves a partial file. The data is sent to the disk before the rename, but not waited for: an fsync would
force a journal commit per checkpoint, whose I/O and wake-ups land in the next epoch's training. The rename reaches the disk with the file system's next commit (ext4: within 5 s), after
the data; ext4 (data=ordered) guarantees that order, elsewhere the writeback started first makes it all but
certain. Callers that need a file on disk now fsync it themselves (ModelCheckpoint does, for the last file
of a fit). Jobs run in the order they were started. For each job the thread first moves to a CPU other
than the one `start` was called on: the training thread goes on with its epoch-end work on its own CPU,
while the other one only has libgomp's idle worker spinning after training.

The caller checks every argument (in Python, `fastfit.saving.files`); this module only reports errno and the
step that failed. `copy_slots` fills the buffer such a write takes: a checkpoint's arrays copied into their
slots of the file image (`fastfit.saving.image.FileImage`).
"""
from cpython.ref cimport Py_INCREF, Py_DECREF
from libc.errno cimport errno, EINTR, EINVAL, EISDIR, ENOENT, ENOSYS, EOPNOTSUPP, ESPIPE
from libc.string cimport memcpy

cimport numpy as cnp

cnp.import_array()

cdef extern from "<sys/stat.h>" nogil:
    ctypedef struct stat_t "struct stat":
        unsigned int st_mode
    int c_stat "stat"(const char *path, stat_t *buf)
    int fchmod(int fd, unsigned int mode)
    bint S_ISDIR(unsigned int mode)

cdef extern from "<fcntl.h>" nogil:
    int c_open "open"(const char *path, int flags, unsigned int mode)
    enum:
        O_WRONLY
        O_CREAT
        O_EXCL
        O_CLOEXEC

cdef extern from "<unistd.h>" nogil:
    ssize_t c_write "write"(int fd, const void *buf, size_t count)
    int close(int fd)
    int unlink(const char *path)
    int getpid()

cdef extern from "<stdio.h>" nogil:
    int rename(const char *old, const char *new)

cdef extern from "<fcntl.h>" nogil:
    int sync_file_range(int fd, long offset, long nbytes, unsigned int flags)
    enum:
        SYNC_FILE_RANGE_WRITE

cdef extern from "<dlfcn.h>" nogil:
    void *dlopen(const char *filename, int flags)
    void *dlsym(void *handle, const char *symbol)
    enum:
        RTLD_NOW
        RTLD_NOLOAD

cdef extern from "<sched.h>" nogil:
    ctypedef struct cpu_set_t:
        pass
    int CPU_SETSIZE
    void CPU_CLR(int cpu, cpu_set_t *s)
    bint CPU_ISSET(int cpu, cpu_set_t *s)
    int CPU_COUNT(cpu_set_t *s)
    int sched_getcpu()

cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass
    ctypedef struct pthread_attr_t:
        pass
    int pthread_attr_init(pthread_attr_t *attr)
    int pthread_attr_setdetachstate(pthread_attr_t *attr, int state)
    int pthread_attr_destroy(pthread_attr_t *attr)
    enum:
        PTHREAD_CREATE_DETACHED
    int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*run)(void *) noexcept nogil,
                       void *arg)
    pthread_t pthread_self()
    int pthread_mutex_init(pthread_mutex_t *mutex, const void *attr)
    int pthread_mutex_lock(pthread_mutex_t *mutex)
    int pthread_mutex_unlock(pthread_mutex_t *mutex)
    int pthread_cond_init(pthread_cond_t *cond, const void *attr)
    int pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex)
    int pthread_cond_signal(pthread_cond_t *cond)
    int pthread_cond_broadcast(pthread_cond_t *cond)
    int pthread_atfork(void (*prepare)() noexcept nogil, void (*parent)() noexcept nogil,
                       void (*child)() noexcept nogil)
    int pthread_getaffinity_np(pthread_t thread, size_t size, cpu_set_t *cpus)
    int pthread_setaffinity_np(pthread_t thread, size_t size, const cpu_set_t *cpus)
    int pthread_setname_np(pthread_t thread, const char *name)

# The step of a write that failed (in what `FileWrite.wait` returns).
cpdef enum:
    STEP_TARGET = 0
    STEP_CREATE = 1
    STEP_WRITE = 2
    STEP_FLUSH = 3
    STEP_CLOSE = 4
    STEP_RENAME = 5

ctypedef unsigned long (*crc32_function)(unsigned long crc, const unsigned char *data,
                                         unsigned int size) noexcept nogil

cdef crc32_function _zlib_crc32 = NULL


def _find_zlib_crc32():
    """zlib's crc32 from the libz that Python's zlib module loaded (no build-time dependency on zlib)."""
    global _zlib_crc32
    import zlib  # noqa: F401  (loads libz.so.1 where the zlib module links it)
    cdef void *handle = dlopen(b"libz.so.1", RTLD_NOW | RTLD_NOLOAD)
    if handle != NULL:
        _zlib_crc32 = <crc32_function>dlsym(handle, b"crc32")


_find_zlib_crc32()


def has_crc32():
    """True when the thread can compute the checksum itself (`FileWrite`'s `crc_at`)."""
    return _zlib_crc32 != NULL


cdef struct Job:
    const char *tmp
    const char *target
    const unsigned char *head
    size_t head_len
    const unsigned char *body
    size_t body_len
    int flush              # start the data's writeback before the rename
    Py_ssize_t crc_at      # >= 0: write the body's crc32 as 8 hex digits into the header there
    unsigned int umask
    int avoid_cpu          # -1: run anywhere
    int done
    int error              # errno of the failed step, 0 on success
    int step
    Job *next

cdef pthread_mutex_t _mutex
cdef pthread_cond_t _work        # the thread waits here for jobs
cdef pthread_cond_t _finished    # callers of `wait` wait here
cdef Job *_first = NULL
cdef Job *_last = NULL
cdef int _thread_pid = 0         # the process the thread runs in (0: none yet; a forked child has none)


cdef int _write_all(int fd, const unsigned char *data, size_t size) noexcept nogil:
    """Write `size` bytes (retrying partial writes and EINTR); 0, or the errno."""
    cdef ssize_t written
    while size > 0:
        written = c_write(fd, data, size)
        if written < 0:
            if errno == EINTR:
                continue
            return errno
        data += written
        size -= <size_t>written
    return 0


cdef void _put_crc32(Job *job) noexcept nogil:
    cdef unsigned long crc = 0
    cdef size_t done = 0, chunk
    cdef unsigned char *digits = <unsigned char *>job.head + job.crc_at
    cdef int k
    while done < job.body_len:
        chunk = min(job.body_len - done, <size_t>1 << 30)  # zlib takes an unsigned int
        crc = _zlib_crc32(crc, job.body + done, <unsigned int>chunk)
        done += chunk
    for k in range(8):
        digits[k] = b"0123456789abcdef"[(crc >> (28 - 4 * k)) & 0xF]


cdef bint _unsupported(int code) noexcept nogil:
    """sync_file_range's answer on a file system without it (which then writes the file back later)."""
    return code == EINVAL or code == ENOSYS or code == EOPNOTSUPP or code == ESPIPE


cdef void _run(Job *job) noexcept nogil:
    """Do one job's write; leave errno and the step in `job` when a step fails."""
    cdef stat_t info
    cdef unsigned int mode = 0o666
    cdef int existed = c_stat(job.target, &info) == 0
    cdef int fd, error
    if existed:
        if S_ISDIR(info.st_mode):
            job.error, job.step = EISDIR, STEP_TARGET
            return
        mode = info.st_mode & 0o777
    elif errno != ENOENT:
        job.error, job.step = errno, STEP_TARGET
        return
    if job.crc_at >= 0:
        _put_crc32(job)
    fd = c_open(job.tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    if fd < 0:
        job.error, job.step = errno, STEP_CREATE
        return
    error, job.step = 0, STEP_CREATE
    if existed and mode & job.umask and fchmod(fd, mode) != 0:  # the umask took bits the old file had
        error = errno
    if error == 0:
        job.step = STEP_WRITE
        error = _write_all(fd, job.head, job.head_len)
        if error == 0:
            error = _write_all(fd, job.body, job.body_len)
    if error == 0 and job.flush:
        job.step = STEP_FLUSH
        if sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) != 0 and not _unsupported(errno):
            error = errno  # an I/O error
    if close(fd) != 0 and error == 0:
        error, job.step = errno, STEP_CLOSE
    if error == 0:
        job.step = STEP_RENAME
        if rename(job.tmp, job.target) != 0:
            error = errno
    if error != 0:
        unlink(job.tmp)
    job.error = error


cdef void _avoid(int cpu, cpu_set_t *allowed) noexcept nogil:
    """Move this thread off `cpu` (keeping the CPUs it was allowed), unless it is the only one."""
    cdef cpu_set_t cpus = allowed[0]
    if cpu < 0 or cpu >= CPU_SETSIZE or not CPU_ISSET(cpu, &cpus) or CPU_COUNT(&cpus) < 2:
        cpus = allowed[0]
    else:
        CPU_CLR(cpu, &cpus)
    pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), &cpus)


cdef void *_thread(void *unused) noexcept nogil:
    cdef Job *job
    cdef cpu_set_t allowed
    pthread_getaffinity_np(pthread_self(), sizeof(cpu_set_t), &allowed)
    pthread_setname_np(pthread_self(), b"fastfit writer")
    pthread_mutex_lock(&_mutex)
    while True:
        while _first == NULL:
            pthread_cond_wait(&_work, &_mutex)
        job = _first
        pthread_mutex_unlock(&_mutex)
        _avoid(job.avoid_cpu, &allowed)
        _run(job)
        pthread_mutex_lock(&_mutex)
        _pop_done(job)
    return NULL


cdef void _pop_done(Job *job) noexcept nogil:
    """Mark the first job done and wake its waiters (the mutex is held)."""
    global _first, _last
    _first = job.next
    if _first == NULL:
        _last = NULL
    job.done = 1
    pthread_cond_broadcast(&_finished)


cdef void _reset() noexcept nogil:
    """In a forked child: no thread, fresh locks; the parent writes the jobs it had, so they count as done."""
    global _first, _last, _thread_pid
    pthread_mutex_init(&_mutex, NULL)
    pthread_cond_init(&_work, NULL)
    pthread_cond_init(&_finished, NULL)
    while _first != NULL:
        _first.done = 1
        _first = _first.next
    _last = NULL
    _thread_pid = 0


pthread_mutex_init(&_mutex, NULL)
pthread_cond_init(&_work, NULL)
pthread_cond_init(&_finished, NULL)
pthread_atfork(NULL, NULL, _reset)


cdef int _ensure_thread() noexcept nogil:
    """Start the writer thread in this process if it is not running (the mutex is held); 0 or an errno."""
    global _thread_pid
    cdef pthread_t thread
    cdef pthread_attr_t attr
    cdef int error
    if _thread_pid == getpid():
        return 0
    pthread_attr_init(&attr)
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED)
    error = pthread_create(&thread, &attr, _thread, NULL)
    pthread_attr_destroy(&attr)
    if error == 0:
        _thread_pid = getpid()
    return error


cdef class FileWrite:
    """One atomic write of `header` + `body` to `target`, through the temporary file `tmp` (same folder).

    Arguments (checked by the caller):
        tmp, target: file system paths (bytes); `tmp` must not exist.
        header, body: buffers (C-contiguous bytes); kept alive, and must not change, until the write is done.
        flush: start writing the file to disk before the rename (not waited for; see the module docstring).
        umask: the process umask (a new file gets 0o666 less it; a replaced file keeps its permissions).
        crc_at: if >= 0 (needs `has_crc32()`), the thread writes the crc32 of `body` as 8 lowercase hex
            digits into `header` (a bytearray) at this offset before writing it.
    """
    cdef Job job
    cdef object _keep
    cdef bint _started

    def __cinit__(self, bytes tmp, bytes target, header, body, bint flush, unsigned int umask, Py_ssize_t crc_at=-1):
        cdef const unsigned char[::1] head = header
        cdef const unsigned char[::1] data = body
        if crc_at >= 0:
            if _zlib_crc32 == NULL:
                raise RuntimeError("FileWrite: no zlib crc32 found for `crc_at` (see has_crc32)")
            if crc_at + 8 > head.shape[0]:
                raise ValueError(f"FileWrite: `crc_at` {crc_at} leaves no room for 8 digits in a "
                                 f"{head.shape[0]}-byte header")
            if memoryview(header).readonly:
                raise TypeError("FileWrite: with `crc_at`, `header` must be writable (a bytearray)")
        self._keep = (tmp, target, header, body, head, data)
        self.job.tmp = tmp
        self.job.target = target
        self.job.head = &head[0] if head.shape[0] else NULL
        self.job.head_len = head.shape[0]
        self.job.body = &data[0] if data.shape[0] else NULL
        self.job.body_len = data.shape[0]
        self.job.flush = flush
        self.job.umask = umask
        self.job.crc_at = crc_at
        self.job.avoid_cpu = -1
        self.job.done = 0
        self.job.error = 0
        self.job.step = 0
        self.job.next = NULL
        self._started = False

    def start(self):
        """Queue the write to the writer thread (once); it moves off the CPU this call runs on.

        Raises:
            RuntimeError: already started, or the thread could not be started (then nothing was queued).
        """
        global _first, _last
        cdef int error
        if self._started:
            raise RuntimeError("FileWrite.start: this write was already started")
        self.job.avoid_cpu = sched_getcpu()
        with nogil:
            pthread_mutex_lock(&_mutex)
            error = _ensure_thread()
            if error == 0:
                if _last == NULL:
                    _first = &self.job
                else:
                    _last.next = &self.job
                _last = &self.job
                pthread_cond_signal(&_work)
            pthread_mutex_unlock(&_mutex)
        if error != 0:
            raise RuntimeError(f"FileWrite.start: cannot start the writer thread (errno {error})")
        self._started = True
        Py_INCREF(self)  # the thread points into this object until the job is done; `wait` lets it go

    def done(self):
        """True once the write has finished (successfully or not); False before `start`."""
        cdef int done
        if not self._started:
            return False
        pthread_mutex_lock(&_mutex)  # with the GIL: the thread holds the mutex only between jobs, briefly
        done = self.job.done
        pthread_mutex_unlock(&_mutex)
        return bool(done)

    def wait(self):
        """Block (without the GIL) until the write has finished; None on success, else (errno, step) of the
        failure (step: one of the STEP_* constants). Raises RuntimeError if it was never started."""
        cdef int done
        if not self._started:
            raise RuntimeError("FileWrite.wait: the write was not started")
        if self._keep is not None:
            pthread_mutex_lock(&_mutex)
            done = self.job.done
            pthread_mutex_unlock(&_mutex)
            if not done:
                with nogil:
                    pthread_mutex_lock(&_mutex)
                    while not self.job.done:
                        pthread_cond_wait(&_finished, &_mutex)
                    pthread_mutex_unlock(&_mutex)
            self._keep = None
            Py_DECREF(self)  # balances `start`; the caller still holds a reference
        return None if self.job.error == 0 else (self.job.error, self.job.step)


def copy_slots(unsigned char[::1] buffer, list offsets, list targets, list arrays):
    """Copy each of `arrays` into `buffer` at its offset; False if one does not fit its slot.

    A checkpoint's arrays go into their slots of the file image at every save, in one call without numpy's
    per-array `target[...] = array` overhead. `targets[i]` is the array viewing slot i (its
    dtype and shape are the slot's); an array that is not a C-contiguous ndarray of exactly that (numeric)
    dtype and shape is not copied and the result is False, for the caller to take its slow path. Nothing is
    copied unless every array fits.
    """
    cdef Py_ssize_t i, d, n = len(arrays)
    cdef cnp.ndarray array, target
    if len(offsets) != n or len(targets) != n:
        raise ValueError(f"copy_slots: {len(offsets)} offsets and {len(targets)} targets for {n} arrays")
    for i in range(n):
        if type(arrays[i]) is not cnp.ndarray or type(targets[i]) is not cnp.ndarray:
            return False
        array, target = arrays[i], targets[i]
        if (cnp.PyArray_TYPE(array) != cnp.PyArray_TYPE(target)
                or not (cnp.PyArray_ISNUMBER(target) or cnp.PyArray_ISBOOL(target))
                or cnp.PyArray_ITEMSIZE(array) != cnp.PyArray_ITEMSIZE(target)
                or cnp.PyArray_ISNOTSWAPPED(array) != cnp.PyArray_ISNOTSWAPPED(target)
                or cnp.PyArray_NDIM(array) != cnp.PyArray_NDIM(target)
                or not cnp.PyArray_IS_C_CONTIGUOUS(array)):
            return False
        for d in range(cnp.PyArray_NDIM(array)):
            if cnp.PyArray_DIMS(array)[d] != cnp.PyArray_DIMS(target)[d]:
                return False
        if <Py_ssize_t>offsets[i] < 0 or <Py_ssize_t>offsets[i] + cnp.PyArray_NBYTES(array) > buffer.shape[0]:
            raise ValueError(f"copy_slots: slot {i} lies outside the buffer")
    for i in range(n):
        array = arrays[i]
        if cnp.PyArray_NBYTES(array):
            memcpy(&buffer[0] + <Py_ssize_t>offsets[i], cnp.PyArray_DATA(array), cnp.PyArray_NBYTES(array))
    return True
