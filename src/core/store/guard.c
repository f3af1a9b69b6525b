/* Damage met while the store is in use (docs/store.md, "Damage at run time").
 *
 * LMDB trusts its file: it reads pages through a read-only map of data.mdb,
 * so a file shrunk under it is a SIGBUS, garbage in a page is a wild offset
 * (SIGBUS, SIGSEGV), a failed assertion an abort(). The check at open
 * (verify.c) covers a store this server did not create; this file covers one
 * damaged while it runs, with three defences:
 *
 * 1. Cheap checks before each entry point, without touching the map: data.mdb
 *    never shrank (LMDB never shrinks it), both meta pages read with pread()
 *    decode (magic, version, page size, roots inside the file), and the path
 *    still names the file this handle opened (another process may have moved a
 *    damaged store aside). Four system calls, a few microseconds.
 * 2. A guard around each entry point for everything else: a SIGBUS/SIGSEGV
 *    handler, installed once per process, jumps back to the entry point when
 *    the fault is inside a guarded call of this thread AND either its address
 *    is in that store's map or the faulting instruction is LMDB's own code
 *    (garbage flags or offsets read from the file make LMDB follow pointers
 *    it never set, e.g. a NULL sub-cursor for a node marked as holding
 *    duplicates: a fault far outside the map). Any other fault goes to the
 *    handler installed before (faulthandler, a sanitizer) or to the default
 *    action, exactly as if this one were not there.
 * 3. LMDB's assertions call guard_on_assert (mdb_env_set_assert), which jumps
 *    through the same guard instead of letting LMDB abort().
 *
 * Either way the handle is given up for good (s->damaged): every later call
 * returns PL_EDAMAGED at once, and the env is abandoned on purpose, never
 * closed nor touched again, because other threads may still be inside LMDB
 * calls on it (closing would unmap pages under them). What the faulting call
 * held is released: its read transactions are aborted (inside a guard of
 * their own), so that their reader slots pin nothing; its write transaction
 * is NOT aborted (mdb_txn_abort frees the cursors LMDB tracks, and mdb_put,
 * mdb_del and page splits track cursors on their own stack, which the jump
 * left behind), but LMDB's writer lock, a robust process-shared mutex this
 * thread owns, is unlocked directly in LMDB's map of lock.mdb, so that other
 * processes never wait for it.
 * What to do next (move the store aside, open a new one) is the caller's:
 * pl_store_replace in recover.c. The public entry points that run inside the
 * guard are entry.c's. */
#include "store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <ucontext.h>
#include <unistd.h>

#include "pyloot/error.h"
#include "pyloot/verify.h"

/* ------------------------------------------------------------ meta pages */

/* LMDB 0.9's data format (MDB_DATA_VERSION 1), as mdb.c lays it out: a page
 * header of 16 bytes (page number, pad, flags, lower, upper), then on pages
 * 0 and 1 the meta record below. Only read here, from pread() copies. */
struct lmdb_db {
    uint32_t pad;  /* the page size, in the free database's record */
    uint16_t flags;
    uint16_t depth;
    size_t branch_pages, leaf_pages, overflow_pages, entries;
    size_t root;
};
struct lmdb_meta {
    uint32_t magic;
    uint32_t version;
    void *address;
    size_t mapsize;
    struct lmdb_db dbs[2];
    size_t last_pg;
    size_t txnid;
};
#define LMDB_PAGE_HEADER 16u
#define LMDB_P_META 0x08u
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define LMDB_P_INVALID (~(size_t)0)
#define META_BYTES (LMDB_PAGE_HEADER + sizeof(struct lmdb_meta))

/* Checks one meta page (a pread() copy of its first META_BYTES) against
 * the page size and the file's size: NULL when sound, else what is wrong. */
static const char *meta_problem(const uint8_t *page, unsigned psize, uint64_t size)
{
    struct lmdb_meta m;
    uint16_t flags;

    memcpy(&flags, page + 10, sizeof flags);
    memcpy(&m, page + LMDB_PAGE_HEADER, sizeof m);
    if (!(flags & LMDB_P_META) || m.magic != LMDB_MAGIC)
        return "is not a meta page";
    if (m.version != LMDB_DATA_VERSION)
        return "has another LMDB data version";
    if (m.dbs[0].pad != psize)
        return "has another page size";
    /* LMDB never lets the last page pass the map size it writes along. */
    if (m.last_pg < 1 || m.last_pg >= m.mapsize / psize)
        return "has an impossible last page";
    for (int i = 0; i < 2; i++) {
        size_t root = m.dbs[i].root;

        if (root == LMDB_P_INVALID)
            continue;
        /* A root page is always written (only pages freed unwritten may lie
         * past the end of the file), so it must be inside the file. */
        if (root < 2 || root > m.last_pg || (uint64_t)(root + 1) * psize > size)
            return "points past the end of the file";
    }
    return NULL;
}

