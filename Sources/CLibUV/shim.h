// What Swift cannot express about libuv, Linux sockets and Linux file calls, as static inline helpers.
#ifndef LTD_CLIBUV_SHIM_H
#define LTD_CLIBUV_SHIM_H
#include <uv.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/types.h>
#include <unistd.h>
#include <signal.h>
#include <sys/syscall.h>

/// glibc hides `struct ucred` behind _GNU_SOURCE, which Swift does not see; this has the same layout.
typedef struct { pid_t pid; uid_t uid; gid_t gid; } ltd_ucred;

/// Reads the peer's credentials of a connected Unix socket. Returns 0 on success, -errno on failure.
static inline int ltd_peer_credentials(int fd, ltd_ucred *out) {
    socklen_t len = sizeof(*out);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, out, &len) != 0) return -1;
    return 0;
}

/// Starts writing a file range to disk and returns without waiting: sync_file_range(SYNC_FILE_RANGE_WRITE), which
/// glibc also hides behind _GNU_SOURCE. Returns 0, or -1 with errno set.
static inline int ltd_start_writeback(int fd, off_t offset, off_t count) {
    return (int)syscall(SYS_sync_file_range, fd, offset, count, 2u /* SYNC_FILE_RANGE_WRITE */);
}

static inline uv_handle_t *ltd_handle(void *h) { return (uv_handle_t *)h; }
static inline uv_stream_t *ltd_stream(void *h) { return (uv_stream_t *)h; }
#endif
