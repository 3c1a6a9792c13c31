/*
 * fleetsym-upload - gets the debug info of (stripped) binaries to fleetsymd, keyed by build ID,
 * from a CI job.
 *
 *   fleetsym-upload [--server URL] [--token-file F] [--dry-run] [--force] [--no-extract]
 *                   [--quiet] [--retries N] PATH...
 *   fleetsym-upload buildid PATH
 *   fleetsym-upload extract [--no-compress] PATH OUT
 *   fleetsym-upload fold [FILE]      perf script output to folded stacks (fold.h)
 *
 * Per file: read the build ID; ask the server what it has and skip when that is at least as
 * good; extract what symbolization needs (extract.h) into a temp file, with compressed debug
 * sections; upload with retries; print one result line. Directories are walked (ELF files only;
 * each real file once, however many links lead to it).
 *
 * Exit: 0 every file uploaded or already present, 1 any failed, 2 usage.
 */
#include "cache/debugstore.h"
#include "upload-cli/client.h"
#include "upload-cli/extract.h"
#include "upload-cli/fold.h"

#include "lib/buildid.h"
#include "lib/elfutil.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/version.h"
#include "lib/vec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 100000
#define MAX_DEPTH 64

struct seen {
	dev_t dev;
	ino_t ino;
};

struct upload {
	const char *server;
	char *token;
	int dry_run, force, no_extract, quiet, retries;
	struct client *client;
	struct seen *seen;
	size_t nseen, seen_cap;
	int failed, uploaded, present, skipped;
};

static void usage(FILE *f)
{
	/* the help text is laid out as it prints */
	/* clang-format off */
	fputs("usage: fleetsym-upload [--server URL] [--token-file F] [--dry-run] [--force]\n"
	      "                       [--no-extract] [--quiet] [--retries N] PATH...\n"
	      "       fleetsym-upload buildid PATH\n"
	      "       fleetsym-upload extract [--no-compress] PATH OUT\n"
	      "       perf script | fleetsym-upload fold [FILE] > out.folded\n"
	      "Uploads the debug info of ELF files (binaries, .debug files, or directories of them)\n"
	      "to fleetsymd, keyed by build ID.\n"
	      "  --server URL      fleetsymd (default $FLEETSYM_SERVER, else http://127.0.0.1:7070)\n"
	      "  --token-file F    bearer token for uploads (default $FLEETSYM_TOKEN)\n"
	      "  --dry-run         say what would be uploaded; upload nothing\n"
	      "  --force           upload even when the server has debug info as good\n"
	      "  --no-extract      upload files as they are (no only-keep-debug extraction)\n"
	      "  --quiet           print failures only\n"
	      "  --retries N       retries on network errors and 5xx answers (default 4)\n"
	      "  --version         version, commit and library versions\n",
	      f);
	/* clang-format on */
}

static void result(struct upload *u, int fail, const char *what, const char *path, const char *fmt,
		   ...) __attribute__((format(printf, 5, 6)));