/* LMDB 0.9's lock file on Linux (MDB_txninfo, POSIX mutexes): a first
 * cache line with the magic, the format, the reader mutex, the last txn id
 * and the reader count; the writer mutex starts the next cache line. */
struct lmdb_txbody {
    uint32_t magic;
    uint32_t format;
    pthread_mutex_t rmutex;
    volatile size_t txnid;
    volatile unsigned numreaders;
};
#define LMDB_CACHELINE 64u
#define LMDB_WMUTEX_OFF ((sizeof(struct lmdb_txbody) + LMDB_CACHELINE - 1) & ~(size_t)(LMDB_CACHELINE - 1))

/* Reads meta page i; 0, errno, or PL_EDAMAGED for a short read. */
static int meta_read(int fd, unsigned i, unsigned psize, uint8_t *page)
{
    ssize_t n = pread(fd, page, META_BYTES, (off_t)i * psize);

    return n == (ssize_t)META_BYTES ? 0 : n < 0 ? errno : PL_EDAMAGED;
}

/* The cheap checks (see the top of the file); marks s damaged when they fail. */
static int store_check(pl_store *s)
{
    uint8_t page[2][META_BYTES];
    const char *bad = NULL;
    struct stat st;
    uint64_t size, seen;
    unsigned bad_meta = 0;
    int rc = 0;

    if (fstat(s->fd, &st) != 0)
        return errno;
    size = (uint64_t)st.st_size;
    seen = atomic_load_explicit(&s->seen_size, memory_order_relaxed);
    if (size < seen) {
        guard_mark(s, "data.mdb shrank from %" PRIu64 " to %" PRIu64 " bytes while in use", seen, size);
        return PL_EDAMAGED;
    }
    while (size > seen &&
           !atomic_compare_exchange_weak_explicit(&s->seen_size, &seen, size, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
    /* A meta page is rewritten in place by every other commit: a read that
     * races that write may see half of it, so a bad one is read again
     * before it counts. */
    for (int attempt = 0; attempt < 3; attempt++) {
        bad = NULL;
        for (unsigned i = 0; i < 2 && !bad; i++) {
            rc = meta_read(s->fd, i, s->psize, page[i]);
            if (rc == PL_EDAMAGED)
                bad = "is missing (the file is too short)";
            else if (rc)
                return rc;
            else
                bad = meta_problem(page[i], s->psize, size);
            bad_meta = i;
        }
        if (!bad)
            break;
        usleep(1000);
    }
    if (bad) {
        guard_mark(s, "meta page %u of data.mdb %s", bad_meta, bad);
        return PL_EDAMAGED;
    }
    if (stat(s->data_path, &st) != 0 ? errno == ENOENT || errno == ENOTDIR
                                     : st.st_dev != s->dev || st.st_ino != s->ino) {
        guard_mark(s, "the store was moved or replaced while in use");
        return PL_EDAMAGED;
    }
    return 0;
}

/* -------------------------------------------------------- giving it up */

/* See store_int.h. The first thread to mark writes the reason; readers
 * see it once `damaged` is 2. */
void guard_mark(pl_store *s, const char *fmt, ...)
{
    int expected = 0;
    va_list ap;

    if (!atomic_compare_exchange_strong(&s->damaged, &expected, 1))
        return;
    va_start(ap, fmt);
    vsnprintf(s->damage, sizeof s->damage, fmt, ap);
    va_end(ap);
    atomic_store(&s->damaged, 2);
}

/* See store.h. */
int pl_store_damaged(const pl_store *s, char *why, size_t len)
{
    int d = s ? atomic_load(&((pl_store *)s)->damaged) : 0;

    if (why && len)
        snprintf(why, len, "%s", d == 2 ? s->damage : "");
    return d != 0;
}

/* Codes that mean the file is bad rather than the caller (a missing
 * directory, a full map, no memory): LMDB's, MDB_INCOMPATIBLE included (a
 * database record that no longer names a database of ours), and a record
 * of ours that does not decode (bytes pyloot never wrote). A read-only
 * handle (`pyloot report`, `pyloot --db`) is not given up for a record that
 * does not decode: its pages are sound, nothing is written through it, and
 * its reader goes on past the record and says the store is damaged. */
static int is_damage(const pl_store *s, int rc)
{
    if (rc == PL_ECORRUPT)
        return !s->read_only;
    return rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID || rc == MDB_CURSOR_FULL ||
           rc == MDB_VERSION_MISMATCH || rc == MDB_INCOMPATIBLE || rc == PL_EDAMAGED;
}

/* ------------------------------------------------------------ the guard */

/* The innermost guarded call of this thread. Initial-exec TLS: the handler
 * reads it, and a dynamic TLS access from a signal handler may call malloc. */
static __thread struct guard *guard_top __attribute__((tls_model("initial-exec")));

static struct sigaction prev_bus, prev_segv;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
/* LMDB's code: the executable segments of the shared object liblmdb, found
 * once by install(); both 0 when LMDB is linked into another object (its
 * code is then not told apart, and only faults in a map are caught). */
static uintptr_t lmdb_code_lo, lmdb_code_hi;

static int in_map(const pl_store *s, const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    uintptr_t lo = atomic_load_explicit(&((pl_store *)s)->map_lo, memory_order_relaxed);
    uintptr_t hi = atomic_load_explicit(&((pl_store *)s)->map_hi, memory_order_relaxed);

    return lo && a >= lo && a < hi;
}

/* What the process did with this signal before us: call that handler, or
 * restore the default action (a fault then runs its instruction again and
 * dies of it; a signal sent with kill() is sent again). */
static void chain(int sig, siginfo_t *si, void *ctx)
{
    const struct sigaction *prev = sig == SIGBUS ? &prev_bus : &prev_segv;
    struct sigaction dfl;

    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, si, ctx);
        return;
    }
    if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    if (prev->sa_handler == SIG_IGN && si->si_code <= 0)
        return; /* a sent signal, ignored as it was before us */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (si->si_code <= 0)
        raise(sig); /* pending until this handler returns */
}

