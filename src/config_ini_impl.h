/* Private: the INI text format shared by experiment files and rpu_config text.
 *
 * A text is a sequence of lines of any length separated by "\n" (a "\r" before it is
 * dropped); a UTF-8 byte order mark at its start is skipped. Each line is one of
 *   blank or comment  only spaces and tabs, or ';' or '#' as the first other character;
 *   section header    "[NAME]": NAME trimmed; after ']' only blanks and a comment;
 *   entry             "KEY = VALUE": KEY is the text before the first '=', trimmed, and
 *                     VALUE one of
 *                       bare    the text up to a comment, trimmed. A comment starts at a
 *                               ';' or '#' that begins the value or follows a space or
 *                               tab, so "a;b" and "x#1" are values, "a ;b" is "a";
 *                       quoted  '"' ... '"' with \" and \\ as the only escapes (nothing
 *                               else is special inside), then only blanks and a comment.
 * Outside comments every control character (a byte below 0x20 or 0x7f) is an error, and
 * a tab inside a name or a value too; in comments anything but a NUL byte is allowed.
 * ini_quote() writes any value without control characters so that ini_next() reads back
 * exactly that value, which makes texts written with it a fixed point of reading.
 *
 * Nothing here allocates except the reader's line buffer; no static state. */
#ifndef RPUSIM_CONFIG_INI_IMPL_H
#define RPUSIM_CONFIG_INI_IMPL_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    INI_END = 0, /* no more lines */
    INI_SECTION, /* name: the section name */
    INI_ENTRY,   /* name: the key, value: the value (unquoted) */
    INI_ERROR    /* err: what is wrong with line `line` (no location); nomem: out of memory */
} ini_token;

typedef struct {
    const char *p, *end; /* the text not read yet */
    int line;            /* number of the line last returned (1-based) */
    char *buf;           /* holds name and value of the last line */
    size_t cap;
    const char *name, *value;
    bool nomem;
    char err[200];
} ini_reader;

/* Starts reading text[0, len) (len bytes, NUL bytes included: they are errors). */
void ini_open(ini_reader *r, const char *text, size_t len);
/* The next section header or entry; blank and comment lines are skipped. */
ini_token ini_next(ini_reader *r);
void ini_close(ini_reader *r);

/* The first control character in s (a byte below 0x20 or 0x7f), or NULL. */
const char *ini_control_char(const char *s);

/* Writes value v (no control characters) as it must appear after "key = ": bare when
 * ini_next reads that back as v, quoted otherwise. out gets at most size bytes
 * (NUL-terminated when size > 0; out may be NULL when size is 0). Returns the length of
 * the whole text, as snprintf does. */
size_t ini_quote(char *out, size_t size, const char *v);

/* s for a message: at most max bytes of it, control characters as \n, \t, \xHH, and
 * "..." when cut. out gets at most size bytes, NUL-terminated. */
void ini_visible(char *out, size_t size, const char *s, size_t max);

#endif
