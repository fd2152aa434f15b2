/* LD_PRELOAD shim of the power-cut test (test_storage_powercut.c): records
 * what a power cut would leave on disk of the directory $MB_SHADOW_SRC.
 *
 * Model (docs/storage.md, "Power cut"): a file's content is durable as of
 * its last fsync/fdatasync; a name in the directory is durable as of the
 * last fsync of the directory. sync_file_range is NOT a durability point
 * (it neither flushes metadata nor the disk cache) and passes through;
 * syncfs/sync make everything durable. The shim keeps, in $MB_SHADOW_DIR:
 *   ino-<inode>-<generation>  the content of the file as of its last sync;
 *   names                     one "name inode-generation" line per durable
 *                             directory entry.
 * The inode generation tells a reused inode number apart (RocksDB deletes
 * and creates files all the time): a durable name of a deleted file must
 * not show the content of a later file that got its inode.
 * Each is replaced atomically (written aside, then renamed), so a SIGKILL
 * in the middle of a sync leaves the previous durable state. The test
 * builds the "disk after the power cut" from them. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static pthread_mutex_t shadow_mu = PTHREAD_MUTEX_INITIALIZER;

/* The real functions, resolved once before main. */
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_sync_file_range)(int, off_t, off_t, unsigned int);
static int (*real_syncfs)(int);
static void (*real_sync)(void);

__attribute__((constructor)) static void shadow_init(void)
{
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    real_sync_file_range =
        (int (*)(int, off_t, off_t, unsigned int))dlsym(RTLD_NEXT, "sync_file_range");
    real_syncfs = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
    real_sync = (void (*)(void))dlsym(RTLD_NEXT, "sync");
}

/* Inode generation of fd's file (0 where the file system has none). */
static unsigned long generation(int fd)
{
    int gen = 0;
    if (ioctl(fd, FS_IOC_GETVERSION, &gen) != 0)
        return 0;
    return (unsigned)gen;
}

/* Copy the whole content of `fd`'s file (reopened read-only through
 * /proc, since the fd itself may be write-only) to its shadow file,
 * atomically. */
static void copy_content(int fd, const char *shadow, unsigned long ino)
{
    char proc[64], tmp[PATH_MAX], dst[PATH_MAX];
    unsigned long gen = generation(fd);
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    snprintf(tmp, sizeof(tmp), "%s/ino-%lu-%lu.tmp", shadow, ino, gen);
    snprintf(dst, sizeof(dst), "%s/ino-%lu-%lu", shadow, ino, gen);
    int in = open(proc, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return;
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return;
    }
    char buf[1 << 16];
    ssize_t n;
    int ok = 1;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            ok = 0;
    if (n < 0)
        ok = 0;
    close(in);
    close(out);
    if (ok)
        rename(tmp, dst);
    else
        unlink(tmp);
}

/* Record the current entries of directory `dir` as the durable names. */
static void record_names(const char *dir, const char *shadow)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/names.tmp", shadow);
    snprintf(dst, sizeof(dst), "%s/names", shadow);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    FILE *f = fopen(tmp, "we");
    if (f == NULL) {
        closedir(d);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_type != DT_REG)
            continue;
        unsigned long gen = 0;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            gen = generation(fd);
            close(fd);
        }
        fprintf(f, "%s %lu-%lu\n", de->d_name, (unsigned long)de->d_ino, gen);
    }
    closedir(d);
    if (fclose(f) == 0)
        rename(tmp, dst);
}

/* After a successful sync of `fd`: record what became durable. */
static void shadow_sync(int fd)
{
    const char *src = getenv("MB_SHADOW_SRC"), *shadow = getenv("MB_SHADOW_DIR");
    if (src == NULL || shadow == NULL)
        return;
    char proc[64], path[PATH_MAX];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, path, sizeof(path) - 1);
    if (n <= 0)
        return;
    path[n] = '\0';
    struct stat st;
    if (fstat(fd, &st) != 0)
        return;
    size_t sl = strlen(src);
    pthread_mutex_lock(&shadow_mu);
    if (S_ISDIR(st.st_mode) && strcmp(path, src) == 0)
        record_names(src, shadow);
    else if (S_ISREG(st.st_mode) && strncmp(path, src, sl) == 0 && path[sl] == '/' &&
             strchr(path + sl + 1, '/') == NULL)
        copy_content(fd, shadow, (unsigned long)st.st_ino);
    pthread_mutex_unlock(&shadow_mu);
}

/* Everything in $MB_SHADOW_SRC becomes durable (sync, syncfs). */
static void shadow_all(void)
{
    const char *src = getenv("MB_SHADOW_SRC");
    if (src == NULL)
        return;
    DIR *d = opendir(src);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_type != DT_REG)
            continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            shadow_sync(fd);
            close(fd);
        }
    }
    int dfd = dirfd(d);
    shadow_sync(dfd);
    closedir(d);
}

EXPORT int fsync(int fd)
{
    int rc = real_fsync(fd);
    if (rc == 0) {
        int saved = errno;
        shadow_sync(fd);
        errno = saved;
    }
    return rc;
}

EXPORT int fdatasync(int fd)
{
    int rc = real_fdatasync(fd);
    if (rc == 0) {
        int saved = errno;
        shadow_sync(fd);
        errno = saved;
    }
    return rc;
}

/* Not a durability point: passed through unrecorded. */
EXPORT int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags)
{
    return real_sync_file_range(fd, offset, nbytes, flags);
}

EXPORT int syncfs(int fd)
{
    int rc = real_syncfs(fd);
    if (rc == 0)
        shadow_all();
    return rc;
}

EXPORT void sync(void)
{
    real_sync();
    shadow_all();
}
