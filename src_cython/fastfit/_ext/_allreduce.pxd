# One MPI_Allreduce (in place, sum) of distributed training, called from the GIL-free loop through the
# function pointer of the MPI library that mpi4py loaded (resolved at run time by `fastfit.distributed`): the
# build needs no MPI headers. MPICH's handles are ints, Open MPI's are pointers: both signatures are here.
from libc.stdint cimport intptr_t

ctypedef int (*allreduce_int_t)(const void* sendbuf, void* recvbuf, int count, int datatype, int op,
                                int comm) noexcept nogil
ctypedef int (*allreduce_ptr_t)(const void* sendbuf, void* recvbuf, int count, void* datatype, void* op,
                                void* comm) noexcept nogil


cdef struct Reduce:
    void* fn                # MPI_Allreduce, or NULL: one process (no reduction)
    bint int_handles        # handles are ints (MPICH and its derivatives) rather than pointers (Open MPI)
    intptr_t comm           # the communicator, the network dtype's MPI datatype and MPI_SUM, as handles
    intptr_t datatype
    intptr_t op
    void* in_place          # MPI_IN_PLACE
    int rank, size          # this process's rank and the number of ranks
    long long* progress     # or NULL: [allreduces completed, 1 while in one], read by the watchdog thread of
                            # fastfit.distributed (which aborts the job when a rank stops making progress)


cdef inline int allreduce_sum(Reduce* r, void* buf, Py_ssize_t count) noexcept nogil:
    """Sum `count` elements at `buf` over the ranks, in place; returns MPI's error code (0: success)."""
    cdef int error
    if r.progress != NULL:
        r.progress[1] = 1
    if r.int_handles:
        error = (<allreduce_int_t>r.fn)(r.in_place, buf, <int>count, <int>r.datatype, <int>r.op, <int>r.comm)
    else:
        error = (<allreduce_ptr_t>r.fn)(r.in_place, buf, <int>count, <void*>r.datatype, <void*>r.op,
                                        <void*>r.comm)
    if r.progress != NULL:
        r.progress[0] += 1
        r.progress[1] = 0
    return error
