/*
 * A small xenstore client over the domain's xenstore ring (xs_wire.h):
 * one request in flight at a time, from one VCPU at a time (callers
 * serialise). Replies are matched by req_id; watch events that arrive
 * meanwhile are queued and handed out by xs_next_event. Every call
 * returns >= 0 on success or -errno with Xen's errno for the error
 * string xenstored sent (-ENOENT, -EACCES, -EAGAIN, ...).
 */
#ifndef SMPSIM_XS_H
#define SMPSIM_XS_H
#include "types.h"

#define XS_ENOENT 2
#define XS_EACCES 13
#define XS_EAGAIN 11
#define XS_EEXIST 17
#define XS_EINVAL 22
#define XS_ENOSPC 28
#define XS_E2BIG 7
#define XS_EBUSY 16
#define XS_EPERM 1
#define XS_EISDIR 21
#define XS_ENOSYS 38
#define XS_EIO 5

/* Finds the ring and binds its port on VCPU 0's handler table; call once
 * on VCPU 0 before anything else. */
void xs_init(void);

/* Reads `path` (in transaction `tx`, 0 for none) into buf (NUL-terminated,
 * at most size-1 bytes); returns the value's length. */
long xs_read(u32 tx, const char *path, char *buf, u32 size);
long xs_write(u32 tx, const char *path, const char *value);
long xs_mkdir(u32 tx, const char *path);
long xs_rm(u32 tx, const char *path);
/* Sets the permissions: n entries such as "n0", "r1" (owner first). */
long xs_set_perms(u32 tx, const char *path, const char *const *perms, u32 n);
/* Reads the permissions as "n0,r1" into buf. */
long xs_get_perms(u32 tx, const char *path, char *buf, u32 size);
long xs_watch(const char *path, const char *token);
long xs_unwatch(const char *path, const char *token);
long xs_tx_start(u32 *tx);
long xs_tx_end(u32 tx, int commit);

/* Blocks until a watch event is there; copies its path and token. */
void xs_next_event(char *path, u32 psize, char *token, u32 tsize);
/* Watch events received so far. */
u64 xs_events_seen(void);

/* Reads a decimal value; -errno, or -XS_EINVAL if it is not a number. */
long xs_read_u64(u32 tx, const char *path, u64 *out);
long xs_write_u64(u32 tx, const char *path, u64 v);

#endif
