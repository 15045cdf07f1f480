#!/bin/sh
# A stand-in for ssh, to test pool-ssh.sh on one machine: `pool-ssh.sh --ssh deploy/ssh/test-local-ssh.sh`.
#
# Takes ssh's options and ignores them and the host, then does what ssh does with the command:
# joins its words with spaces and runs the result with a shell (here `sh -c`, locally). Standard
# input and output pass through, as with ssh.
#
# For tests:
#   a host whose name starts with `unreachable` fails like an ssh that cannot connect (status 255);
#   FAKE_SSH_HOME, if set, is the "remote" $HOME (so ~/.zmq-worker-pool lands in a test folder).
set -eu

while [ $# -gt 0 ]; do
    case $1 in
        -[bcDEeFIiJLlmOoPpRQSWw]) [ $# -ge 2 ] || { echo "test-local-ssh: $1 needs a value" >&2; exit 255; }; shift 2 ;;
        -[bcDEeFIiJLlmOoPpRQSWw]?*) shift ;;
        -[46AaCfGgKkMNnqsTtVvXxYy]*) shift ;;
        --) shift; break ;;
        -*) echo "test-local-ssh: unknown option $1" >&2; exit 255 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || { echo "usage: test-local-ssh.sh [ssh options] [user@]host command..." >&2; exit 255; }
host=$1
shift
case ${host#*@} in
    unreachable*) echo "ssh: connect to host ${host#*@} port 22: Connection refused" >&2; exit 255 ;;
esac
[ $# -ge 1 ] || { echo "test-local-ssh: no command (an interactive login is not supported)" >&2; exit 255; }
if [ -n "${FAKE_SSH_HOME:-}" ]; then
    HOME=$FAKE_SSH_HOME
    export HOME
fi
exec sh -c "$*"
