/* The mailbox: live-object requests posted for an incarnation, taken,
 * replied to and collected, and swept when stale. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "pyloot/error.h"

#define MB_REQ_KEY (1 + INC_KEY + 8 + 1)
#define MB_TICKET_KEY 9
#define MB_REPLY_KEY 13
#define MB_REQ_MAX 4096u
#define MB_TICKET_VAL (INC_KEY + 8 + 1)

enum { MB_WAITING = 0, MB_TAKEN = 1, MB_REPLIED = 2 };

static void mb_req_key(uint8_t *k, const uint8_t *tok, uint64_t ticket, uint8_t part)
{
    k[0] = 'q';
    memcpy(k + 1, tok, INC_KEY);
    put_be64(k + 1 + INC_KEY, ticket);
    k[MB_REQ_KEY - 1] = part;
}

static void mb_ticket_key(uint8_t *k, uint64_t ticket)
{
    k[0] = 't';
    put_be64(k + 1, ticket);
}

static void mb_reply_key(uint8_t *k, uint64_t ticket, uint32_t part)
{
    k[0] = 'r';
    put_be64(k + 1, ticket);
    put_be32(k + 9, part);
}

/* Writes `len` bytes of data as parts of at most PART_MAX bytes under
 * keys `key` (klen bytes) whose last `part_width` bytes (1, or 4 big-endian)
 * number the part; part 0 starts with the 12-byte header `hdr`. At least one
 * part is written (an empty body is the header alone). */
static int put_parts(MDB_txn *txn, MDB_dbi dbi, uint8_t *key, size_t klen, size_t part_width,
                     const uint8_t *hdr, const void *data, size_t len)
{
    uint8_t val[PART_MAX];
    MDB_val k = {klen, key}, v = {0, val};
    size_t off = 0, h;
    uint32_t part = 0;
    int rc;

    do {
        size_t m;

        h = 0;
        if (part == 0) {
            memcpy(val, hdr, 12);
            h = 12;
        }
        m = len - off < PART_MAX - h ? len - off : PART_MAX - h;
        if (m)
            memcpy(val + h, (const uint8_t *)data + off, m);
        if (part_width == 1)
            key[klen - 1] = (uint8_t)part;
        else
            put_be32(key + klen - 4, part);
        part++;
        k.mv_size = klen;
        k.mv_data = key;
        v.mv_size = h + m;
        v.mv_data = val;
        rc = mdb_put(txn, dbi, &k, &v, 0);
        off += m;
    } while (rc == 0 && off < len);
    return rc;
}

/* Looks, in a short read transaction, for a mailbox key of klen bytes that
 * starts with the first plen bytes of `key` (at or after key): lets a poller
 * find out that there is nothing to do without taking the writer lock.
 * Returns 0 when there is one, PL_ENOTFOUND, or an LMDB code. */
static int mb_peek(pl_store *s, const uint8_t *key, size_t klen, size_t plen)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k = {klen, (void *)key}, v;
    int rc = txn_begin(s, 0, &txn);

    if (rc)
        return rc;
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && (k.mv_size != klen || memcmp(k.mv_data, key, plen) != 0))
        rc = MDB_NOTFOUND;
    if (rc == MDB_NOTFOUND)
        rc = PL_ENOTFOUND;
    mdb_cursor_close(cur);
    txn_abort(s, txn);
    return rc;
}

/* Deletes a request (its parts, the ticket record and any reply parts). */
static int mb_delete(pl_store *s, MDB_txn *txn, MDB_cursor *cur, uint64_t ticket)
{
    uint8_t tk[MB_TICKET_KEY], lo[MB_REQ_KEY], hi[MB_REQ_KEY], rlo[MB_REPLY_KEY],
        rhi[MB_REPLY_KEY];
    MDB_val k = {MB_TICKET_KEY, tk}, v;
    size_t deleted = 0;
    int rc, more;

    mb_ticket_key(tk, ticket);
    rc = mdb_get(txn, s->mailbox, &k, &v);
    if (rc == 0 && v.mv_size == MB_TICKET_VAL) {
        uint8_t to[INC_KEY];

        memcpy(to, v.mv_data, INC_KEY);
        mb_req_key(lo, to, ticket, 0);
        mb_req_key(hi, to, ticket, 0xff);
        rc = del_range(cur, lo, MB_REQ_KEY, hi, MB_REQ_KEY, SIZE_MAX, &deleted, &more);
        if (rc == 0)
            rc = mdb_del(txn, s->mailbox, &k, NULL);
    }
    if (rc == MDB_NOTFOUND || rc == 0) {
        mb_reply_key(rlo, ticket, 0);
        mb_reply_key(rhi, ticket, UINT32_MAX);
        rc = del_range(cur, rlo, MB_REPLY_KEY, rhi, MB_REPLY_KEY, SIZE_MAX, &deleted, &more);
    }
    return rc;
}

