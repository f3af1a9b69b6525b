/* The zero-config stores of services (src/core/service.c): what names a
 * service, its store's name and service file, the list of the stores under
 * a root, and the removal of idle ones that no process has open. */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pyloot/error.h"
#include "pyloot/service.h"
#include "pyloot/store.h"

/* The key of a child that chdir()s to dir first (same command line). */
static uint64_t key_in(const char *dir)
{
    int fds[2];
    uint64_t key = 0;
    pid_t pid;

    if (pipe(fds) != 0)
        exit(2);
    pid = fork();
    if (pid == 0) {
        pl_service svc;
        close(fds[0]);
        if (chdir(dir) != 0 || pl_service_describe((uint32_t)getpid(), &svc) != 0)
            _exit(1);
        if (write(fds[1], &svc.key, sizeof svc.key) != (ssize_t)sizeof svc.key)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], &key, sizeof key) != (ssize_t)sizeof key)
        key = 0;
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return key;
}

static void test_describe_and_name(void)
{
    pl_service svc, again;
    char cwd[4096], name[256];
    char *other = make_dir();

    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_OK(pl_service_describe((uint32_t)getpid(), &svc));
    CHECK_EQ_STR(svc.cwd, cwd);
    CHECK(strstr(svc.command, "test_service") != NULL);
    CHECK(svc.key != 0);
    /* The same process, the same key; another working directory, another. */
    CHECK_OK(pl_service_describe((uint32_t)getpid(), &again));
    CHECK(again.key == svc.key);
    CHECK(key_in(cwd) == svc.key);
    CHECK(key_in(other) != 0 && key_in(other) != svc.key);
    pl_service_store_name(&svc, name, sizeof name);
    CHECK(strstr(name, "test_service-") != NULL);
    CHECK(strlen(name) < 72 && strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
                                  strlen(name));
    /* Odd names are reduced to safe ones. */
    snprintf(svc.cwd, sizeof svc.cwd, "/srv/.my app/\n");
    snprintf(svc.command, sizeof svc.command, "/usr/bin/python3.11 -m gunicorn -c conf.py app:app");
    svc.key = 0x1234;
    pl_service_store_name(&svc, name, sizeof name);
    CHECK_EQ_STR(name, "_-gunicorn-0000000000001234");
    snprintf(svc.cwd, sizeof svc.cwd, "/srv/shop");
    snprintf(svc.command, sizeof svc.command, "python3 /venv/bin/gunicorn app:app");
    pl_service_store_name(&svc, name, sizeof name);
    CHECK_EQ_STR(name, "shop-gunicorn-0000000000001234");
    CHECK_EQ_INT(pl_service_describe(0x7ffffff0u, &svc), ENOENT); /* no such process */
    remove_dir(other);
}

static void test_note_and_read(void)
{
    char *dir = make_dir(), path[256];
    pl_service svc, got;
    struct stat a, b;
    uint64_t age = 1;

    CHECK_EQ_INT(pl_service_read(dir, &got, &age), PL_ENOTFOUND);
    memset(&svc, 0, sizeof svc);
    snprintf(svc.cwd, sizeof svc.cwd, "/srv/a\\b\nc");
    snprintf(svc.command, sizeof svc.command, "gunicorn -c conf.py app:app");
    CHECK_OK(pl_service_note(dir, &svc, 3600));
    CHECK_OK(pl_service_read(dir, &got, &age));
    CHECK_EQ_STR(got.cwd, svc.cwd);
    CHECK_EQ_STR(got.command, svc.command);
    CHECK_EQ_INT(age, 3600);
    /* The same note again: the file is left as it is. */
    snprintf(path, sizeof path, "%s/service", dir);
    CHECK_OK(stat(path, &a));
    CHECK_OK(pl_service_note(dir, &svc, 3600));
    CHECK_OK(stat(path, &b));
    CHECK(a.st_ino == b.st_ino);
    CHECK_OK(pl_service_note(dir, &svc, 60));
    CHECK_OK(pl_service_read(dir, &got, &age));
    CHECK_EQ_INT(age, 60);
    /* Not a service file. */
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("hello\n", f);
        fclose(f);
    }
    CHECK_EQ_INT(pl_service_read(dir, &got, &age), PL_ECORRUPT);
    remove_dir(dir);
}

/* Makes a closed store root/name whose data.mdb was last written age_s ago. */
static void old_store(const char *root, const char *name, int64_t age_s, uint64_t max_age_s)
{
    char path[512], data[600];
    pl_store_options opt;
    pl_store *s = NULL;
    struct timeval tv[2];

    snprintf(path, sizeof path, "%s/%s", root, name);
    memset(&opt, 0, sizeof opt);
    opt.path = path;
    CHECK_OK(pl_store_open(&s, &opt));
    pl_store_close(s);
    if (max_age_s) {
        pl_service svc;
        memset(&svc, 0, sizeof svc);
        snprintf(svc.cwd, sizeof svc.cwd, "/srv/%s", name);
        snprintf(svc.command, sizeof svc.command, "gunicorn app:app");
        CHECK_OK(pl_service_note(path, &svc, max_age_s));
    }
    snprintf(data, sizeof data, "%s/data.mdb", path);
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= age_s;
    tv[1] = tv[0];
    CHECK_OK(utimes(data, tv));
}