/* The address of the faulting instruction, from the handler's context (0
 * where this file does not know the machine's registers). */
static uintptr_t fault_pc(const void *ctx)
{
#if defined(__x86_64__)
    return (uintptr_t)((const ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP];
#elif defined(__i386__)
    return (uintptr_t)((const ucontext_t *)ctx)->uc_mcontext.gregs[REG_EIP];
#elif defined(__aarch64__)
    return (uintptr_t)((const ucontext_t *)ctx)->uc_mcontext.pc;
#else
    (void)ctx;
    return 0;
#endif
}

/* Jumps back to guarded call g, which met fault sig at addr. */
static void jump_back(struct guard *g, int sig, void *addr)
{
    sigset_t set;

    g->caught = sig;
    g->addr = addr;
    guard_top = g; /* frames above it are left behind by the jump */
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    siglongjmp(g->jb, 1);
}

static void on_fault(int sig, siginfo_t *si, void *ctx)
{
    int saved = errno;

    if (si->si_code > 0) { /* a fault raised by the kernel, with its address */
        uintptr_t pc = fault_pc(ctx);

        for (struct guard *g = guard_top; g; g = g->prev)
            if (in_map(g->s, si->si_addr))
                jump_back(g, sig, si->si_addr);
        /* Outside every map, in LMDB's code: LMDB is only ever called from
         * the innermost guarded call, with arguments pyloot made, so what
         * it followed came from that store's file. */
        if (guard_top && pc && pc >= lmdb_code_lo && pc < lmdb_code_hi)
            jump_back(guard_top, sig, si->si_addr);
    } else if (guard_top && si->si_code == SI_TKILL && si->si_pid == getpid()) {
        /* A handler installed after this one (faulthandler.enable() called
         * later) met the fault first, restored this handler and raised the
         * signal again from inside its own handler. Returning lets the
         * faulting instruction run again; the fault then arrives here with
         * its address and is judged like any other. */
        errno = saved;
        return;
    }
    chain(sig, si, ctx);
    errno = saved;
}

/* dl_iterate_phdr callback: the range of the executable segments of the
 * shared object liblmdb into arg (two uintptr_t), then stops. */
static int find_lmdb_code(struct dl_phdr_info *info, size_t size, void *arg)
{
    uintptr_t *range = arg;
    const char *name = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;

    (void)size;
    name = name ? name + 1 : info->dlpi_name;
    if (!name || strncmp(name, "liblmdb.so", 10) != 0)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = (uintptr_t)info->dlpi_addr + (uintptr_t)ph->p_vaddr;

        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        if (!range[0] || lo < range[0])
            range[0] = lo;
        if (lo + ph->p_memsz > range[1])
            range[1] = lo + ph->p_memsz;
    }
    return 1;
}

