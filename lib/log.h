/*
 * log - one level-gated logging function with a replaceable sink.
 *
 * Libraries never print: they call log_msg(); main() decides where lines go (stderr by default).
 */
#ifndef FLEETSYM_LOG_H
#define FLEETSYM_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

typedef void (*log_sink_fn)(enum log_level level, const char *line, void *ctx);

/* Messages above LEVEL are dropped. Default: LOG_WARN. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Replace the sink (NULL restores stderr). CTX is borrowed until the next call. */
void log_set_sink(log_sink_fn sink, void *ctx);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
