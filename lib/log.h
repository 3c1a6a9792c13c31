/*
 * log - one level-gated logging function with a replaceable sink.
 *
 * Libraries never print: they call log_msg(); main() decides where lines go (stderr by default).
 */
#ifndef FLEETSYM_LOG_H
#define FLEETSYM_LOG_H

/* Prefixed, as libbpf's LIBBPF_WARN: <syslog.h> defines LOG_INFO and LOG_DEBUG. */
enum log_level { FS_LOG_ERROR, FS_LOG_WARN, FS_LOG_INFO, FS_LOG_DEBUG };

/* The unprefixed names, for agent/ only until it moves over (the Makefile sets the macro for
 * agent/ objects); never together with <syslog.h>. */
typedef void (*log_sink_fn)(enum log_level level, const char *line, void *ctx);

/* Messages above LEVEL are dropped. Default: FS_LOG_WARN. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Replace the sink (NULL restores stderr). CTX is borrowed until the next call. */
void log_set_sink(log_sink_fn sink, void *ctx);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