/* A fresh ticket: 64 bits from the kernel's random source (getrandom(2)),
 * never 0 and not the ticket of a request or reply still in the mailbox.
 * Tickets travel to workers of other hosts (remote mode) and come back with
 * their answers: a counter would let anyone who can reach the server answer
 * a query meant for another worker; a random one must be guessed among
 * 2^64. GRND_NONBLOCK: a machine whose random source is not initialised yet
 * (early boot) gets an error (EAGAIN), never a wait. */
static int draw_ticket(MDB_txn *txn, MDB_dbi mailbox, uint64_t *out)
{
    for (int tries = 0; tries < 8; tries++) {
        uint64_t t = 0;
        uint8_t tk[MB_TICKET_KEY], rlo[MB_REPLY_KEY];
        MDB_val k = {MB_TICKET_KEY, tk}, v;
        ssize_t n = getrandom(&t, sizeof t, GRND_NONBLOCK);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n != (ssize_t)sizeof t || t == 0)
            continue;
        mb_ticket_key(tk, t);
        int rc = mdb_get(txn, mailbox, &k, &v);
        if (rc == 0)
            continue;
        if (rc != MDB_NOTFOUND)
            return rc;
        mb_reply_key(rlo, t, 0); /* a reply whose ticket record was swept */
        k.mv_size = MB_REPLY_KEY;
        k.mv_data = rlo;
        rc = mdb_get(txn, mailbox, &k, &v);
        if (rc == 0)
            continue;
        if (rc != MDB_NOTFOUND)
            return rc;
        *out = t;
        return 0;
    }
    return EAGAIN;
}

/* Posts a request for `to` (see store.h). */
int mailbox_post_unguarded(pl_store *s, const pl_incarnation *to, const void *req, size_t len,
                          int64_t now_ms, uint64_t *ticket)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    struct proc_rec rec;
    uint8_t tok[INC_KEY], kb[MB_REQ_KEY], tk[MB_TICKET_KEY], hdr[12], tval[MB_TICKET_VAL];
    MDB_val k, v;
    uint64_t t = 0, last_ticket = UINT64_MAX;
    size_t pending = 0;
    int rc;

    if (len > MB_REQ_MAX || (len && !req)) {
        rc = PL_ETOOBIG;
        goto out;
    }
    if (!(to->start & REMOTE_START) && !pl_proc_alive(to)) {
        rc = PL_ENOTFOUND;
        goto out;
    }
    inc_key(tok, to);
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = rec_get(s, txn, to, &rec);
    if (rc == 0 && (rec.ended_ms || ((to->start & REMOTE_START) && !rec_alive(to, &rec, now_ms))))
        rc = PL_ENOTFOUND;
    if (rc)
        goto end;
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc)
        goto end;
    mb_req_key(kb, tok, 0, 0);
    k.mv_size = MB_REQ_KEY;
    k.mv_data = kb;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t tt;

        if (k.mv_size != MB_REQ_KEY || memcmp(k.mv_data, kb, 1 + INC_KEY) != 0)
            break;
        tt = get_be64((const uint8_t *)k.mv_data + 1 + INC_KEY);
        if (tt != last_ticket) {
            pending++;
            last_ticket = tt;
        }
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto end;
    if (pending >= PL_MAILBOX_MAX_PENDING) {
        rc = PL_EBUSY;
        goto end;
    }
    rc = draw_ticket(txn, s->mailbox, &t);
    if (rc)
        goto end;
    {
        uint32_t l32 = (uint32_t)len;

        memcpy(hdr, &now_ms, 8);
        memcpy(hdr + 8, &l32, 4);
    }
    mb_req_key(kb, tok, t, 0);
    rc = put_parts(txn, s->mailbox, kb, MB_REQ_KEY, 1, hdr, req, len);
    if (rc)
        goto end;
    memcpy(tval, tok, INC_KEY);
    memcpy(tval + INC_KEY, &now_ms, 8);
    tval[INC_KEY + 8] = MB_WAITING;
    mb_ticket_key(tk, t);
    k.mv_size = MB_TICKET_KEY;
    k.mv_data = tk;
    v.mv_size = MB_TICKET_VAL;
    v.mv_data = tval;
    rc = mdb_put(txn, s->mailbox, &k, &v, 0);
