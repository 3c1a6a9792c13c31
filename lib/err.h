/*
 * err - fleetsym's own error codes and their messages.
 *
 * Fallible functions return 0 or a negative errno. Codes that errno has no word for live here,
 * above ERR_BASE, in one X-macro list so that the enum and the messages cannot drift apart.
 */
#ifndef FLEETSYM_ERR_H
#define FLEETSYM_ERR_H

#define ERR_BASE 4000

#define ERR_LIST(X)                                                                                \
	X(ERR_NOTELF, "not an ELF file")                                                           \
	X(ERR_BADELF, "damaged or truncated ELF file")                                             \
	X(ERR_NOBUILDID, "ELF file has no build ID note (link with -Wl,--build-id)")               \
	X(ERR_BUILDID_MISMATCH, "build ID does not match")                                         \
	X(ERR_BADBUILDID, "build ID must be 2-64 hex digits")                                      \
	X(ERR_NODWARF, "no DWARF debug info")                                                      \
	X(ERR_BADDWARF, "damaged DWARF debug info")                                                \
	X(ERR_BADINDEX, "symbol index is damaged or of another version")                           \
	X(ERR_TOOBIG, "input exceeds a size limit")                                                \
	X(ERR_BADINPUT, "malformed input")                                                         \
	X(ERR_BADDEBUG, "debug file marked bad: reading it failed in the sandboxed worker")

enum err_code {
	ERR_FIRST_ = ERR_BASE,
#define ERR_ENUM_(name, msg) name,
	ERR_LIST(ERR_ENUM_)
#undef ERR_ENUM_
	    ERR_LAST_
};

/* Message for a negative (or positive) errno or ERR_* code. Returns a static string. */
const char *err_str(int err);

#endif