static void install(void)
{
    struct sigaction sa;
    uintptr_t range[2] = {0, 0};

    dl_iterate_phdr(find_lmdb_code, range);
    lmdb_code_lo = range[0];
    lmdb_code_hi = range[1];
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &prev_bus);
    sigaction(SIGSEGV, &sa, &prev_segv);
}

/* See store_int.h. */
void guard_on_assert(MDB_env *env, const char *msg)
{
    for (struct guard *g = guard_top; g; g = g->prev) {
        if (g->s->env == env) {
            g->caught = -1;
            snprintf(g->what, sizeof g->what, "%s", msg);
            guard_top = g;
            siglongjmp(g->jb, 1);
        }
    }
    /* Not inside a guarded call: LMDB prints msg and aborts, as it always did. */
}

/* See store_int.h. */
int guard_enter(pl_store *s, struct guard *g)
{
    int rc;

    if (atomic_load_explicit(&s->damaged, memory_order_acquire))
        return PL_EDAMAGED;
    /* A call nested in another on the same store was checked by the outer one. */
    if (!s->skip_checks && !(guard_top && guard_top->s == s) && (rc = store_check(s)) != 0)
        return rc;
    g->prev = guard_top;
    g->s = s;
    g->n_txns = 0;
    g->n_locks = 0;
    g->caught = 0;
    g->addr = NULL;
    g->what[0] = 0;
    guard_top = g;
    return 0;
}

/* See store_int.h. */
int guard_leave(struct guard *g, int rc)
{
    guard_top = g->prev;
    if (rc && is_damage(g->s, rc)) {
        guard_mark(g->s, "%s", pl_strerror(rc));
        rc = PL_EDAMAGED;
    }
    return rc;
}

/* Aborts one transaction left open by a jump, inside a guard of its own:
 * a second fault gives up on it. Returns 0 when it was aborted. */
static int abort_guarded(pl_store *s, MDB_txn *txn)
{
    struct guard g;
    volatile int rc = 0;

    g.prev = guard_top;
    g.s = s;
    g.n_txns = g.n_locks = 0;
    guard_top = &g;
    if (sigsetjmp(g.jb, 0) == 0)
        mdb_txn_abort(txn);
    else
        rc = PL_EDAMAGED;
    guard_top = g.prev;
    return rc;
}

/* See store_int.h. */
int guard_caught(struct guard *g)
{
    pl_store *s = g->s;
    uintptr_t lo = atomic_load_explicit(&s->map_lo, memory_order_relaxed);

    guard_top = g->prev;
    if (g->caught == -1)
        guard_mark(s, "LMDB assertion: %s", g->what);
    else if (in_map(s, g->addr))
        guard_mark(s, "%s reading byte %" PRIuPTR " of data.mdb (%" PRIu64 " bytes)",
                   g->caught == SIGBUS ? "SIGBUS" : "SIGSEGV", (uintptr_t)g->addr - lo,
                   atomic_load_explicit(&s->seen_size, memory_order_relaxed));
    else
        guard_mark(s, "%s in LMDB at address %#" PRIxPTR ", outside data.mdb's map (bad data in a page)",
                   g->caught == SIGBUS ? "SIGBUS" : "SIGSEGV", (uintptr_t)g->addr);
    /* See the top of the file: read transactions are aborted, a write
     * transaction is left as it is and only its writer lock released
     * (other processes would wait for it forever: its owner thread lives). */
    for (unsigned i = g->n_txns; i-- > 0;) {
        if (!g->write[i])
            abort_guarded(s, g->txns[i]);
        else if (s->wmutex)
            pthread_mutex_unlock(s->wmutex);
    }
    for (unsigned i = 0; i < g->n_locks; i++)
        pthread_rwlock_unlock(&s->resize_lock);
    return PL_EDAMAGED;
}

/* The innermost frame of s on this thread, or NULL. */
static struct guard *frame_of(const pl_store *s)
{
    struct guard *g = guard_top;