end:
    mdb_cursor_close(cur);
    rc = txn_end(s, txn, rc);
    if (rc == 0)
        *ticket = t;
out:
    return rc;
}

/* The ticket of the oldest request under the 1 + INC_KEY bytes of prefix
 * `kb` (by the time it was posted, then by ticket): tickets are random, so
 * the keys' order says nothing about age. At most PL_MAILBOX_MAX_PENDING
 * requests wait per incarnation, so the scan is short. A first part too
 * short to hold its header counts as oldest, so that it is cleaned first.
 * Returns 0, PL_ENOTFOUND or an LMDB code. */
static int mb_oldest(MDB_cursor *cur, const uint8_t *kb, uint64_t *ticket)
{
    MDB_val k = {MB_REQ_KEY, (void *)kb}, v;
    int64_t best_posted = 0;
    uint64_t best = 0;
    int found = 0, rc;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        int64_t posted = INT64_MIN;
        uint64_t t;

        if (k.mv_size != MB_REQ_KEY || memcmp(kp, kb, 1 + INC_KEY) != 0)
            break;
        if (kp[MB_REQ_KEY - 1] != 0)
            continue;
        t = get_be64(kp + 1 + INC_KEY);
        if (v.mv_size >= 12)
            memcpy(&posted, v.mv_data, 8);
        if (!found || posted < best_posted || (posted == best_posted && t < best)) {
            best_posted = posted;
            best = t;
            found = 1;
        }
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (!found)
        return PL_ENOTFOUND;
    *ticket = best;
    return 0;
}

/* Takes the oldest request for `me` (see store.h). Polling an empty mailbox
 * costs one read transaction, never a write. */
int mailbox_take_unguarded(pl_store *s, const pl_incarnation *me, int64_t now_ms,
                          int64_t max_age_ms, uint64_t *ticket, pl_buf *req)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t mek[INC_KEY], kb[MB_REQ_KEY], lo[MB_REQ_KEY], hi[MB_REQ_KEY], tk[MB_TICKET_KEY];
    uint8_t body[MB_REQ_MAX + 16], tval[MB_TICKET_VAL];
    MDB_val k, v;
    int rc, more;

    inc_key(mek, me);
    mb_req_key(kb, mek, 0, 0);
    rc = mb_peek(s, kb, MB_REQ_KEY, 1 + INC_KEY);
    if (rc)
        goto out;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc)
        goto abort;
    for (;;) {
        uint64_t t, posted;
        size_t blen = 0, deleted = 0;
        uint32_t l32;

        rc = mb_oldest(cur, kb, &t);
        if (rc)
            break;
        mb_req_key(lo, mek, t, 0);
        mb_req_key(hi, mek, t, 0xff);
        k.mv_size = MB_REQ_KEY;
        k.mv_data = lo;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != MB_REQ_KEY || memcmp(k.mv_data, lo, MB_REQ_KEY - 1) != 0)
                break;
            if (blen + v.mv_size > sizeof body) {
                rc = PL_ECORRUPT;
                break;
            }
            memcpy(body + blen, v.mv_data, v.mv_size);
            blen += v.mv_size;
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (rc == 0)
            rc = del_range(cur, lo, MB_REQ_KEY, hi, MB_REQ_KEY, SIZE_MAX, &deleted, &more);
        if (rc)
            break;
        mb_ticket_key(tk, t);
        k.mv_size = MB_TICKET_KEY;
        k.mv_data = tk;
        if (blen < 12) {
            mdb_del(txn, s->mailbox, &k, NULL);
            continue;
        }
        memcpy(&posted, body, 8);
        memcpy(&l32, body + 8, 4);
        if (l32 != blen - 12 || (max_age_ms > 0 && now_ms - (int64_t)posted > max_age_ms)) {
            rc = mdb_del(txn, s->mailbox, &k, NULL);
            if (rc && rc != MDB_NOTFOUND)
                break;
            rc = 0;
            continue;
        }
        rc = mdb_get(txn, s->mailbox, &k, &v);
        if (rc == 0 && v.mv_size == MB_TICKET_VAL) {
            memcpy(tval, v.mv_data, MB_TICKET_VAL);
            tval[INC_KEY + 8] = MB_TAKEN;
            v.mv_data = tval;
            rc = mdb_put(txn, s->mailbox, &k, &v, 0);
        } else if (rc == MDB_NOTFOUND) {
            rc = 0; /* withdrawn meanwhile: still hand it out; the reply is dropped */
        }
        if (rc)
            break;
        pl_buf_append(req, body + 12, l32);
        if (req->err) {
            rc = req->err;
            break;
        }
        *ticket = t;
        break;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (rc == 0 || rc == PL_ENOTFOUND) {
        /* Commit the discarded stale requests even when none was returned. */
        int crc = txn_commit(s, txn);

        txn = NULL;
        if (crc)
            rc = crc;
        goto out;
    }
