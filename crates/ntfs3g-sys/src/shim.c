/*
 * Accessors for libntfs-3g struct fields and macros, compiled against the
 * installed headers so that Rust never depends on a hand-copied layout.
 * Also a log handler that keeps the library's last error messages so that
 * callers can report them (libntfs-3g logs to nowhere by default).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
/* Before the ntfs-3g headers: ntfstime.h defines its own struct timespec
 * unless st_mtime (from sys/stat.h) is already defined. */
#include <sys/stat.h>

#include <ntfs-3g/types.h>
#include <ntfs-3g/device.h>
#include <ntfs-3g/volume.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/security.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/logging.h>

/* ---- struct ntfs_device ---- */

void *tasq_ntfs_device_private(struct ntfs_device *dev)
{
	return dev->d_private;
}

void tasq_ntfs_device_set_open(struct ntfs_device *dev, int readonly)
{
	NDevSetOpen(dev);
	if (readonly)
		NDevSetReadOnly(dev);
	else
		NDevClearReadOnly(dev);
}

void tasq_ntfs_device_clear_open(struct ntfs_device *dev)
{
	NDevClearOpen(dev);
}

int tasq_ntfs_device_is_open(struct ntfs_device *dev)
{
	return NDevOpen(dev) ? 1 : 0;
}

/* ---- ntfs_volume ---- */

void tasq_ntfs_volume_info(ntfs_volume *vol, u32 *cluster_size,
			   s64 *nr_clusters, s64 *free_clusters,
			   u8 *major_ver, u8 *minor_ver)
{
	*cluster_size = vol->cluster_size;
	*nr_clusters = vol->nr_clusters;
	*free_clusters = vol->free_clusters;
	*major_ver = vol->major_ver;
	*minor_ver = vol->minor_ver;
}

int tasq_ntfs_volume_has_secure(ntfs_volume *vol)
{
	return vol->secure_ni != NULL;
}

/* ---- ntfs_inode ---- */

u64 tasq_ntfs_inode_mft_no(ntfs_inode *ni)
{
	return ni->mft_no;
}

/* Looks `name` up in a directory ignoring case (by the volume's $UpCase
 * table, as Windows compares names), whatever the volume's mode: the
 * library only offers a volume-wide switch, which would also make
 * ntfs_readdir report lower-cased names, so the flag is cleared for this
 * one call only. Returns what ntfs_inode_lookup_by_name returns. */
u64 tasq_ntfs_lookup_nocase(ntfs_inode *dir_ni, const ntfschar *name,
			    int name_len)
{
	ntfs_volume *vol = dir_ni->vol;
	int was_sensitive = NVolCaseSensitive(vol) ? 1 : 0;
	u64 mref;

	NVolClearCaseSensitive(vol);
	mref = ntfs_inode_lookup_by_name(dir_ni, name, name_len);
	if (was_sensitive)
		NVolSetCaseSensitive(vol);
	return mref;
}

/* ---- security descriptors: the context lives on the C stack ---- */

/* The $Secure id of the descriptor a new file (fordir 0) or directory
 * (fordir 1) created in dir_ni inherits, as Windows builds it: the
 * parent's inheritable ACEs, owner and group BUILTIN\Administrators (the
 * library's choice for uid/gid 0 without a user mapping). 0 when the
 * parent has no descriptor or no $Secure, and the caller falls back to the
 * library's default descriptor. The id is returned in disk byte order, as
 * ntfs_create takes it. */
u32 tasq_ntfs_inherited_id(ntfs_volume *vol, ntfs_inode *dir_ni, int fordir)
{
	struct SECURITY_CONTEXT scx;
	/* The library reads the permissions cache through this pointer
	 * whenever the parent has a security id; an empty cache is fine. */
	struct PERMISSIONS_CACHE *cache = NULL;
	le32 id;

	memset(&scx, 0, sizeof(scx));
	scx.vol = vol;
	scx.pseccache = &cache;
	id = ntfs_inherited_id(&scx, dir_ni, fordir ? TRUE : FALSE);
	/* Frees a cache if the library made one (it does not today). */
	ntfs_destroy_security_context(&scx);
	return (u32)id;
}

