#ifndef CZEROMQ_SHIM_H
#define CZEROMQ_SHIM_H
#include <zmq.h>
#include <errno.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <signal.h>
#include <unistd.h>

/* errno through a function: Swift cannot read the thread-local macro directly. */
static inline int czmq_errno(void) { return errno; }

/* prctl is variadic, which Swift cannot call. */
static inline int czmq_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0);
}
#endif
