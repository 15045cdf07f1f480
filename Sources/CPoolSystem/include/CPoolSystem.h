#ifndef CPOOLSYSTEM_H
#define CPOOLSYSTEM_H

/* Linux calls Swift cannot make itself, and the stop-signal state. The definitions live in
   CPoolSystem.c, so every Swift module that imports this header shares one copy of that state.
   Each function returns -1 and sets errno on failure unless it says otherwise. */

/* eventfd (Wakeup): Swift's Glibc module leaves <sys/eventfd.h> out. */
#include <sys/eventfd.h>

/* prctl(PR_SET_PDEATHSIG): the kernel sends `signal` to this process when its parent dies.
   prctl is variadic, which Swift cannot call. */
int cpool_set_parent_death_signal(int signal);

/* memfd_create(name, 0): an anonymous memory file. It needs _GNU_SOURCE, which Swift's Glibc
   module does not set. */
int cpool_memfd_create(const char *name);

/* CLOCK_MONOTONIC in nanoseconds, the clock a supervisor and its children share. */
unsigned long long cpool_monotonic_nanoseconds(void);

/* From now on SIGTERM and SIGINT set a flag and write to `wake_fd` (an eventfd; -1 for none)
   instead of ending the process; both are async-signal-safe. Installed with sigaction, so a
   signal that arrives before anything polls the flag is kept, unlike SIG_IGN plus a dispatch
   source. Also unblocks both signals on the calling thread. */
int cpool_install_stop_handler(int wake_fd);

/* Call before closing `wake_fd`, so the handler never writes to a reused descriptor. */
void cpool_forget_stop_fd(int wake_fd);

/* 1 if SIGTERM or SIGINT arrived since cpool_install_stop_handler, else 0. */
int cpool_stop_requested(void);

/* pidfd_open(pid, 0): a descriptor that becomes readable when the process ends (Linux 5.3+;
   -1 with ENOSYS before). Called through syscall(), which is variadic. */
int cpool_pidfd_open(int pid);

/* open(path, O_WRONLY | O_DIRECT | O_CLOEXEC): writes that bypass the page cache (the
   journal's whole blocks). O_DIRECT needs _GNU_SOURCE. -1 with EINVAL where the file system
   refuses it. */
int cpool_open_direct(const char *path);

/* pipe2(fds, O_CLOEXEC), which Swift's Glibc module leaves out (it needs _GNU_SOURCE). */
int cpool_pipe_cloexec(int fds[2]);

/* posix_spawn of `path` for the exec task: stdin, stdout and stderr from the given descriptors,
   every other descriptor closed, in `cwd` (NULL: unchanged), in a new process group led by the
   child, with no blocked signals and every signal at its default. `envp` NULL: this process's
   environment. Returns 0, or the error number (the exec's own failure included: glibc reports
   it). Needs _GNU_SOURCE for addchdir_np and addclosefrom_np (glibc 2.34+). */
int cpool_spawn_command(int *pid, const char *path, char *const argv[], char *const envp[], const char *cwd,
                        int stdin_fd, int stdout_fd, int stderr_fd);

#endif