abort:
    mdb_cursor_close(cur);
    txn_abort(s, txn);
out:
    return rc;
}

/* Stores the reply to a taken request (see store.h). Returns PL_ENOTFOUND
 * (and drops the reply) when the request was withdrawn or swept. */
int mailbox_reply_unguarded(pl_store *s, uint64_t ticket, int status, const void *body, size_t len,
                           int64_t now_ms)
{
    MDB_txn *txn = NULL;
    uint8_t tk[MB_TICKET_KEY], rk[MB_REPLY_KEY], hdr[12], tval[MB_TICKET_VAL];
    MDB_val k = {MB_TICKET_KEY, tk}, v;
    int rc;

    if (len && !body) {
        rc = PL_EBADARG;
        goto out;
    }
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    mb_ticket_key(tk, ticket);
    rc = mdb_get(txn, s->mailbox, &k, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != MB_TICKET_VAL))
        rc = PL_ENOTFOUND;
    if (rc)
        goto end;
    memcpy(tval, v.mv_data, MB_TICKET_VAL);
    memcpy(tval + INC_KEY, &now_ms, 8);
    tval[INC_KEY + 8] = MB_REPLIED;
    v.mv_size = MB_TICKET_VAL;
    v.mv_data = tval;
    rc = mdb_put(txn, s->mailbox, &k, &v, 0);
    if (rc)
        goto end;
    {
        int32_t st = status;
        uint64_t total = len;

        memcpy(hdr, &st, 4);
        memcpy(hdr + 4, &total, 8);
    }
    mb_reply_key(rk, ticket, 0);
    rc = put_parts(txn, s->mailbox, rk, MB_REPLY_KEY, 4, hdr, body, len);
end:
    rc = txn_end(s, txn, rc);
out:
    return rc;
}

/* Fetches and deletes the reply to `ticket` (see store.h). Polling before
 * the reply exists costs one read transaction. */
int mailbox_result_unguarded(pl_store *s, uint64_t ticket, int *status, pl_buf *body)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t rk[MB_REPLY_KEY];
    MDB_val k = {MB_REPLY_KEY, rk}, v;
    uint64_t total = 0, got = 0;
    int32_t st = 0;
    int rc;

    mb_reply_key(rk, ticket, 0);
    rc = mb_peek(s, rk, MB_REPLY_KEY, MB_REPLY_KEY);
    if (rc)
        goto out;
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc)
        goto end;
    k.mv_size = MB_REPLY_KEY;
    k.mv_data = rk;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = v.mv_data;
        size_t n = v.mv_size;

        if (k.mv_size != MB_REPLY_KEY || memcmp(k.mv_data, rk, 9) != 0)
            break;
        if (get_be32((const uint8_t *)k.mv_data + 9) == 0) {
            if (n < 12) {
                rc = PL_ECORRUPT;
                goto end;
            }
            memcpy(&st, p, 4);
            memcpy(&total, p + 4, 8);
            p += 12;
            n -= 12;
        }
        pl_buf_append(body, p, n);
        got += n;
    }
    if (rc != MDB_NOTFOUND && rc != 0)
        goto end;
    if (body->err) {
        rc = body->err;
        goto end;
    }
    if (got != total) {
        rc = PL_ECORRUPT;
        goto end;
    }
    rc = mb_delete(s, txn, cur, ticket);