static int exists(const char *root, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", root, name);
    return lstat(path, &st) == 0;
}

static void test_list_and_sweep(void)
{
    char *root = make_dir(), path[512], open_path[512];
    pl_store_dir *list = NULL;
    pl_store_options opt;
    pl_store *busy = NULL;
    size_t n = 0, removed = 9;
    int ready[2], done[2];
    pid_t holder;
    int64_t week = 7 * 86400;

    old_store(root, "idle", week + 60, 0);           /* older than the default retention */
    old_store(root, "fresh", week - 3600, 0);        /* younger */
    old_store(root, "short", 7200, 3600);            /* its own retention: one hour */
    old_store(root, "kept", week + 60, 0);           /* the caller's own */
    old_store(root, "busy", week + 60, 0);           /* open below */
    old_store(root, "old.corrupt-20260101T000000Z", week + 60, 0); /* moved aside: never touched */
    snprintf(path, sizeof path, "%s/not-a-store", root);
    CHECK_OK(mkdir(path, 0700));
    snprintf(path, sizeof path, "%s/link", root);
    snprintf(open_path, sizeof open_path, "%s/idle", root);
    CHECK_OK(symlink(open_path, path));
    /* Another process has "busy" open (a descriptor of lock.mdb closed in
     * this one would drop this process's own lock: service.h). */
    snprintf(open_path, sizeof open_path, "%s/busy", root);
    if (pipe(ready) != 0 || pipe(done) != 0)
        exit(2);
    holder = fork();
    if (holder == 0) {
        char c = 0;
        close(done[1]);
        memset(&opt, 0, sizeof opt);
        opt.path = open_path;
        opt.read_only = 1;
        if (pl_store_open(&busy, &opt) != 0)
            _exit(1);
        if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(ready[1]);
    close(done[0]);
    {
        char c;
        CHECK(read(ready[0], &c, 1) == 1);
        close(ready[0]);
    }
    {
        struct timeval tv[2];
        char data[600];
        gettimeofday(&tv[0], NULL);
        tv[0].tv_sec -= week + 60;
        tv[1] = tv[0];
        snprintf(data, sizeof data, "%s/data.mdb", open_path);
        CHECK_OK(utimes(data, tv));
    }

    CHECK_OK(pl_stores_list(root, NULL, &list, &n));
    CHECK_EQ_INT(n, 5);
    if (n == 5) {
        CHECK_EQ_STR(list[0].name, "busy");
        CHECK_EQ_INT(list[0].in_use, 1);
        CHECK_EQ_STR(list[1].name, "fresh");
        CHECK_EQ_INT(list[1].in_use, 0);
        CHECK_EQ_INT(list[1].has_service, 0);
        CHECK_EQ_STR(list[4].name, "short");
        CHECK_EQ_INT(list[4].has_service, 1);
        CHECK_EQ_STR(list[4].svc.cwd, "/srv/short");
        CHECK_EQ_INT(list[4].max_age_s, 3600);
        CHECK(list[4].bytes > 0 && list[4].last_write_ms > 0);
    }
    free(list);

    snprintf(path, sizeof path, "%s/kept", root);
    CHECK_OK(pl_stores_sweep(root, path, pl_now_ms(), &removed));
    CHECK_EQ_INT(removed, 2);
    CHECK(!exists(root, "idle") && !exists(root, "short"));
    CHECK(exists(root, "fresh") && exists(root, "kept") && exists(root, "busy") && exists(root, "not-a-store") &&
          exists(root, "link") && exists(root, "old.corrupt-20260101T000000Z"));
    /* Nothing left behind under a hidden name. */
    CHECK_OK(pl_stores_list(root, NULL, &list, &n));
    CHECK_EQ_INT(n, 3);
    free(list);
    close(done[1]);
    waitpid(holder, NULL, 0);
    /* Closed now: the next sweep removes it. */
    CHECK_OK(pl_stores_sweep(root, NULL, pl_now_ms(), &removed));
    CHECK_EQ_INT(removed, 2);
    CHECK(!exists(root, "busy") && !exists(root, "kept") && exists(root, "fresh"));
    CHECK_EQ_INT(pl_stores_list("/nonexistent-pyloot-root", NULL, &list, &n), ENOENT);
    remove_dir(root);
}

int main(void)
{
    RUN(test_describe_and_name);
    RUN(test_note_and_read);
    RUN(test_list_and_sweep);
    return TEST_EXIT();
}
