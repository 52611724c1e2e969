/*
 * unsynced.c — an LD_PRELOAD shim that lets a test discard every write the kernel was never asked to make durable.
 *
 * For each file whose path starts with $HEARTH_PL_PREFIX (the hub's database, its -wal and -journal) opened for
 * writing, every write(2)/pwrite(2)/ftruncate(2) first appends the bytes it is about to overwrite (and the file's
 * size) to an undo log, "<file>.undo". fsync(2)/fdatasync(2) on the file empties its undo log once the real call
 * returns: from then on those writes are durable. After the process is killed, the test (tests/src/power_cut.rs)
 * applies each undo log backwards, which returns every file to exactly its content at its last completed fsync: the
 * state a power cut leaves when the disk cache held everything unsynced. Each record also keeps the bytes written, so
 * the test can then re-apply a random subset of the unsynced writes: a disk that persisted some of them, in any
 * order. Writes through mmap (SQLite's -shm index)
 * are not seen; the test deletes -shm, as a reboot would lose it. Directory entries (file creation, unlink) are
 * taken as durable.
 *
 * $HEARTH_PL_FSYNC_DELAY_US (optional) sleeps before each tracked fsync: a slow disk, which widens the window in
 * which a kill finds unsynced writes. $HEARTH_PL_LYING_DISK (optional, for checking that the test has teeth) makes
 * fsync durable nothing: a power cut then loses everything since the daemon started.
 *
 * Hand-written rather than a crate or FUSE layer: it must sit under the real hearthd binary unmodified, and FUSE
 * needs /dev/fuse and privileges the CI machine does not promise. Built by the test with the system C compiler.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAXFD 65536
#define MAXPATHS 32

struct record {
    int64_t off;      /* where the write lands (for a truncate: the new size) */
    int64_t old_size; /* file size before it */
    int64_t len;      /* bytes of pre-image that follow */
    int64_t post_len; /* bytes written, following the pre-image; -1 for a truncate */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const char *prefix;
static size_t prefix_len;
static long fsync_delay_us;
static int lying_disk;
static int initialised;
/* fd -> index into paths + 1 (0: not tracked) */
static unsigned char fd_path[MAXFD];
static char *paths[MAXPATHS];
static int undo_fds[MAXPATHS];

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_unlink)(const char *);

static void init(void) {
    if (initialised) return;
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_close = dlsym(RTLD_NEXT, "close");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_pread = dlsym(RTLD_NEXT, "pread");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    prefix = getenv("HEARTH_PL_PREFIX");
    prefix_len = prefix ? strlen(prefix) : 0;
    const char *d = getenv("HEARTH_PL_FSYNC_DELAY_US");
    fsync_delay_us = d ? atol(d) : 0;
    lying_disk = getenv("HEARTH_PL_LYING_DISK") != NULL;
    initialised = 1;
}

static int is_tracked_path(const char *path) {
    size_t n;
    if (!prefix || !path || strncmp(path, prefix, prefix_len) != 0) return 0;
    n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, "-shm") == 0) return 0;
    if (n >= 5 && strcmp(path + n - 5, ".undo") == 0) return 0;
    return 1;
}

