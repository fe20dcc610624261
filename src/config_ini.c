/* The INI text format shared by experiment files and rpu_config text (see
 * config_ini_impl.h for the grammar).
 *
 * Own reader instead of libinih: libinih hands its reader callback a buffer of a fixed
 * size compiled into the library (200 bytes in Debian's build), so longer lines were cut
 * and their rest read as another line (even inside a comment) and line numbers counted
 * pieces; its settings are process-wide variables in Debian's build, and its inline
 * comment rule differed from rpu_config_parse's. This reader takes whole lines of any
 * length from memory and counts real lines. */
#include "config_ini_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

static bool is_control(char c) {
    return (unsigned char)c < 0x20 || (unsigned char)c == 0x7f;
}

static bool is_comment_char(char c) {
    return c == ';' || c == '#';
}

void ini_open(ini_reader *r, const char *text, size_t len) {
    memset(r, 0, sizeof *r);
    r->p = text;
    r->end = text + len;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) r->p += 3;
}

void ini_close(ini_reader *r) {
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

/* Records "column N: message" for the character at `at` of the line starting at ls. */
static ini_token fail(ini_reader *r, const char *ls, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ini_token fail(ini_reader *r, const char *ls, const char *at, const char *fmt, ...) {
    int k = snprintf(r->err, sizeof r->err, "column %d: ", (int)(at - ls) + 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + k, sizeof r->err - (size_t)k, fmt, ap);
    va_end(ap);
    return INI_ERROR;
}

/* [s, e) trimmed of blanks. */
static void trim(const char **s, const char **e) {
    while (*s < *e && is_blank(**s))
        ++*s;
    while (*e > *s && is_blank((*e)[-1]))
        --*e;
}

/* The first control character (a tab counts) in [s, e), or NULL. */
static const char *control_in(const char *s, const char *e) {
    for (; s < e; ++s)
        if (is_control(*s)) return s;
    return NULL;
}

/* Makes room for n bytes in the line buffer. */
static bool reserve(ini_reader *r, size_t n) {
    if (n <= r->cap) return true;
    size_t cap = r->cap ? r->cap : 256;
    while (cap < n)
        cap *= 2;
    char *b = (char *)realloc(r->buf, cap);
    if (!b) {
        r->nomem = true;
        snprintf(r->err, sizeof r->err, "out of memory for a line of %zu bytes", n);
        return false;
    }
    r->buf = b;
    r->cap = cap;
    return true;
}

/* NULL if [s, e) after blanks is empty or a comment, else its first other character. */
static const char *text_after(const char *s, const char *e) {
    while (s < e && is_blank(*s))
        ++s;
    return s == e || is_comment_char(*s) ? NULL : s;
}

static ini_token section(ini_reader *r, const char *ls, const char *s, const char *e) {
    const char *close = memchr(s, ']', (size_t)(e - s));
    if (!close) return fail(r, ls, s - 1, "'[' without a closing ']'");
    const char *after = text_after(close + 1, e);
    if (after) return fail(r, ls, after, "text after the ']' of a section header");
    const char *ns = s, *ne = close;
    trim(&ns, &ne);
    if (ns == ne) return fail(r, ls, s - 1, "empty section name");
    const char *c = control_in(ns, ne);
    if (c) return fail(r, ls, c, "control character 0x%02x in the section name", (unsigned char)*c);
    if (!reserve(r, (size_t)(ne - ns) + 1)) return INI_ERROR;
    memcpy(r->buf, ns, (size_t)(ne - ns));
    r->buf[ne - ns] = '\0';
    r->name = r->buf;
    r->value = NULL;
    return INI_SECTION;
}

/* A quoted value from q (at the opening quote) into dst. */
static ini_token quoted(ini_reader *r, const char *ls, const char *q, const char *e, char *dst) {
    size_t n = 0;
    const char *p = q + 1;
    for (;; ++p) {
        if (p == e) return fail(r, ls, q, "quoted value without its closing '\"'");
        if (*p == '"') break;
        if (is_control(*p))
            return fail(r, ls, p, "control character 0x%02x in the value", (unsigned char)*p);
        if (*p == '\\') {
            if (p + 1 == e || (p[1] != '"' && p[1] != '\\'))
                return fail(r, ls, p,
                            "unknown escape in a quoted value (only \\\" and \\\\; write a "
                            "backslash as \\\\)");
            ++p;
        }
        dst[n++] = *p;
    }
    dst[n] = '\0';
    const char *after = text_after(p + 1, e);
    if (after) return fail(r, ls, after, "text after the closing '\"' of a quoted value");
    return INI_ENTRY;
}

static ini_token entry(ini_reader *r, const char *ls, const char *s, const char *e) {
    /* the key ends at the first '='; a comment before it makes the line a bad one */
    const char *eq = NULL;
    for (const char *p = s; p < e && !eq; ++p) {
        if (*p == '=')
            eq = p;
        else if (is_comment_char(*p) && p > s && is_blank(p[-1]))
            break;
    }
    if (!eq) return fail(r, ls, s, "expected [section] or key = value");
    const char *ks = s, *ke = eq;
    trim(&ks, &ke);
    if (ks == ke) return fail(r, ls, eq, "missing key before '='");
    const char *c = control_in(ks, ke);
    if (c) return fail(r, ls, c, "control character 0x%02x in the key", (unsigned char)*c);
    const size_t klen = (size_t)(ke - ks);
    if (!reserve(r, klen + 1 + (size_t)(e - eq) + 1)) return INI_ERROR;
    memcpy(r->buf, ks, klen);
    r->buf[klen] = '\0';
    char *dst = r->buf + klen + 1;
    r->name = r->buf;
    r->value = dst;

    const char *v = eq + 1;
    while (v < e && is_blank(*v))
        ++v;
    if (v < e && *v == '"') return quoted(r, ls, v, e, dst);
    const char *ve = v;
    while (ve < e && !(is_comment_char(*ve) && (ve == v || is_blank(ve[-1]))))
        ++ve;
    trim(&v, &ve);
    c = control_in(v, ve);
    if (c) return fail(r, ls, c, "control character 0x%02x in the value", (unsigned char)*c);
    memcpy(dst, v, (size_t)(ve - v));
    dst[ve - v] = '\0';
    return INI_ENTRY;
}

ini_token ini_next(ini_reader *r) {
    while (r->p < r->end) {
        const char *ls = r->p;
        const char *nl = memchr(ls, '\n', (size_t)(r->end - ls));
        size_t n = nl ? (size_t)(nl - ls) : (size_t)(r->end - ls);
        r->p = ls + n + (nl != NULL);
        ++r->line;
        if (n > 0 && ls[n - 1] == '\r') --n;
        const char *e = ls + n;
        const char *nul = memchr(ls, '\0', n);
        if (nul) return fail(r, ls, nul, "NUL byte");
        const char *s = ls;
        while (s < e && is_blank(*s))
            ++s;
        if (s == e || is_comment_char(*s)) continue;
        if (*s == '[') return section(r, ls, s + 1, e);
        return entry(r, ls, s, e);
    }
    return INI_END;
}

const char *ini_control_char(const char *s) {
    for (; *s; ++s)
        if (is_control(*s)) return s;
    return NULL;
}

/* True if ini_next would read v back from "key = v" unquoted. */
static bool bare_ok(const char *v) {
    size_t n = strlen(v);
    if (n == 0) return true;
    if (v[0] == '"' || is_blank(v[0]) || is_blank(v[n - 1]) || is_comment_char(v[0])) return false;
    for (size_t i = 1; i < n; ++i)
        if (is_comment_char(v[i]) && is_blank(v[i - 1])) return false;
    return true;
}

size_t ini_quote(char *out, size_t size, const char *v) {
    size_t n = 0;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (n + 1 < size) out[n] = (ch);                                                           \
        ++n;                                                                                       \
    } while (0)
    if (bare_ok(v)) {
        for (const char *p = v; *p; ++p)
            PUT(*p);
    } else {
        PUT('"');
        for (const char *p = v; *p; ++p) {
            if (*p == '"' || *p == '\\') PUT('\\');
            PUT(*p);
        }
        PUT('"');
    }
#undef PUT
    if (size > 0) out[n < size ? n : size - 1] = '\0';
    return n;
}

void ini_visible(char *out, size_t size, const char *s, size_t max) {
    if (size == 0) return;
    size_t n = 0, i = 0;
    for (; s[i] && i < max; ++i) {
        char esc[8];
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            snprintf(esc, sizeof esc, "\\n");
        else if (c == '\t')
            snprintf(esc, sizeof esc, "\\t");
        else if (c == '\r')
            snprintf(esc, sizeof esc, "\\r");
        else if (is_control((char)c))
            snprintf(esc, sizeof esc, "\\x%02x", c);
        else
            esc[0] = (char)c, esc[1] = '\0';
        size_t k = strlen(esc);
        if (n + k + 4 >= size) break;
        memcpy(out + n, esc, k);
        n += k;
    }
    if (s[i] && n + 3 < size) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}
