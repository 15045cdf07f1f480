#ifndef CZEROMQ_SHIM_H
#define CZEROMQ_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <zmq.h>
#include <errno.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* errno through a function: Swift cannot read the thread-local macro directly. */
static inline int czmq_errno(void) { return errno; }

/* prctl is variadic, which Swift cannot call. */
static inline int czmq_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0);
}

/* memfd_create needs _GNU_SOURCE, which Swift's Glibc module does not set. */
static inline int czmq_memfd_create(const char *name) { return memfd_create(name, 0); }

/* CLOCK_MONOTONIC, the clock a supervisor and its children share. */
static inline unsigned long long czmq_monotonic_nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec;
}
#endif