    while (g && g->s != s)
        g = g->prev;
    return g;
}

/* See store_int.h. */
void guard_lock_taken(pl_store *s, int taken)
{
    struct guard *g = frame_of(s);

    if (g && taken)
        g->n_locks++;
    else if (g && g->n_locks)
        g->n_locks--;
}

/* See store_int.h. */
void guard_txn_begun(pl_store *s, MDB_txn *txn, int write)
{
    struct guard *g = frame_of(s);

    if (g && g->n_txns < GUARD_TXNS) {
        g->write[g->n_txns] = write != 0;
        g->txns[g->n_txns++] = txn;
    }
}

/* See store_int.h. */
void guard_txn_ended(pl_store *s, MDB_txn *txn)
{
    struct guard *g = frame_of(s);

    for (unsigned i = 0; g && i < g->n_txns; i++) {
        if (g->txns[i] == txn) {
            g->n_txns--;
            g->txns[i] = g->txns[g->n_txns];
            g->write[i] = g->write[g->n_txns];
            break;
        }
    }
}

/* -------------------------------------------------------------- attach */

/* The largest mapping of the file (dev, ino) in /proc/self/maps: LMDB
 * keeps the addresses of its maps to itself. */
static void find_map(dev_t dev, ino_t ino, uintptr_t *lo, uintptr_t *hi)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];

    *lo = *hi = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long long a, b, off, inode;
        unsigned maj, mnr;

        if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &a, &b, &off, &maj, &mnr, &inode) != 6)
            continue;
        if (inode == (unsigned long long)ino && maj == major(dev) && mnr == minor(dev) && off == 0 &&
            b - a > *hi - *lo) {
            *lo = (uintptr_t)a;
            *hi = (uintptr_t)b;
        }
    }
    if (f)
        fclose(f);
}

/* See store_int.h. */
void guard_map_update(pl_store *s)
{
    uintptr_t lo, hi;

    find_map(s->dev, s->ino, &lo, &hi);
    atomic_store(&s->map_lo, lo);
    atomic_store(&s->map_hi, hi);
}

/* LMDB's writer mutex, in its own map of lock.mdb (found by the file's
 * device and inode; lock.mdb is never opened here: closing a descriptor of
 * it would drop LMDB's fcntl locks on it). NULL unless the map is there and
 * starts with LMDB's magic. */
static pthread_mutex_t *find_writer_lock(const pl_store *s)
{
    char path[4200];
    struct stat st;
    uintptr_t lo, hi;
    uint32_t magic;

    snprintf(path, sizeof path, "%s/lock.mdb", s->path);
    if (s->read_only || stat(path, &st) != 0)
        return NULL;
    find_map(st.st_dev, st.st_ino, &lo, &hi);
    if (!lo || hi - lo < LMDB_WMUTEX_OFF + sizeof(pthread_mutex_t))
        return NULL;
    memcpy(&magic, (const void *)lo, sizeof magic);
    return magic == LMDB_MAGIC ? (pthread_mutex_t *)(lo + LMDB_WMUTEX_OFF) : NULL;
}

/* See store_int.h. */
int guard_attach(pl_store *s)
{
    uint8_t page[META_BYTES];
    struct lmdb_meta m;
    struct stat st;
    size_t n = strlen(s->path) + sizeof "/data.mdb";
    int fd, rc;

    pthread_once(&install_once, install);
    if ((rc = mdb_env_get_fd(s->env, &fd)) != 0)
        return rc;
    s->fd = fd;
    s->data_path = malloc(n);
    if (!s->data_path)
        return ENOMEM;
    snprintf(s->data_path, n, "%s/data.mdb", s->path);
    if (fstat(fd, &st) != 0)
        return errno;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    atomic_store(&s->seen_size, (uint64_t)st.st_size);
    if ((rc = meta_read(fd, 0, 0, page)) != 0) {
        if (rc == PL_EDAMAGED)
            guard_mark(s, "meta page 0 of data.mdb is missing (the file is too short)");
        return rc;
    }
    memcpy(&m, page + LMDB_PAGE_HEADER, sizeof m);
    s->psize = m.dbs[0].pad;
    if (s->psize < 256 || s->psize > 65536 || (s->psize & (s->psize - 1))) {
        guard_mark(s, "meta page 0 of data.mdb has an impossible page size");
        return PL_EDAMAGED;
    }
    guard_map_update(s);
    s->wmutex = find_writer_lock(s);
    return 0;
}
