/*
 * Numeric xenstore nodes for the xenbus-style workloads (xs-handshake,
 * splitdrv): `dir/node` paths and reads/writes that fail the guest on an
 * error, naming the operation and the path. Header-only: only the images
 * that include it change.
 */
#ifndef SMPSIM_XSNODE_H
#define SMPSIM_XSNODE_H
#include "rt.h"
#include "xs.h"
#include "fmt.h"

#define PATH 128

static void check(long rc, const char *what, const char *p)
{
	if (rc < 0)
		guest_fail("%s %s returned %ld", what, p, rc);
}

static void path(char *out, const char *dir, const char *node)
{
	smp_snprintf(out, PATH, "%s/%s", dir, node);
}

static u64 read_num(const char *dir, const char *node)
{
	char p[PATH];
	u64 v;
	path(p, dir, node);
	check(xs_read_u64(0, p, &v), "read", p);
	return v;
}

static void write_num(u32 tx, const char *dir, const char *node, u64 v)
{
	char p[PATH];
	path(p, dir, node);
	check(xs_write_u64(tx, p, v), "write", p);
}

#endif