/* Index of `path` in paths (opening its undo log the first time), or -1. Called with mu held. */
static int path_index(const char *path) {
    int i;
    char undo[4096];
    for (i = 0; i < MAXPATHS; i++)
        if (paths[i] && strcmp(paths[i], path) == 0) return i;
    for (i = 0; i < MAXPATHS; i++) {
        if (!paths[i]) {
            snprintf(undo, sizeof undo, "%s.undo", path);
            undo_fds[i] = real_open(undo, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            if (undo_fds[i] < 0) return -1;
            paths[i] = strdup(path);
            return i;
        }
    }
    return -1;
}

static void track(int fd, const char *path, int flags) {
    if (fd < 0 || fd >= MAXFD || (flags & O_ACCMODE) == O_RDONLY || !is_tracked_path(path)) return;
    pthread_mutex_lock(&mu);
    int i = path_index(path);
    fd_path[fd] = i < 0 ? 0 : (unsigned char)(i + 1);
    pthread_mutex_unlock(&mu);
}

static int tracked(int fd) {
    return fd >= 0 && fd < MAXFD && fd_path[fd] ? fd_path[fd] - 1 : -1;
}

static void write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = real_write(fd, p, n);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

/* Saves what [off, off+len) holds now, and the size, before it is overwritten, then the bytes about to be written
 * (`post`, `post_len`; -1 for a truncate). Called with mu held. */
static void save_preimage(int fd, int i, off_t off, size_t len, const void *post, int64_t post_len) {
    struct stat st;
    struct record r;
    char *old;
    ssize_t got = 0;
    if (fstat(fd, &st) != 0) return;
    r.off = off;
    r.old_size = st.st_size;
    old = len ? malloc(len) : NULL;
    if (len && !old) return;
    if (off < st.st_size) {
        size_t want = (size_t)(st.st_size - off) < len ? (size_t)(st.st_size - off) : len;
        got = real_pread(fd, old, want, off);
        if (got < 0) got = 0;
    }
    r.len = got;
    r.post_len = post_len;
    write_all(undo_fds[i], &r, sizeof r);
    if (got) write_all(undo_fds[i], old, (size_t)got);
    if (post_len > 0) write_all(undo_fds[i], post, (size_t)post_len);
    free(old);
}

#define OPEN_MODE(flags, mode)                                  \
    do {                                                        \
        if ((flags) & (O_CREAT | O_TMPFILE)) {                  \
            va_list ap;                                         \
            va_start(ap, flags);                                \
            mode = va_arg(ap, int);                             \
            va_end(ap);                                         \
        }                                                       \
    } while (0)

int open(const char *path, int flags, ...) {
    int mode = 0, fd;
    init();
    OPEN_MODE(flags, mode);
    fd = real_open(path, flags, mode);
    track(fd, path, flags);
    return fd;
}

int open64(const char *path, int flags, ...) {
    int mode = 0, fd;
    init();
    OPEN_MODE(flags, mode);
    fd = real_open64(path, flags, mode);
    track(fd, path, flags);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...) {
    int mode = 0, fd;
    init();
    OPEN_MODE(flags, mode);
    fd = real_openat(dirfd, path, flags, mode);
    if (path[0] == '/') track(fd, path, flags);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...) {
    int mode = 0, fd;
    init();
    OPEN_MODE(flags, mode);
    fd = real_openat64(dirfd, path, flags, mode);
    if (path[0] == '/') track(fd, path, flags);
    return fd;
}

int close(int fd) {
    init();
    if (fd >= 0 && fd < MAXFD) fd_path[fd] = 0;
    return real_close(fd);
}

ssize_t write(int fd, const void *buf, size_t n) {
    init();
    int i = tracked(fd);
    if (i >= 0) {
        pthread_mutex_lock(&mu);
        off_t off = lseek(fd, 0, SEEK_CUR);
        if (off >= 0) save_preimage(fd, i, off, n, buf, (int64_t)n);
        ssize_t r = real_write(fd, buf, n);
        pthread_mutex_unlock(&mu);
        return r;
    }
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    init();
    int i = tracked(fd);
    if (i >= 0) {
        pthread_mutex_lock(&mu);
        save_preimage(fd, i, off, n, buf, (int64_t)n);
        ssize_t r = real_pwrite(fd, buf, n, off);
        pthread_mutex_unlock(&mu);
        return r;
    }
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    init();
    int i = tracked(fd);
    if (i >= 0) {
        pthread_mutex_lock(&mu);
        save_preimage(fd, i, off, n, buf, (int64_t)n);
        ssize_t r = real_pwrite64(fd, buf, n, off);
        pthread_mutex_unlock(&mu);
        return r;
    }
    return real_pwrite64(fd, buf, n, off);
}

static int truncate_tracked(int fd, off_t len, int (*real)(int, off_t)) {
    int i = tracked(fd);
    struct stat st;
    if (i >= 0 && fstat(fd, &st) == 0) {
        pthread_mutex_lock(&mu);
        if (len < st.st_size) save_preimage(fd, i, len, (size_t)(st.st_size - len), NULL, -1);
        else save_preimage(fd, i, len, 0, NULL, -1);
        int r = real(fd, len);
        pthread_mutex_unlock(&mu);
        return r;
    }
    return real(fd, len);
}

int ftruncate(int fd, off_t len) {
    init();
    return truncate_tracked(fd, len, real_ftruncate);
}

int ftruncate64(int fd, off_t len) {
    init();
    return truncate_tracked(fd, len, real_ftruncate64);
}

static int sync_tracked(int fd, int (*real)(int)) {
    int i = tracked(fd);
    if (i < 0) return real(fd);
    if (fsync_delay_us > 0) usleep((useconds_t)fsync_delay_us);
    pthread_mutex_lock(&mu);
    int r = real(fd);
    /* Durable now: nothing before this point may be discarded. */
    if (r == 0 && !lying_disk) real_ftruncate(undo_fds[i], 0);
    pthread_mutex_unlock(&mu);
    return r;
}

int fsync(int fd) {
    init();
    return sync_tracked(fd, real_fsync);
}

int fdatasync(int fd) {
    init();
    return sync_tracked(fd, real_fdatasync);
}

int unlink(const char *path) {
    init();
    if (is_tracked_path(path)) {
        pthread_mutex_lock(&mu);
        int i = path_index(path);
        /* The file is gone (taken as durable): its undo log no longer applies. */
        if (i >= 0) real_ftruncate(undo_fds[i], 0);
        pthread_mutex_unlock(&mu);
    }
    return real_unlink(path);
}
