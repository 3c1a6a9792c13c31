/*
 * sandbox - rlimits, then Landlock (raw syscalls: the kernel's interface, Debian 12 has no
 * library for it), then a libseccomp deny-list. The seccomp filter denies with an errno rather
 * than killing, so a library that tries a socket gets an error it already handles; a deny-list
 * and not an allow-list because the sanitizer runtimes of test builds make calls no list of
 * ours would foresee.
 */
#include "symbolizer/engine/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <signal.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_BUILD 1
#endif
#endif

/* The rights of Landlock ABI 1, the ones every kernel with Landlock knows. */
#define FS_ALL                                                                                     \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                              \
	 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |                              \
	 LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |                          \
	 LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |                              \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |                              \
	 LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |                            \
	 LANDLOCK_ACCESS_FS_MAKE_SYM)
#define FS_DIR_RW                                                                                  \
	(LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |                            \
	 LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |                            \
	 LANDLOCK_ACCESS_FS_MAKE_REG)

static int limit(int res, uint64_t soft, uint64_t hard)
{
	struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};

	return setrlimit(res, &rl) < 0 ? -errno : 0;
}

static int set_limits(const struct sandbox_opts *o, struct sandbox_report *rep)
{
	int err = limit(RLIMIT_CORE, 0, 0);

#ifndef ASAN_BUILD
	if (!err && o->max_as) {
		err = limit(RLIMIT_AS, o->max_as, o->max_as);
		rep->as_limited = !err;
	}
#endif
	if (!err && o->max_cpu_s)
		err = limit(RLIMIT_CPU, o->max_cpu_s, o->max_cpu_s + 1);
	if (!err && o->max_fsize)
		err = limit(RLIMIT_FSIZE, o->max_fsize, o->max_fsize);
	if (!err && o->max_files)
		err = limit(RLIMIT_NOFILE, o->max_files, o->max_files);
	return err;
}

static int add_rule(int ruleset, const char *path, uint64_t access)
{
	struct landlock_path_beneath_attr pb = {.allowed_access = access};
	int err = 0;

	pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
	if (pb.parent_fd < 0)
		return -errno;
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
		err = -errno;
	close(pb.parent_fd);
	return err;
}

/* 0 and rep->landlock_abi set (0 when the kernel has none), or an error applying it. */
static int restrict_files(const struct sandbox_opts *o, struct sandbox_report *rep)
{
	struct landlock_ruleset_attr ra = {.handled_access_fs = FS_ALL};
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	int rs, err = 0;

	if (abi < 1)
		return errno == ENOSYS || errno == EOPNOTSUPP ? 0 : -errno;
	rs = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof(ra), 0);
	if (rs < 0)
		return -errno;
	for (const char *const *p = o->read_files; p && *p && !err; p++)
		err = add_rule(rs, *p, LANDLOCK_ACCESS_FS_READ_FILE);
	for (const char *const *p = o->rw_files; p && *p && !err; p++)
		err =
		    add_rule(rs, *p, LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE);
	if (!err && o->write_dir)
		err = add_rule(rs, o->write_dir, FS_DIR_RW);
	/* The sanitizer runtimes read /proc/self/maps; reading one's own /proc is harmless. */
	if (!err)
		err = add_rule(rs, "/proc/self",
			       LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR);
	if (!err && syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		err = -errno;
	close(rs);
	if (!err)
		rep->landlock_abi = (int)abi;
	return err;
}

static const int denied_calls[] = {
    SCMP_SYS(socket),
    SCMP_SYS(socketpair),
    SCMP_SYS(connect),
    SCMP_SYS(bind),
    SCMP_SYS(listen),
    SCMP_SYS(accept),
    SCMP_SYS(accept4),
    SCMP_SYS(execve),
    SCMP_SYS(execveat),
    SCMP_SYS(mount),
    SCMP_SYS(umount2),
    SCMP_SYS(unshare),
    SCMP_SYS(setns),
    SCMP_SYS(chroot),
    SCMP_SYS(pivot_root),
    SCMP_SYS(mknod),
    SCMP_SYS(mknodat),
    SCMP_SYS(symlink),
    SCMP_SYS(symlinkat),
    SCMP_SYS(link),
    SCMP_SYS(linkat),
    SCMP_SYS(kill),
    SCMP_SYS(tkill),
    SCMP_SYS(process_vm_writev),
    SCMP_SYS(process_vm_readv),
    SCMP_SYS(setsid),
    SCMP_SYS(setpgid),
};

static int deny_calls(struct sandbox_report *rep)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int err = 0;

	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(denied_calls) / sizeof(denied_calls[0]) && !err; i++)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), denied_calls[i], 0);
	/* Signals and ptrace only at itself (abort() and the leak checker do both); the worker is
	 * single-threaded, so its one thread ID is its PID. fleetsymd runs as the same user. */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(tgkill), 1,
				       SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)getpid()));
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(ptrace), 1,
				       SCMP_A1(SCMP_CMP_NE, (scmp_datum_t)getpid()));
	if (!err)
		err = seccomp_load(ctx);
	seccomp_release(ctx);
	if (!err)
		rep->seccomp = 1;
	return err;
}

int sandbox_enter(const struct sandbox_opts *o, struct sandbox_report *rep)
{
	int err;

	*rep = (struct sandbox_report){0};
	err = 0;
	if (o->parent && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		err = -errno;
	/* the parent may have ended before the line above: then nobody waits for the answer */
	if (!err && o->parent && getppid() != o->parent)
		err = -ESRCH;
	if (!err)
		err = set_limits(o, rep);
	if (!err && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		err = -errno;
	if (!err)
		err = restrict_files(o, rep);
	if (!err)
		err = deny_calls(rep);
	return err;
}
