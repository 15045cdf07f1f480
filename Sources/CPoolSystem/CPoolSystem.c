#define _GNU_SOURCE
#include "CPoolSystem.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

int cpool_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0);
}

int cpool_memfd_create(const char *name) { return memfd_create(name, 0); }

unsigned long long cpool_monotonic_nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec;
}

/* The one copy of the stop-signal state (a static in a header was one copy per importing module). */
static volatile sig_atomic_t stop_flag = 0;
static volatile int stop_fd = -1;

static void stop_handler(int signal) {
    (void)signal;
    int saved_errno = errno;
    stop_flag = 1;
    int fd = stop_fd;
    if (fd >= 0) {
        unsigned long long one = 1;
        ssize_t ignored = write(fd, &one, sizeof one);
        (void)ignored;
    }
    errno = saved_errno;
}

void cpool_forget_stop_fd(int wake_fd) {
    if (stop_fd == wake_fd) stop_fd = -1;
}

int cpool_install_stop_handler(int wake_fd) {
    stop_fd = wake_fd;
    struct sigaction action;
    action.sa_handler = stop_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &action, 0) != 0) return -1;
    if (sigaction(SIGINT, &action, 0) != 0) return -1;
    /* A mask inherited from the parent (test runners block signals) would keep them pending. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    int result = pthread_sigmask(SIG_UNBLOCK, &stop_signals, 0);
    if (result != 0) {
        /* pthread_sigmask returns its error rather than setting errno. */
        errno = result;
        return -1;
    }
    return 0;
}

int cpool_stop_requested(void) { return stop_flag != 0; }