static void result(struct upload *u, int fail, const char *what, const char *path, const char *fmt,
		   ...)
{
	va_list ap;

	if (u->quiet && !fail)
		return;
	printf("%-9s %s", what, path);
	if (fmt && *fmt) {
		fputs(": ", stdout);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
	fflush(stdout);
}

static const char *http_hint(int status)
{
	switch (status) {
	case 401:
		return "unauthorized: pass the server's token with --token-file or FLEETSYM_TOKEN";
	case 409:
		return "the server has different debug info for this build ID that is not worse "
		       "(--force replaces it)";
	case 413: return "file larger than the server's --max-upload-size";
	case 400: return "the server refused the file";
	default: return "unexpected answer";
	}
}

static int temp_path(char *buf, size_t len)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(buf, len, "%s/fleetsym-upload.XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(buf);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static void upload_file(struct upload *u, const char *path)
{
	char bid[BUILDID_HEX_MAX], msg[512] = "", tmp[PATH_MAX] = "";
	struct remote_status rs;
	struct extract_stats es = {0};
	const char *send = path;
	unsigned q;
	int err, extract;

	err = dstore_inspect(path, bid, &q);
	if (err) {
		u->failed++;
		result(u, 1, "failed", path, "%s", err_str(err));
		return;
	}
	if (!u->force) {
		err = client_status(u->client, bid, &rs, msg, sizeof(msg));
		if (err < 0 && !u->dry_run) {
			u->failed++;
			result(u, 1, "failed", path, "%s", msg);
			return;
		}
		if (err > 0) {
			u->failed++;
			result(u, 1, "failed", path, "status %d: %s (%s)", err, http_hint(err),
			       msg);
			return;
		}
		if (!err && rs.present &&
		    dstore_quality_rank(rs.quality) >= dstore_quality_rank(q)) {
			u->present++;
			result(u, 0, "present", path, "build ID %s: server has %s", bid,
			       dstore_quality_name(rs.quality));
			return;
		}
	}
	/* a Go binary's pclntab is loaded code's data: only-keep-debug would drop it */
	extract =
	    !u->no_extract && !(dstore_quality_rank(q) == dstore_quality_rank(DSTORE_Q_PCLNTAB));
	if (extract) {
		err = temp_path(tmp, sizeof(tmp)) ?: extract_debug(path, tmp, 1, &es);
		if (err) {
			u->failed++;
			result(u, 1, "failed", path, "extracting debug info: %s", err_str(err));
			goto out;
		}
		send = tmp;
	}
	if (u->dry_run) {
		u->uploaded++;
		result(u, 0, "would-upload", path, "build ID %s, %s%s", bid, dstore_quality_name(q),
		       extract ? " (extracted)" : "");
		goto out;
	}
	err = client_put(u->client, bid, send, u->force, path, msg, sizeof(msg));
	if (err == 201 || err == 200) {
		u->uploaded++;
		if (!extract)
			result(u, 0, "uploaded", path, "build ID %s, %s", bid,
			       dstore_quality_name(q));
		else
			result(u, 0, "uploaded", path, "build ID %s, %s, %.1f MB sent of %.1f MB",
			       bid, dstore_quality_name(q), (double)es.out_size / 1e6,
			       (double)es.in_size / 1e6);
	} else if (err < 0) {
		u->failed++;
		result(u, 1, "failed", path, "%s", msg);
	} else {
		u->failed++;
		result(u, 1, "failed", path, "status %d: %s%s%s", err, http_hint(err),
		       msg[0] ? ": " : "", msg);
	}
out:
	if (tmp[0])
		unlink(tmp);
}

static int seen_before(struct upload *u, const struct stat *st)
{
	struct seen s = {st->st_dev, st->st_ino};

	for (size_t i = 0; i < u->nseen; i++)
		if (u->seen[i].dev == s.dev && u->seen[i].ino == s.ino)
			return 1;
	if (u->nseen < MAX_FILES)
		(void)VEC_PUSH(u->seen, u->nseen, u->seen_cap, s);
	return 0;
}

static int is_elf(const char *path)
{
	unsigned char magic[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return 0;
	ok = read(fd, magic, 4) == 4 && !memcmp(magic, "\177ELF", 4);
	close(fd);
	return ok;
}

static void walk(struct upload *u, const char *path, int depth, int top)
{
	struct stat st;
	DIR *dir;
	struct dirent *de;

	if (stat(path, &st) < 0) {
		u->failed++;
		result(u, 1, "failed", path, "%s", strerror(errno));
		return;
	}
	if (seen_before(u, &st))
		return;
	if (S_ISREG(st.st_mode)) {
		if (top || is_elf(path)) {
			upload_file(u, path);
		} else {
			u->skipped++;
			result(u, 0, "skipped", path, "not an ELF file");
		}
		return;
	}
	if (!S_ISDIR(st.st_mode) || depth > MAX_DEPTH) {
		u->skipped++;
		result(u, 0, "skipped", path, "not a regular file or directory");
		return;
	}
	dir = opendir(path);
	if (!dir) {
		u->failed++;
		result(u, 1, "failed", path, "%s", strerror(errno));
		return;
	}
	while ((de = readdir(dir))) {
		char child[PATH_MAX];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", path, de->d_name) >= (int)sizeof(child))
			continue;
		walk(u, child, depth + 1, 0);
	}
	closedir(dir);
}

static char *read_token(const char *file)
{
	char buf[512];
	FILE *f = fopen(file, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

static int cmd_buildid(int argc, char **argv)
{
	char bid[BUILDID_HEX_MAX];
	int err;

	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	err = buildid_from_path(argv[1], bid);
	if (err) {
		fprintf(stderr, "fleetsym-upload: %s: %s\n", argv[1], err_str(err));
		return 1;
	}
	puts(bid);
	return 0;
}

/* fold [FILE]: perf script output (FILE or stdin) to folded stacks on stdout (fold.h) */
static int cmd_fold(int argc, char **argv)
{
	FILE *in = stdin;
	char msg[256] = "";
	int err;

	if (argc > 2) {
		usage(stderr);
		return 2;
	}
	if (argc == 2 && strcmp(argv[1], "-") && !(in = fopen(argv[1], "re"))) {
		fprintf(stderr, "fleetsym-upload: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	err = fold_perf_script(in, stdout, msg, sizeof(msg));
	if (in != stdin)
		fclose(in);
	if (!err && fflush(stdout))
		err = -errno;
	if (err) {
		fprintf(stderr, "fleetsym-upload: fold: %s\n", msg[0] ? msg : err_str(err));
		return 1;
	}
	return 0;
}

static int cmd_extract(int argc, char **argv)
{
	struct extract_stats st;
	int compress = 1, i = 1, err;
	struct timespec t0, t1;

	if (i < argc && !strcmp(argv[i], "--no-compress"))
		compress = 0, i++;
	if (argc - i != 2) {
		usage(stderr);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = extract_debug(argv[i], argv[i + 1], compress, &st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (err) {
		fprintf(stderr, "fleetsym-upload: %s: %s\n", argv[i], err_str(err));
		unlink(argv[i + 1]);
		return 1;
	}
	printf("extracted %s -> %s: %llu -> %llu bytes (%.1f %%), %u sections kept, %u emptied, "
	       "%.3f s\n",
	       argv[i], argv[i + 1], (unsigned long long)st.in_size,
	       (unsigned long long)st.out_size,
	       st.in_size ? 100.0 * (double)st.out_size / (double)st.in_size : 0.0,
	       st.sections_kept, st.sections_emptied,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}

/* The client's progress callback: one line on stderr, redrawn in place, erased at the end. */
static void draw_progress(void *ctx, const char *label, uint64_t sent, uint64_t total)
{
	int width = 30, done;

	if (!total) {
		fputs("\r\033[K", stderr);
		return;
	}
	done = (int)(sent * width / total);
	fprintf(stderr, "\r  %-40.40s [%.*s%*s] %3d%% %.1f/%.1f MB", label, done,
		"##############################", width - done, "", (int)(sent * 100 / total),
		(double)sent / 1e6, (double)total / 1e6);
}

int main(int argc, char **argv)
{
	enum {
		OPT_SERVER = 256,
		OPT_TOKEN_FILE,
		OPT_DRY_RUN,
		OPT_FORCE,
		OPT_NO_EXTRACT,
		OPT_QUIET,
		OPT_RETRIES,
		OPT_VERSION
	};
	static const struct option longopts[] = {
	    {"server", required_argument, NULL, OPT_SERVER},
	    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
	    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"no-extract", no_argument, NULL, OPT_NO_EXTRACT},
	    {"quiet", no_argument, NULL, OPT_QUIET},
	    {"retries", required_argument, NULL, OPT_RETRIES},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	struct upload u = {.retries = 4};
	struct client_opts copts = {0};
	const char *env;
	int opt, err;

	if (argc > 1 && !strcmp(argv[1], "buildid"))
		return cmd_buildid(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "fold"))
		return cmd_fold(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "extract"))
		return cmd_extract(argc - 1, argv + 1);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	u.server = getenv("FLEETSYM_SERVER");
	env = getenv("FLEETSYM_TOKEN");
	if (env && *env)
		u.token = strdup(env);
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_SERVER: u.server = optarg; break;
		case OPT_TOKEN_FILE:
			free(u.token);
			u.token = read_token(optarg);
			if (!u.token) {
				fprintf(stderr, "fleetsym-upload: %s: %s\n", optarg,
					strerror(errno));
				return 2;
			}
			break;
		case OPT_DRY_RUN: u.dry_run = 1; break;
		case OPT_FORCE: u.force = 1; break;
		case OPT_NO_EXTRACT: u.no_extract = 1; break;
		case OPT_QUIET: u.quiet = 1; break;
		case OPT_RETRIES: u.retries = atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		case OPT_VERSION:
			version_print(stdout, "fleetsym-upload", VERSION_LIBS_UPLOAD);
			return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc || u.retries < 0 || u.retries > 20) {
		usage(stderr);
		return 2;
	}
	if (!u.server || !*u.server)
		u.server = "http://127.0.0.1:7070";
	copts.server = u.server;
	copts.token = u.token;
	copts.retries = u.retries;
	if (isatty(STDERR_FILENO) && !u.quiet)
		copts.progress = draw_progress;
	err = client_new(&copts, &u.client);
	if (err) {
		fprintf(stderr, "fleetsym-upload: %s\n", err_str(err));
		return 1;
	}
	for (int i = optind; i < argc; i++)
		walk(&u, argv[i], 0, 1);
	if (!u.quiet)
		printf("%d %s, %d already present, %d failed, %d skipped\n", u.uploaded,
		       u.dry_run ? "would be uploaded" : "uploaded", u.present, u.failed,
		       u.skipped);
	client_free(u.client);
	free(u.seen);
	free(u.token);
	return u.failed ? 1 : 0;
}
