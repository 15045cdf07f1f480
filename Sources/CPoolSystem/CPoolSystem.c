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

/* For the exec task: see CPoolSystem.h. */
#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>

extern char **environ;

int cpool_pidfd_open(int pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

int cpool_spawn_command(int *pid, const char *path, char *const argv[], char *const envp[], const char *cwd,
                        int stdin_fd, int stdout_fd, int stderr_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int result = posix_spawn_file_actions_init(&actions);
    if (result != 0) return result;
    result = posix_spawnattr_init(&attributes);
    if (result != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return result;
    }
    /* dup2 clears close-on-exec on the targets; everything above 2 (the worker's sockets, the
       supervisor's board at 3) is closed, whatever its flags. */
    if (result == 0) result = posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
    if (result == 0) result = posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
    if (result == 0) result = posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
    if (result == 0) result = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    if (result == 0 && cwd != 0) result = posix_spawn_file_actions_addchdir_np(&actions, cwd);
    /* Its own process group (so a deadline or a stop reaches everything it started), no blocked
       signals, and every signal at its default (the worker ignores SIGPIPE; a command must not). */
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    if (result == 0) result = posix_spawnattr_setpgroup(&attributes, 0);
    if (result == 0) result = posix_spawnattr_setsigmask(&attributes, &empty);
    if (result == 0) result = posix_spawnattr_setsigdefault(&attributes, &all);
    if (result == 0)
        result = posix_spawnattr_setflags(&attributes,
                                          POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (result == 0) result = posix_spawn(pid, path, &actions, &attributes, argv, envp != 0 ? envp : environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return result;
}

int cpool_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

/* For the journal: see CPoolSystem.h. */
int cpool_open_direct(const char *path) { return open(path, O_WRONLY | O_DIRECT | O_CLOEXEC); }