end:
    mdb_cursor_close(cur);
    rc = txn_end(s, txn, rc);
    if (rc == 0)
        *status = st;
out:
    return rc;
}

/* Withdraws a request and any reply (see store.h). */
int mailbox_cancel_unguarded(pl_store *s, uint64_t ticket)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc == 0)
        rc = mb_delete(s, txn, cur, ticket);
    mdb_cursor_close(cur);
    rc = txn_end(s, txn, rc);
out:
    return rc;
}

/* Deletes requests and replies older than MAILBOX_TTL_MS, requests waiting
 * for an incarnation that is gone, and records without a ticket. */
int mailbox_sweep(pl_store *s, int64_t now_ms, const struct inc_entry *list, size_t n)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    MDB_stat st;
    uint64_t *doomed = NULL;
    size_t n_doomed = 0, cap = 0, i;
    int rc;

    /* Most passes find the mailbox empty: check that without a write txn. */
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = mdb_stat(txn, s->mailbox, &st);
    txn_abort(s, txn);
    txn = NULL;
    if (rc || st.ms_entries == 0)
        goto out;
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc)
        goto end;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        uint64_t t = 0;
        int doom = 0;

        if (k.mv_size == MB_TICKET_KEY && kp[0] == 't') {
            int64_t when;
            pl_incarnation to;
            int alive = 0;

            t = get_be64(kp + 1);
            if (v.mv_size != MB_TICKET_VAL) {
                doom = 1;
            } else {
                memcpy(&when, (const uint8_t *)v.mv_data + INC_KEY, 8);
                inc_from_key(&to, v.mv_data);
                for (i = 0; i < n; i++)
                    if (list[i].inc.pid == to.pid && list[i].inc.start == to.start)
                        alive = list[i].alive;
                doom = now_ms - when > MAILBOX_TTL_MS ||
                       (!alive && ((const uint8_t *)v.mv_data)[INC_KEY + 8] == MB_WAITING);
            }
        } else if ((k.mv_size == MB_REPLY_KEY && kp[0] == 'r') ||
                   (k.mv_size == MB_REQ_KEY && kp[0] == 'q')) {
            uint8_t tk[MB_TICKET_KEY];
            MDB_val tkv = {MB_TICKET_KEY, tk}, tv;

            t = kp[0] == 'r' ? get_be64(kp + 1) : get_be64(kp + 1 + INC_KEY);
            mb_ticket_key(tk, t);
            doom = mdb_get(txn, s->mailbox, &tkv, &tv) == MDB_NOTFOUND;
        }
        if (doom && (n_doomed == 0 || doomed[n_doomed - 1] != t)) {
            rc = array_reserve(&doomed, &cap, n_doomed + 1, sizeof *doomed, 16);
            if (rc)
                goto end;
            doomed[n_doomed++] = t;
        }
    }
    if (rc != MDB_NOTFOUND)
        goto end;
    rc = 0;
    for (i = 0; rc == 0 && i < n_doomed; i++)
        rc = mb_delete(s, txn, cur, doomed[i]);
    /* 'q' records whose ticket record is gone are not reached by mb_delete. */
    for (i = 0; rc == 0 && i < n_doomed; i++) {
        size_t j;

        for (j = 0; rc == 0 && j < n; j++) {
            uint8_t tok[INC_KEY], lo[MB_REQ_KEY], hi[MB_REQ_KEY];
            size_t deleted = 0;
            int more;

            inc_key(tok, &list[j].inc);
            mb_req_key(lo, tok, doomed[i], 0);
            mb_req_key(hi, tok, doomed[i], 0xff);
            rc = del_range(cur, lo, MB_REQ_KEY, hi, MB_REQ_KEY, SIZE_MAX, &deleted, &more);
        }
    }
end:
    mdb_cursor_close(cur);
    rc = txn_end(s, txn, rc);
out:
    free(doomed);
    return rc;
}