int tasq_ntfs_get_acl(ntfs_volume *vol, ntfs_inode *ni, char *buf, size_t size)
{
	struct SECURITY_CONTEXT scx;

	memset(&scx, 0, sizeof(scx));
	scx.vol = vol;
	return ntfs_get_ntfs_acl(&scx, ni, buf, size);
}

int tasq_ntfs_set_acl(ntfs_volume *vol, ntfs_inode *ni, const char *buf,
		      size_t size)
{
	struct SECURITY_CONTEXT scx;

	memset(&scx, 0, sizeof(scx));
	scx.vol = vol;
	return ntfs_set_ntfs_acl(&scx, ni, buf, size, 0);
}

/* ---- attribute search contexts and open attributes ---- */

/* Describes the attribute record a successful ntfs_attr_lookup() left in
 * the context: its name (pointing into the record) and value length. */
void tasq_ntfs_ctx_attr(ntfs_attr_search_ctx *ctx, const ntfschar **name,
			u32 *name_len, s64 *value_len)
{
	const ATTR_RECORD *a = ctx->attr;

	*name_len = a->name_length;
	*name = (const ntfschar *)((const u8 *)a + le16_to_cpu(a->name_offset));
	*value_len = ntfs_get_attribute_value_length(a);
}

int tasq_ntfs_attr_is_compressed(ntfs_attr *na)
{
	return (na->data_flags & ATTR_COMPRESSION_MASK) ? 1 : 0;
}

s64 tasq_ntfs_attr_data_size(ntfs_attr *na)
{
	return na->data_size;
}

/* ---- logging ---- */

/* The last few error lines of this thread, newest last. */
#define TASQ_LOG_SIZE 1024
static __thread char tasq_log[TASQ_LOG_SIZE];
static __thread size_t tasq_log_len;

static void tasq_log_append(const char *s)
{
	size_t n = strlen(s);

	if (n >= TASQ_LOG_SIZE)
		n = TASQ_LOG_SIZE - 1;
	if (tasq_log_len + n >= TASQ_LOG_SIZE) {
		/* Drop the oldest lines to make room. */
		tasq_log_len = 0;
	}
	memcpy(tasq_log + tasq_log_len, s, n);
	tasq_log_len += n;
	tasq_log[tasq_log_len] = 0;
}

static int tasq_log_handler(const char *function, const char *file, int line,
			    u32 level, void *data, const char *format,
			    va_list args)
{
	char msg[512];
	int olderr = errno;
	int n;

	(void)function;
	(void)file;
	(void)line;
	(void)data;
	n = vsnprintf(msg, sizeof(msg), format, args);
	if (n < 0)
		return 0;
	/* Strip the trailing newline the library puts on most messages. */
	n = (int)strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = 0;
	if (level & NTFS_LOG_LEVEL_PERROR) {
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s",
			 strerror(olderr));
	}
	tasq_log_append(msg);
	tasq_log_append("; ");
	errno = olderr;
	return n;
}

void tasq_ntfs_log_init(void)
{
	ntfs_log_set_handler(tasq_log_handler);
	ntfs_log_clear_levels(~0u);
	ntfs_log_set_levels(NTFS_LOG_LEVEL_ERROR | NTFS_LOG_LEVEL_PERROR |
			    NTFS_LOG_LEVEL_CRITICAL);
}

/* Copies this thread's collected messages into buf (NUL-terminated) and
 * clears them. Returns the length copied. */
size_t tasq_ntfs_log_take(char *buf, size_t size)
{
	size_t n = tasq_log_len;

	if (size == 0)
		return 0;
	if (n >= size)
		n = size - 1;
	memcpy(buf, tasq_log, n);
	buf[n] = 0;
	tasq_log_len = 0;
	tasq_log[0] = 0;
	return n;
}
