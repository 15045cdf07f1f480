#ifndef CZEROMQ_SHIM_H
#define CZEROMQ_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <zmq.h>
#include <errno.h>
#include <pthread.h>
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
/* SIGTERM/SIGINT as a flag plus a write to a descriptor (an eventfd), both async-signal-safe.
   Installed with sigaction, so a signal that arrives before anything polls the flag is kept,
   unlike SIG_IGN plus a dispatch source. Call both functions from one Swift module only:
   each importing module gets its own copy of these statics. */
static volatile sig_atomic_t czmq_stop_flag = 0;
static volatile int czmq_stop_fd = -1;

static void czmq_stop_handler(int signal) {
    (void)signal;
    int saved_errno = errno;
    czmq_stop_flag = 1;
    int fd = czmq_stop_fd;
    if (fd >= 0) {
        unsigned long long one = 1;
        ssize_t ignored = write(fd, &one, sizeof one);
        (void)ignored;
    }
    errno = saved_errno;
}

/* Before closing a descriptor the handler may write to. */
static inline void czmq_forget_stop_fd(int fd) {
    if (czmq_stop_fd == fd) czmq_stop_fd = -1;
}

static inline int czmq_install_stop_handler(int wake_fd) {
    czmq_stop_fd = wake_fd;
    struct sigaction action;
    action.sa_handler = czmq_stop_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &action, 0) != 0) return -1;
    if (sigaction(SIGINT, &action, 0) != 0) return -1;
    /* A mask inherited from the parent (test runners block signals) would keep them pending. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    return pthread_sigmask(SIG_UNBLOCK, &stop_signals, 0);
}

static inline int czmq_stop_requested(void) { return czmq_stop_flag != 0; }
#endif
