/* Tests of experiment files and --set overrides (include/rpusim/net.h; issue 13, defects 4-7
 * and 9). Parsing is local and every rank runs it; the rpu_train cases are collective.
 * Scratch files go under RPUSIM_EXP_TMP/np<P> and are removed at the end.
 *
 * 1. Long lines (defect 4): comments of 150..5000 bytes whose tail reads "epochs = 3" leave
 *    epochs at its default; a 250-byte checkpoint path is read whole; a value of exactly
 *    the key's limit (511 bytes for paths) is accepted from the file and from --set alike,
 *    one byte more is refused by both, the file's message naming the real line; errors
 *    after a 1000-byte line name real line numbers; an [rpu] list value of more than 512
 *    bytes is read.
 * 2. Layer names (defects 5, 7): two 50-character names with a 43-character common prefix
 *    give two layers (rpu_net_create: two analog layers with those names); 63 characters
 *    are accepted, 64 refused naming the line; names with characters outside
 *    [A-Za-z0-9_.-], "." and ".." are refused at parse time, with or without a
 *    checkpoint; a section given twice is refused naming both lines, a key given twice too.
 * 3. The value syntax (one grammar for files, rpu_config text and the stored text): a
 *    table of lines with the value each must give (';' and '#' start a comment at the
 *    start of a value or after a blank, quoted values with \" and \\) and of lines that
 *    must be refused with their column; CRLF, a BOM, NUL bytes in a file, tabs.
 * 4. --set (defects 6, 9): control characters refused (the message shows them escaped and
 *    names --set); values taken literally; layer names with dots; a layer the file lacks
 *    refused naming --set, the layer and the file's layers; malformed overrides named;
 *    rpu.kind and rpu.device.type given by --set go before the [rpu] keys they reset.
 * 5. Fixed point (defect 6), over every [run], [data], [layer.NAME] and [loss] key (the
 *    test's lists are checked against the parser's own "accepted:" lists) and every
 *    rpu_config key, each set by --set and from a file with values that need care (';',
 *    '#', quotes, backslashes, '=', '[', spaces, non-ASCII, the longest accepted value):
 *    the value arrives unchanged, and re-reading the stored text gives the same experiment
 *    (exp_same) and the same text; also all keys in one experiment.
 * 6. Before the first step (defect 7, collective): run.checkpoint in a directory that does
 *    not exist is created and the checkpoint written; a checkpoint directory that cannot be
 *    created (a regular file on its path) or a checkpoint path that is a directory stop
 *    rpu_train with RPU_ERR_IO naming the key and its line before any progress or epoch
 *    callback; an experiment text beyond what checkpoints store is refused at parse.
 * 7. [layer.NAME] split = tile_array (collective): the network's layers get aihwkit 1.1's
 *    tile-array split (grid of cut kernel blocks), whose bias is digital even with
 *    mapping.digital_bias = false when the layer needs several tiles, analog when it fits
 *    one; mapped stays the default; an unknown split is refused naming file, line and key. */
#define _XOPEN_SOURCE 700
#include "exp_same.h"
#include "experiment_impl.h"
#include "net_io_impl.h"
#include "rpusim/layer.h"
#include "rpusim/net.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef RPUSIM_EXP_TMP
#error "RPUSIM_EXP_TMP (a scratch directory in the build tree) must be defined"
#endif

static char g_tmp[1024]; /* RPUSIM_EXP_TMP/np<P> */

/* ------------------------------------------------------------------ helpers */

static const char *FC = "[layer.fc]\ntype = linear\nout = 3\n";

static bool has(const char *msg, const char *word) {
    return strstr(msg, word) != NULL;
}

/* "src:line:" in msg, not followed by another digit */
static bool has_loc(const char *msg, const char *src, int line) {
    char want[1300];
    snprintf(want, sizeof want, "%.1200s:%d:", src, line);
    return has(msg, want);
}

static rpu_experiment *parse_ok(const char *text, const char *const *ov, int n, const char *label) {
    rpu_experiment *e = NULL;
    rpu_status s = rpu_experiment_parse(text, "exp.ini", ov, n, &e);
    CHECK(s == RPU_OK && e, "%s: parse: %s", label, rpu_last_error());
    return e;
}

/* Parse must fail with RPU_ERR_CONFIG; returns the message (static storage of the thread). */
static const char *parse_bad(const char *text, const char *const *ov, int n, const char *label) {
    rpu_experiment *e = NULL;
    rpu_clear_error();
    rpu_status s = rpu_experiment_parse(text, "exp.ini", ov, n, &e);
    CHECK(s == RPU_ERR_CONFIG && !e, "%s: status %s, want RPU_ERR_CONFIG (%s)", label,
          rpu_status_name(s), rpu_last_error());
    rpu_experiment_free(&e);
    return rpu_last_error();
}

/* The fixed point: the stored text of e read again gives the same experiment and text. */
static void check_fixed_point(const rpu_experiment *e, const char *label) {
    const char *t = rpu_experiment_text(e);
    rpu_experiment *e2 = NULL;
    rpu_status s = rpu_experiment_parse(t, "stored.ini", NULL, 0, &e2);
    CHECK(s == RPU_OK, "%s: the stored text does not parse: %s\n%s", label, rpu_last_error(), t);
    if (s != RPU_OK) return;
    char why[200] = "";
    CHECK(exp_same(e, e2, why, sizeof why), "%s: re-reading the stored text changes %s\n%s", label,
          why, t);
    CHECK(!strcmp(t, rpu_experiment_text(e2)),
          "%s: the stored text changes on re-reading:\n%s\n--\n%s", label, t,
          rpu_experiment_text(e2));
    rpu_experiment_free(&e2);
}

/* The test's own writer of a quoted value (always quoted; \\ and \" escaped). */
static void quote(char *out, size_t n, const char *v) {
    size_t k = 0;
    out[k++] = '"';
    for (; *v && k + 3 < n; ++v) {
        if (*v == '"' || *v == '\\') out[k++] = '\\';
        out[k++] = *v;
    }
    out[k++] = '"';
    out[k] = '\0';
}

static char *xstrdup_rep(char c, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ------------------------------------------------------------------ 1. long lines */

static void test_long_lines(void) {
    /* a comment whose tail, read as another line, would set epochs */
    const size_t lens[] = {150, 198, 199, 200, 201, 250, 398, 400, 1000, 5000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; ++i) {
        size_t n = lens[i];
        char *c = xstrdup_rep('x', n);
        c[0] = i % 2 ? '#' : ';';
        memcpy(c + n - 10, "epochs = 3", 10);
        char *t = malloc(n + 200);
        snprintf(t, n + 200, "[run]\n%s\nseed = 5\n%s", c, FC);
        char label[64];
        snprintf(label, sizeof label, "%zu-byte comment", n);
        rpu_experiment *e = parse_ok(t, NULL, 0, label);
        if (e) {
            CHECK(rpu_experiment_run(e)->epochs == 1, "%s: epochs %d, want the default 1", label,
                  rpu_experiment_run(e)->epochs);
            CHECK(rpu_experiment_run(e)->seed == 5, "%s: seed %llu, want 5", label,
                  (unsigned long long)rpu_experiment_run(e)->seed);
            check_fixed_point(e, label);
        }
        rpu_experiment_free(&e);
        free(c);
        free(t);
    }

    /* a 250-byte path, read whole */
    char path[600], t[2000];
    snprintf(path, sizeof path, "/lustre/orion/proj-shared/%s/ck.h5",
             "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijk"
             "lmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuv"
             "wxyz0123456789abcdefghijklmnopqrstuvwx0123456789abcd");
    CHECK(strlen(path) == 250, "path length %zu", strlen(path));
    snprintf(t, sizeof t, "[run]\ncheckpoint = %s\n%s", path, FC);
    rpu_experiment *e = parse_ok(t, NULL, 0, "250-byte path");
    if (e) {
        CHECK(!strcmp(rpu_experiment_run(e)->checkpoint, path), "250-byte path: got '%s'",
              rpu_experiment_run(e)->checkpoint);
        check_fixed_point(e, "250-byte path");
    }
    rpu_experiment_free(&e);

    /* the value limit is the same from the file and from --set: 511 bytes for paths */
    for (int extra = 0; extra <= 1; ++extra) {
        char *v = xstrdup_rep('p', 511 + (size_t)extra);
        char *tf = malloc(2000), *ov = malloc(1000);
        snprintf(tf, 2000, "[run]\nseed = 2\n\ncheckpoint = %s\n%s", v, FC);
        snprintf(ov, 1000, "run.checkpoint=%s", v);
        const char *ovs[] = {ov};
        if (!extra) {
            e = parse_ok(tf, NULL, 0, "511-byte path in the file");
            CHECK(e && strlen(rpu_experiment_run(e)->checkpoint) == 511, "511 bytes from the file");
            rpu_experiment_free(&e);
            e = parse_ok(FC, ovs, 1, "511-byte path by --set");
            CHECK(e && strlen(rpu_experiment_run(e)->checkpoint) == 511, "511 bytes by --set");
            rpu_experiment_free(&e);
        } else {
            const char *m = parse_bad(tf, NULL, 0, "512-byte path in the file");
            CHECK(has_loc(m, "exp.ini", 4) && has(m, "checkpoint") && has(m, "511"),
                  "512-byte path in the file: names exp.ini:4, the key and 511: %s", m);
            m = parse_bad(FC, ovs, 1, "512-byte path by --set");
            CHECK(has(m, "--set run.checkpoint") && has(m, "511"),
                  "512-byte path by --set: names the override and 511: %s", m);
        }
        free(v);
        free(tf);
        free(ov);
    }

    /* real line numbers after a long line */
    {
        char *c = xstrdup_rep('y', 1000);
        c[0] = '#';
        char *tl = malloc(1200);
        snprintf(tl, 1200, "[run]\n%s\nepoch = 3\n%s", c, FC);
        const char *m = parse_bad(tl, NULL, 0, "error after a 1000-byte line");
        CHECK(has_loc(m, "exp.ini", 3) && has(m, "epoch"), "error after a long line: exp.ini:3: %s",
              m);
        free(c);
        free(tl);
    }

    /* an [rpu] list longer than 512 bytes (64 elements) */
    {
        char list[2048] = "[";
        for (int k = 0; k < 64; ++k)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s0.%09d", k ? ", " : "",
                     123456789 + k);
        strcat(list, "]");
        CHECK(strlen(list) > 512, "list length %zu", strlen(list));
        char *tl = malloc(4096);
        snprintf(tl, 4096,
                 "[rpu]\nkind = single\ndevice.type = piecewise_step\ndevice.piecewise_up = %s\n"
                 "device.piecewise_down = %s\n%s",
                 list, list, FC);
        e = parse_ok(tl, NULL, 0, "64-element list");
        if (e) {
            const rpu_config *c = rpu_experiment_config(e);
            CHECK(c->device.n_piecewise_up == 64 && c->device.piecewise_up[63] == 0.123456852f,
                  "64-element list: n %d, last %.9g", c->device.n_piecewise_up,
                  (double)c->device.piecewise_up[63]);
            check_fixed_point(e, "64-element list");
        }
        rpu_experiment_free(&e);
        free(tl);
    }
}

/* ------------------------------------------------------------------ 2. layer names */

static void test_layer_names(void) {
    const char *p43 = "a_rather_long_layer_name_prefix_of_43_chars"; /* 43 */
    CHECK(strlen(p43) == 43, "prefix length %zu", strlen(p43));
    char n1[80], n2[80], t[1200];
    snprintf(n1, sizeof n1, "%s_conv1", p43);
    snprintf(n2, sizeof n2, "%s_dense", p43);
    snprintf(t, sizeof t,
             "[rpu]\nkind = floating_point\n[layer.%s]\ntype = conv2d\nout = 2\nkernel = 3\n"
             "[layer.flat]\ntype = flatten\n[layer.%s]\ntype = linear\nout = 3\n",
             n1, n2);
    rpu_experiment *e = parse_ok(t, NULL, 0, "two long names");
    if (e) {
        CHECK(e->n_layers == 3, "two long names: %d layers, want 3", e->n_layers);
        rpu_net *net = NULL;
        const int sp[2] = {5, 5};
        CHECK_OK(rpu_net_create(MPI_COMM_WORLD, e, 1, 2, sp, &net));
        if (net) {
            CHECK(rpu_net_analog_count(net) == 2, "two long names: %d analog layers",
                  rpu_net_analog_count(net));
            CHECK(!strcmp(rpu_net_analog_name(net, 0), n1) &&
                      !strcmp(rpu_net_analog_name(net, 1), n2),
                  "two long names: layers %s, %s", rpu_net_analog_name(net, 0),
                  rpu_net_analog_name(net, 1));
        }
        rpu_net_destroy(&net);
        check_fixed_point(e, "two long names");
    }
    rpu_experiment_free(&e);

    char n63[70], n64[70];
    memset(n63, 'n', 63), n63[63] = '\0';
    memset(n64, 'n', 64), n64[64] = '\0';
    snprintf(t, sizeof t, "[run]\nseed = 1\n[layer.%s]\ntype = linear\nout = 3\n", n63);
    e = parse_ok(t, NULL, 0, "63-character name");
    CHECK(e && !strcmp(e->layers[0].name, n63), "63-character name kept");
    rpu_experiment_free(&e);
    snprintf(t, sizeof t, "[run]\nseed = 1\n[layer.%s]\ntype = linear\nout = 3\n", n64);
    const char *m = parse_bad(t, NULL, 0, "64-character name");
    CHECK(has_loc(m, "exp.ini", 3) && has(m, "63"), "64-character name: exp.ini:3 and 63: %s", m);

    /* names checkpoints cannot store: refused at parse, checkpoint or not */
    const char *bad[] = {"conv 1", "a/b", "x:y", "ü", ".", "..", "a,b", "q\"r"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        for (int ck = 0; ck <= 1; ++ck) {
            snprintf(t, sizeof t, "[run]\ncheckpoint = %s\n\n[layer.%s]\ntype = linear\nout = 3\n",
                     ck ? "ck.h5" : "", bad[i]);
            char label[80];
            snprintf(label, sizeof label, "layer name '%s'%s", bad[i],
                     ck ? " with a checkpoint" : "");
            m = parse_bad(t, NULL, 0, label);
            CHECK(has_loc(m, "exp.ini", 4) && has(m, "A-Za-z0-9_.-"),
                  "%s: names exp.ini:4 and the accepted characters: %s", label, m);
        }
    }
    /* accepted: every allowed character, dots too */
    e = parse_ok("[layer.Az09_.-x]\ntype = linear\nout = 3\n", NULL, 0, "name of every class");
    rpu_experiment_free(&e);

    /* never merged: a section or a key given twice */
    m = parse_bad("[layer.fc]\ntype = conv2d\nout = 3\n\n[layer.fc]\ntype = linear\nout = 3\n",
                  NULL, 0, "a layer section twice");
    CHECK(has_loc(m, "exp.ini", 5) && has(m, "line 1"), "a layer twice: lines 5 and 1: %s", m);
    m = parse_bad("[run]\nseed = 1\n[run]\nepochs = 2\n[layer.fc]\ntype = linear\nout = 3\n", NULL,
                  0, "[run] twice");
    CHECK(has_loc(m, "exp.ini", 3) && has(m, "line 1"), "[run] twice: lines 3 and 1: %s", m);
    m = parse_bad("[run]\nepochs = 2\nseed = 1\nepochs = 3\n[layer.fc]\ntype = linear\nout = 3\n",
                  NULL, 0, "a key twice");
    CHECK(has_loc(m, "exp.ini", 4) && has(m, "line 2") && has(m, "epochs"),
          "a key twice: lines 4 and 2: %s", m);
    /* a layer section without keys is a layer without type, not dropped */
    m = parse_bad("[layer.empty]\n[layer.fc]\ntype = linear\nout = 3\n", NULL, 0, "empty layer");
    CHECK(has_loc(m, "exp.ini", 1) && has(m, "empty") && has(m, "no type"), "empty layer: %s", m);
}

/* ------------------------------------------------------------------ 3. value syntax */

static void test_value_syntax(void) {
    /* line after "checkpoint = " -> the value */
    const struct {
        const char *line, *want;
    } good[] = {
        {"a;b.h5", "a;b.h5"},
        {"x#1.h5", "x#1.h5"},
        {"a.h5 ;comment", "a.h5"},
        {"a.h5\t# comment", "a.h5"},
        {"a.h5   ", "a.h5"},
        {";all comment", ""},
        {"", ""},
        {"a = b", "a = b"},
        {"[x]", "[x]"},
        {"back\\slash\\", "back\\slash\\"},
        {"mid\"quote", "mid\"quote"},
        {"\"a ;b\"", "a ;b"},
        {"\"a #b\" ; comment", "a #b"},
        {"\" padded \"", " padded "},
        {"\"q\\\"r\\\\s\"", "q\"r\\s"},
        {"\"\"", ""},
        {"\"semi;colon\"#c", "semi;colon"},
        {"ümlaut/日本.h5", "ümlaut/日本.h5"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; ++i) {
        char t[600];
        snprintf(t, sizeof t, "[run]\ncheckpoint = %s\n%s", good[i].line, FC);
        char label[120];
        snprintf(label, sizeof label, "value syntax '%s'", good[i].line);
        rpu_experiment *e = parse_ok(t, NULL, 0, label);
        if (e) {
            CHECK(!strcmp(rpu_experiment_run(e)->checkpoint, good[i].want),
                  "%s: got '%s', want '%s'", label, rpu_experiment_run(e)->checkpoint,
                  good[i].want);
            check_fixed_point(e, label);
        }
        rpu_experiment_free(&e);
    }
    /* refused lines (line 2) and the column named */
    const struct {
        const char *line, *col, *word;
    } bad[] = {
        {"checkpoint = \"abc", "column 14", "closing"},
        {"checkpoint = \"a\" b", "column 18", "after the closing"},
        {"checkpoint = \"a\\qb\"", "column 16", "escape"},
        {"checkpoint = a\tb", "column 15", "0x09"},
        {"checkpoint = a\x7f", "column 15", "0x7f"},
        {"checkpoint = a\rb", "column 15", "0x0d"},
        {"check\x01point = a", "column 6", "0x01"},
        {"checkpoint a.h5", "column 1", "key = value"},
        {"checkpoint ; = a.h5", "column 1", "key = value"},
        {" = a.h5", "column 2", "missing key"},
        {"[layer.x] y", "column 11", "after the ']'"},
        {"[layer.x", "column 1", "closing ']'"},
        {"[  ]", "column 1", "empty section"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        char t[600];
        snprintf(t, sizeof t, "[run]\n%s\n%s", bad[i].line, FC);
        char label[120];
        snprintf(label, sizeof label, "bad line %zu", i);
        const char *m = parse_bad(t, NULL, 0, label);
        CHECK(has_loc(m, "exp.ini", 2) && has(m, bad[i].col) && has(m, bad[i].word),
              "%s: names exp.ini:2, %s and '%s': %s", label, bad[i].col, bad[i].word, m);
    }
    /* CRLF line ends and a byte order mark */
    rpu_experiment *e =
        parse_ok("\xEF\xBB\xBF[run]\r\nepochs = 4\r\n[layer.fc]\r\ntype = linear\r\n"
                 "out = 3 ; three\r\n",
                 NULL, 0, "CRLF + BOM");
    CHECK(e && rpu_experiment_run(e)->epochs == 4, "CRLF + BOM: epochs");
    rpu_experiment_free(&e);
    /* comments are free text, control characters and all */
    e = parse_ok("# tab\there, form feed \f, DEL \x7f\n[layer.fc]\ntype = linear\nout = 3\n", NULL,
                 0, "control characters in a comment");
    rpu_experiment_free(&e);

    /* a NUL byte in a file: refused with its line */
    char path[1200];
    snprintf(path, sizeof path, "%s/nul-%d.ini", g_tmp, tl_rank());
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "write %s", path);
    if (f) {
        static const char txt[] = "[run]\nseed = 1\n# a\0b\n[layer.fc]\ntype = linear\nout = 3\n";
        fwrite(txt, 1, sizeof txt - 1, f);
        fclose(f);
        rpu_clear_error();
        CHECK_STATUS(rpu_experiment_load(path, NULL, 0, &e), RPU_ERR_CONFIG);
        CHECK(has_loc(rpu_last_error(), path, 3) && has(rpu_last_error(), "NUL"),
              "NUL byte: names %s:3: %s", path, rpu_last_error());
        remove(path);
    }

    /* a directory given as the experiment file: the reason is named */
    rpu_clear_error();
    CHECK_STATUS(rpu_experiment_load(g_tmp, NULL, 0, &e), RPU_ERR_IO);
    CHECK(has(rpu_last_error(), g_tmp) && has(rpu_last_error(), "directory"),
          "a directory as the experiment file: %s", rpu_last_error());

    /* rpu_config_parse reads the same grammar, lines of any length */
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    char *big = malloc(20000);
    char *cm = xstrdup_rep('z', 12000);
    cm[0] = ';';
    snprintf(big, 20000, "%s\nforward.out_noise = 0.25 # note\nbackward.out_noise = \"0.5\"\n", cm);
    CHECK_OK(rpu_config_parse(&c, big, "long.cfg"));
    CHECK(c.forward.out_noise == 0.25f && c.backward.out_noise == 0.5f,
          "rpu_config_parse after a 12000-byte comment: %g %g", (double)c.forward.out_noise,
          (double)c.backward.out_noise);
    CHECK_STATUS(rpu_config_parse(&c, "kind = single\nforward.out_noise = 0.1\x01\n", "cc.cfg"),
                 RPU_ERR_CONFIG);
    CHECK(has(rpu_last_error(), "cc.cfg:2:"), "control character in config text: %s",
          rpu_last_error());
    free(cm);
    free(big);
}

/* ------------------------------------------------------------------ 4. --set */

static void test_overrides(void) {
    const char *cases[][2] = {
        {"run.checkpoint=ck.h5\n[run]\nepochs=2", "\\n[run]\\nepochs=2"},
        {"run.checkpoint=a\tb", "\\t"},
        {"run.checkpoint=a\rb", "\\r"},
        {"run.checkpoint=a\x7f", "\\x7f"},
        {"run.epochs=2\n", "\\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        const char *ov[] = {cases[i][0]};
        char label[60];
        snprintf(label, sizeof label, "--set with a control character %zu", i);
        const char *m = parse_bad(FC, ov, 1, label);
        CHECK(has(m, "--set") && has(m, "control character") && has(m, cases[i][1]) &&
                  !strchr(m, '\n') && !strchr(m, '\t') && !strchr(m, '\r'),
              "%s: names --set, shows '%s', has no raw control character: %s", label, cases[i][1],
              m);
    }

    /* literal values: no comment, no quote processing; blanks around dropped */
    const char *lit[][2] = {{"run.checkpoint=a ;b.h5", "a ;b.h5"},
                            {"run.checkpoint= \"q\" ", "\"q\""},
                            {"run.checkpoint=x # y", "x # y"},
                            {"run.checkpoint=", ""},
                            {" run.checkpoint = c.h5", "c.h5"}};
    for (size_t i = 0; i < sizeof lit / sizeof lit[0]; ++i) {
        const char *ov[] = {lit[i][0]};
        rpu_experiment *e = parse_ok(FC, ov, 1, lit[i][0]);
        if (e) {
            CHECK(!strcmp(rpu_experiment_run(e)->checkpoint, lit[i][1]), "--set '%s': got '%s'",
                  lit[i][0], rpu_experiment_run(e)->checkpoint);
            check_fixed_point(e, lit[i][0]);
        }
        rpu_experiment_free(&e);
    }

    /* layer names with dots; a layer the file does not have */
    const char *dotted = "[layer.block1.conv]\ntype = conv2d\nout = 2\nkernel = 3\n"
                         "[layer.block1.flat]\ntype = flatten\n"
                         "[layer.fc]\ntype = linear\nout = 3\n";
    const char *ovd[] = {"layer.block1.conv.out=7", "layer.fc.bias=false"};
    rpu_experiment *e = parse_ok(dotted, ovd, 2, "--set on a dotted layer name");
    CHECK(e && e->layers[0].out == 7 && !e->layers[2].bias && e->n_layers == 3,
          "--set on a dotted layer name: out %d, bias %d, %d layers", e ? e->layers[0].out : -1,
          e ? e->layers[2].bias : -1, e ? e->n_layers : -1);
    if (e) check_fixed_point(e, "--set on a dotted layer name");
    rpu_experiment_free(&e);
    const char *nope[] = {"layer.nope.out=3"};
    const char *m = parse_bad(dotted, nope, 1, "--set layer.nope.out=3");
    CHECK(has(m, "--set 'layer.nope.out=3'") && has(m, "[layer.nope]") && has(m, "exp.ini") &&
              has(m, "block1.conv, block1.flat, fc") && !has(m, ":0:"),
          "--set on a missing layer: names --set, the layer, the file and its layers: %s", m);

    /* malformed overrides name themselves */
    const char *malformed[][2] = {
        {"epochs=3", "section.key=value"},
        {"run.epochs", "section.key=value"},
        {"=3", "section.key=value"},
        {"run.=3", "section.key=value"},
        {"layer.fc=3", "layer.NAME.key"},
        {"layer.fc.=3", "layer.NAME.key"},
        {"run. epochs=3", "' '"},
        {"optim.lr=0.1", "unknown section [optim]"},
        {"run.epoch=3", "unknown key 'epoch'"},
        {"rpu.forward.out_noize=0.1", "out_noize"},
        {"run.epochs=-1", "--set run.epochs"},
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; ++i) {
        const char *ov[] = {malformed[i][0]};
        m = parse_bad(FC, ov, 1, malformed[i][0]);
        CHECK((has(m, "--set") || has(m, "exp.ini (--set")) && has(m, malformed[i][1]),
              "--set '%s': names --set and '%s': %s", malformed[i][0], malformed[i][1], m);
    }

    /* rpu.kind and rpu.device.type from --set go before the keys they reset */
    const char *rk = "[rpu]\nforward.out_noise = 0.125\ndevice.dw_min = 0.0625\n";
    char t[600];
    snprintf(t, sizeof t, "%s%s", rk, FC);
    const char *ovk[] = {"rpu.device.type=linear_step", "rpu.kind=single"};
    e = parse_ok(t, ovk, 2, "--set rpu.kind");
    if (e) {
        const rpu_config *c = rpu_experiment_config(e);
        CHECK(c->kind == RPU_KIND_SINGLE && c->device.type == RPU_DEVICE_LINEAR_STEP &&
                  c->forward.out_noise == 0.125f && c->device.dw_min == 0.0625f,
              "--set rpu.kind/device.type keep the file's keys: kind %d type %d out_noise %g "
              "dw_min %g",
              c->kind, c->device.type, (double)c->forward.out_noise, (double)c->device.dw_min);
        CHECK(has(rpu_experiment_text(e),
                  "[rpu]\nkind = single\ndevice.type = linear_step\nforward.out_noise = 0.125\n"),
              "--set rpu.kind: stored order: %s", rpu_experiment_text(e));
        check_fixed_point(e, "--set rpu.kind");
    }
    rpu_experiment_free(&e);
    /* a --set replaces the file's entry in place, its messages name the override */
    const char *ovr[] = {"rpu.device.dw_min=-1"};
    m = parse_bad(t, ovr, 1, "--set replaces in place");
    CHECK(has(m, "(--set rpu.device.dw_min)") && has(m, "device.dw_min"), "--set value error: %s",
          m);
}

/* ------------------------------------------------------------------ 5. fixed point */

/* The key list in an "unknown key" message of a section: "(accepted: a, b, c)". */
static int accepted_keys(const char *section_text, char keys[][40], int max) {
    rpu_experiment *e = NULL;
    rpu_experiment_parse(section_text, "k.ini", NULL, 0, &e);
    rpu_experiment_free(&e);
    const char *a = strstr(rpu_last_error(), "(accepted: ");
    int n = 0;
    if (!a) return 0;
    a += strlen("(accepted: ");
    while (*a && *a != ')' && n < max) {
        size_t k = strcspn(a, ",)");
        snprintf(keys[n++], 40, "%.*s", (int)k, a);
        a += k;
        if (*a == ',') a += 2;
    }
    return n;
}

/* Values that need care in a text value. */
static const char *const careful[] = {
    "a ;b",        "a #b",        ";lead",       "#lead",   "x;y#z", "\"quoted\"",
    "ends\"",      "mid\"dle",    "back\\slash", "trail\\", "a = b", "[not a section]",
    "two  spaces", "ümlaut/日本", "x ; \" # \\", NULL};

typedef struct {
    const char *section, *key;
    const char *values[4]; /* NULL-terminated; "*" = the careful strings */
} key_case;

static const key_case run_keys[] = {
    {"run", "seed", {"0", "18446744073709551615", NULL}},
    {"run", "epochs", {"0", "7", NULL}},
    {"run", "batch_size", {"1", "64", NULL}},
    {"run", "lr", {"0.5", "1e-3", NULL}},
    {"run", "lr_schedule", {"constant", "step", NULL}},
    {"run", "lr_step", {"3", NULL}},
    {"run", "lr_gamma", {"0.25", NULL}},
    {"run", "momentum", {"0.9", NULL}},
    {"run", "output_dir", {"*", NULL}},
    {"run", "checkpoint", {"*", "", NULL}},
    {"run", "checkpoint_every", {"2", NULL}},
    {"run", "keep_checkpoints", {"3", NULL}},
    {"run", "progress_every", {"5", NULL}},
    {"data", "dataset", {"digits", "idx", "fashion_mnist", "synthetic"}},
    {"data", "path", {"*", NULL}},
    {"data", "synthetic_n", {"100", NULL}},
    {"data", "synthetic_classes", {"3", NULL}},
    {"data", "synthetic_size", {"6", NULL}},
    {"data", "synthetic_channels", {"3", NULL}},
    {"layer.c1", "type", {"conv2d", "linear", "dropout", NULL}},
    {"layer.c1", "out", {"5", NULL}},
    {"layer.c1", "kernel", {"3", NULL}},
    {"layer.c1", "stride", {"2", NULL}},
    {"layer.c1", "padding", {"1", NULL}},
    {"layer.c1", "dilation", {"2", NULL}},
    {"layer.c1", "groups", {"1", NULL}},
    {"layer.c1", "bias", {"false", "no", "1", NULL}},
    {"layer.c1", "p", {"0.25", NULL}},
    {"layer.c1", "split", {"tile_array", "mapped", NULL}},
    {"loss", "type", {"cross_entropy", NULL}},
};

static const char *BASE =
    "[layer.c1]\ntype = conv2d\nout = 4\n\n[layer.fc]\ntype = linear\nout = 3\n";

/* One key = value set by --set and from a file (quoted by the test): it must arrive
 * unchanged (checked through get() when given) and the stored text must be a fixed point. */
static void one_value(const char *section, const char *key, const char *value,
                      const char *(*get)(const rpu_experiment *, const char *), const char *label) {
    size_t vl = strlen(value);
    char *ov = malloc(vl + 200), *t = malloc(2 * vl + 400), *q = malloc(2 * vl + 8);
    snprintf(ov, vl + 200, "%s.%s=%s", section, key, value);
    quote(q, 2 * vl + 8, value);
    if (strncmp(section, "layer.", 6))
        snprintf(t, 2 * vl + 400, "[%s]\n%s = %s\n%s", section, key, q, BASE);
    else /* the layer's type and out, unless the key is one of them */
        snprintf(t, 2 * vl + 400, "[%s]\n%s%s%s = %s\n[layer.fc]\ntype = linear\nout = 3\n",
                 section, strcmp(key, "type") ? "type = conv2d\n" : "",
                 strcmp(key, "out") ? "out = 4\n" : "", key, q);
    for (int via_file = 0; via_file <= 1; ++via_file) {
        const char *ovs[] = {ov};
        rpu_experiment *e = NULL;
        rpu_status s = via_file ? rpu_experiment_parse(t, "exp.ini", NULL, 0, &e)
                                : rpu_experiment_parse(BASE, "exp.ini", ovs, 1, &e);
        CHECK(s == RPU_OK, "%s (%s): %s", label, via_file ? "file" : "--set", rpu_last_error());
        if (s != RPU_OK) continue;
        if (get) {
            const char *got = get(e, key);
            CHECK(got && !strcmp(got, value), "%s (%s): got '%s', want '%s'", label,
                  via_file ? "file" : "--set", got ? got : "(null)", value);
        }
        check_fixed_point(e, label);
        rpu_experiment_free(&e);
    }
    free(ov);
    free(t);
    free(q);
}

static const char *get_run_text(const rpu_experiment *e, const char *key) {
    const rpu_run_params *r = rpu_experiment_run(e);
    if (!strcmp(key, "output_dir")) return r->output_dir;
    if (!strcmp(key, "checkpoint")) return r->checkpoint;
    if (!strcmp(key, "path")) return r->data_path;
    if (!strcmp(key, "dataset")) return r->dataset;
    return NULL;
}

static const char *get_rpu(const rpu_experiment *e, const char *key) {
    static _Thread_local char buf[8192];
    if (rpu_config_get(rpu_experiment_config(e), key, buf, sizeof buf) != RPU_OK) return NULL;
    return buf;
}

static void test_fixed_point(void) {
    /* the test's key lists are the parser's */
    const char *probe[][2] = {{"run", "[run]\nbogus = 1\n"},
                              {"data", "[data]\nbogus = 1\n"},
                              {"layer.c1", "[layer.x]\nbogus = 1\n"},
                              {"loss", "[loss]\nbogus = 1\n"}};
    for (size_t p = 0; p < 4; ++p) {
        char keys[32][40];
        int n = accepted_keys(probe[p][1], keys, 32);
        CHECK(n > 0, "[%s]: no accepted-key list in '%s'", probe[p][0], rpu_last_error());
        int mine = 0;
        for (size_t i = 0; i < sizeof run_keys / sizeof run_keys[0]; ++i)
            if (!strcmp(run_keys[i].section, probe[p][0])) {
                ++mine;
                bool found = false;
                for (int k = 0; k < n; ++k)
                    found |= !strcmp(keys[k], run_keys[i].key);
                CHECK(found, "[%s] %s is not accepted by the parser", probe[p][0], run_keys[i].key);
            }
        CHECK(mine == n, "[%s]: the parser accepts %d keys, the test covers %d", probe[p][0], n,
              mine);
    }

    /* every run/data/layer/loss key with its values */
    char *longv = xstrdup_rep('L', 511);
    longv[200] = ' ', longv[201] = ';'; /* a comment character after a blank, far in */
    for (size_t i = 0; i < sizeof run_keys / sizeof run_keys[0]; ++i) {
        const key_case *kc = &run_keys[i];
        bool text = !strcmp(kc->key, "output_dir") || !strcmp(kc->key, "checkpoint") ||
                    !strcmp(kc->key, "path") || !strcmp(kc->key, "dataset");
        for (int v = 0; v < 4 && kc->values[v]; ++v) {
            char label[200];
            if (strcmp(kc->values[v], "*")) {
                snprintf(label, sizeof label, "[%s] %s = %s", kc->section, kc->key, kc->values[v]);
                one_value(kc->section, kc->key, kc->values[v], text ? get_run_text : NULL, label);
                continue;
            }
            for (int c = 0; careful[c]; ++c) {
                snprintf(label, sizeof label, "[%s] %s = %s", kc->section, kc->key, careful[c]);
                one_value(kc->section, kc->key, careful[c], get_run_text, label);
            }
            snprintf(label, sizeof label, "[%s] %s = (511 bytes)", kc->section, kc->key);
            one_value(kc->section, kc->key, longv, get_run_text, label);
        }
    }
    free(longv);

    /* every rpu_config key, with its default text of each kind and a changed spelling */
    const char *const *keys = NULL;
    const int nk = rpu_config_keys(&keys);
    CHECK(nk > 100, "%d rpu_config keys", nk);
    for (int kind = 0; kind <= 2; ++kind) {
        rpu_config c;
        rpu_config_default(&c, (rpu_config_kind)kind);
        for (int k = 0; k < nk; ++k) {
            char val[8192], label[200];
            /* the keys of the kind's device type (compound keys: test_config_compound) */
            if (!rpu_config_key_applies(&c, keys[k])) continue;
            CHECK_OK(rpu_config_get(&c, keys[k], val, sizeof val));
            snprintf(label, sizeof label, "[rpu] %s = %.100s (kind %d)", keys[k], val, kind);
            /* kind first: the value must be read in a config of this kind */
            char ovv[8400];
            snprintf(ovv, sizeof ovv, "rpu.%s= %s ", keys[k], val);
            char kov[64];
            const char *kn[] = {"floating_point", "single", "inference"};
            snprintf(kov, sizeof kov, "rpu.kind=%s", kn[kind]);
            const char *ovs[] = {kov, ovv};
            rpu_experiment *e = NULL;
            rpu_status s = rpu_experiment_parse(BASE, "exp.ini", ovs, 2, &e);
            CHECK(s == RPU_OK, "%s (--set): %s", label, rpu_last_error());
            if (s == RPU_OK) {
                const char *got = get_rpu(e, keys[k]);
                CHECK(got && !strcmp(got, val), "%s (--set): reads back '%s'", label,
                      got ? got : "");
                CHECK(rpu_config_equal(rpu_experiment_config(e), &c) || !strcmp(keys[k], "kind"),
                      "%s (--set): another config", label);
                check_fixed_point(e, label);
            }
            rpu_experiment_free(&e);
            /* from a file, after a comment, value quoted */
            char *t = malloc(20000), q[9000];
            quote(q, sizeof q, val);
            if (!strcmp(keys[k], "kind"))
                snprintf(t, 20000, "[rpu]\n%s = %s # its value\n%s", keys[k], q, BASE);
            else
                snprintf(t, 20000, "[rpu]\nkind = %s ; the kind\n%s = %s # its value\n%s", kn[kind],
                         keys[k], q, BASE);
            s = rpu_experiment_parse(t, "exp.ini", NULL, 0, &e);
            CHECK(s == RPU_OK, "%s (file): %s", label, rpu_last_error());
            if (s == RPU_OK) {
                CHECK(rpu_config_equal(rpu_experiment_config(e), &c), "%s (file): another config",
                      label);
                check_fixed_point(e, label);
            }
            rpu_experiment_free(&e);
            free(t);
        }
    }

    /* all keys in one experiment: every run/data/layer/loss key and every rpu key (values of
     * kind inference, set in rpu_config_keys order), by --set on the base and from a file */
    {
        rpu_config c;
        rpu_config_default(&c, RPU_KIND_INFERENCE);
        c.forward.out_noise = 0.0123f;
        c.device.construction_seed = 77;
        char **ovs = calloc((size_t)nk + 64, sizeof *ovs);
        int n = 0;
        for (size_t i = 0; i < sizeof run_keys / sizeof run_keys[0]; ++i) {
            const key_case *kc = &run_keys[i];
            const char *v = kc->values[0];
            if (!strcmp(v, "*")) v = careful[i % 14];
            if (!strcmp(kc->key, "type") && !strncmp(kc->section, "layer.", 6)) v = "conv2d";
            ovs[n] = malloc(strlen(v) + 64);
            snprintf(ovs[n++], strlen(v) + 64, "%s.%s=%s", kc->section, kc->key, v);
        }
        for (int k = 0; k < nk; ++k) {
            char val[8192];
            if (!rpu_config_key_applies(&c, keys[k])) continue; /* compound keys */
            rpu_config_get(&c, keys[k], val, sizeof val);
            ovs[n] = malloc(strlen(val) + 64);
            snprintf(ovs[n++], strlen(val) + 64, "rpu.%s=%s", keys[k], val);
        }
        rpu_experiment *e = NULL;
        rpu_status s = rpu_experiment_parse(BASE, "all.ini", (const char *const *)ovs, n, &e);
        CHECK(s == RPU_OK, "all keys by --set: %s", rpu_last_error());
        if (s == RPU_OK) {
            CHECK(rpu_config_equal(rpu_experiment_config(e), &c), "all keys: the config");
            CHECK(!strcmp(rpu_experiment_run(e)->output_dir, careful[8 % 14]) &&
                      !strcmp(rpu_experiment_run(e)->checkpoint, careful[9 % 14]) &&
                      !strcmp(rpu_experiment_run(e)->data_path, careful[14 % 14]),
                  "all keys: paths '%s' '%s' '%s'", rpu_experiment_run(e)->output_dir,
                  rpu_experiment_run(e)->checkpoint, rpu_experiment_run(e)->data_path);
            check_fixed_point(e, "all keys");
        }
        rpu_experiment_free(&e);
        for (int k = 0; k < n; ++k)
            free(ovs[k]);
        free(ovs);
    }
}

/* ------------------------------------------------------------------ 6. before the first step */

typedef struct {
    int epochs, progress;
} calls;

static void count_epoch(void *ctx, const rpu_epoch_metrics *m) {
    (void)m;
    ((calls *)ctx)->epochs++;
}
static void count_progress(void *ctx, const rpu_progress *p) {
    (void)p;
    ((calls *)ctx)->progress++;
}

/* rpu_train of a small synthetic experiment with run.checkpoint = ck (line 4). */
static rpu_status train_with(const char *ck, calls *c) {
    char t[3000];
    snprintf(t, sizeof t,
             "[run]\nepochs = 1\nbatch_size = 8\ncheckpoint = %s\noutput_dir = %s/out\n"
             "[rpu]\nkind = floating_point\n"
             "[data]\ndataset = synthetic\nsynthetic_n = 16\nsynthetic_classes = 3\n"
             "synthetic_size = 4\n"
             "[layer.flat]\ntype = flatten\n[layer.fc]\ntype = linear\nout = 3\n",
             ck, g_tmp);
    rpu_experiment *e = NULL;
    memset(c, 0, sizeof *c);
    rpu_status s = rpu_experiment_parse(t, "train.ini", NULL, 0, &e);
    CHECK(s == RPU_OK, "train.ini: %s", rpu_last_error());
    if (s != RPU_OK) return s;
    rpu_train_hooks h = {.on_epoch = count_epoch, .on_progress = count_progress, .ctx = c};
    rpu_clear_error();
    s = rpu_train(MPI_COMM_WORLD, e, NULL, &h);
    rpu_experiment_free(&e);
    return s;
}

static void test_before_first_step(void) {
    calls c;
    char ck[1200];
    /* a checkpoint in a directory that does not exist yet: created */
    snprintf(ck, sizeof ck, "%s/new/sub/dir/ck.h5", g_tmp);
    rpu_status s = train_with(ck, &c);
    CHECK(s == RPU_OK && c.epochs == 1, "checkpoint in a new directory: %s, %d epochs (%s)",
          rpu_status_name(s), c.epochs, rpu_last_error());
    struct stat st;
    CHECK(stat(ck, &st) == 0 && S_ISREG(st.st_mode), "checkpoint in a new directory: %s written",
          ck);

    /* a directory that cannot be created: a regular file on the path */
    char file[1200];
    snprintf(file, sizeof file, "%s/plain-file", g_tmp);
    if (tl_rank() == 0) {
        FILE *f = fopen(file, "w");
        if (f) fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    snprintf(ck, sizeof ck, "%s/plain-file/sub/ck.h5", g_tmp);
    s = train_with(ck, &c);
    const char *m = rpu_last_error();
    CHECK(s == RPU_ERR_IO, "checkpoint under a file: %s, want RPU_ERR_IO (%s)", rpu_status_name(s),
          m);
    CHECK(c.epochs == 0 && c.progress == 0,
          "checkpoint under a file: stopped before the first step (%d epochs, %d progress calls)",
          c.epochs, c.progress);
    if (tl_rank() == 0)
        CHECK(has(m, "train.ini:4") && has(m, "checkpoint") && has(m, "plain-file"),
              "checkpoint under a file: names train.ini:4, the key and the path: %s", m);

    /* a checkpoint path that is a directory */
    snprintf(ck, sizeof ck, "%s/new/sub", g_tmp);
    s = train_with(ck, &c);
    m = rpu_last_error();
    CHECK(s == RPU_ERR_IO && c.epochs == 0 && c.progress == 0,
          "checkpoint = a directory: %s, %d epochs, %d progress calls (%s)", rpu_status_name(s),
          c.epochs, c.progress, m);
    if (tl_rank() == 0)
        CHECK(has(m, "train.ini:4") && has(m, "directory"), "checkpoint = a directory: %s", m);
    /* checkpoint names MPI-IO can open (OMPIO aborts the process on a name of 241+ bytes
     * plus ".tmp"): 234 bytes are written, 235 and 260 refused before the first step */
    for (int len = 234; len <= 260; len += len == 234 ? 1 : 25) {
        char dir[400];
        const int dlen = len - (int)strlen(g_tmp) - 1 - (int)strlen("/ck.h5");
        CHECK(dlen > 0 && dlen < 300, "directory length %d", dlen);
        memset(dir, 'd', (size_t)dlen);
        dir[dlen] = '\0';
        dir[0] = (char)('a' + len % 26);
        snprintf(ck, sizeof ck, "%s/%s/ck.h5", g_tmp, dir);
        CHECK((int)strlen(ck) == len, "path length %zu, want %d", strlen(ck), len);
        s = train_with(ck, &c);
        m = rpu_last_error();
        if (len == 234) {
            CHECK(s == RPU_OK && c.epochs == 1 && stat(ck, &st) == 0,
                  "234-byte checkpoint path: %s, %d epochs (%s)", rpu_status_name(s), c.epochs, m);
        } else {
            CHECK(s == RPU_ERR_IO && c.epochs == 0 && c.progress == 0,
                  "%d-byte checkpoint path: %s, %d epochs, %d progress calls (%s)", len,
                  rpu_status_name(s), c.epochs, c.progress, m);
            if (tl_rank() == 0)
                CHECK(has(m, "train.ini:4") && has(m, "234") && has(m, "MPI-IO"),
                      "%d-byte checkpoint path: %s", len, m);
        }
    }

    /* and one written as a directory ("x/") is refused at parse */
    const char *ovd[] = {"run.checkpoint=somewhere/"};
    m = parse_bad(FC, ovd, 1, "checkpoint ending in /");
    CHECK(has(m, "--set run.checkpoint") && has(m, "directory"), "checkpoint ending in /: %s", m);

    /* an experiment text longer than checkpoints store is refused at parse: 20 float keys
     * written with 4000 digits each (their values unchanged) */
    {
        static const char *const fl[] = {
            "inp_bound",     "inp_noise", "inp_asymmetry", "out_bound", "out_noise",
            "out_noise_std", "out_scale", "out_asymmetry", "w_noise",   "ir_drop"};
        char *ovs[20];
        int n = 0;
        rpu_config c0;
        rpu_config_default(&c0, RPU_KIND_SINGLE);
        for (int d = 0; d < 2; ++d)
            for (int k = 0; k < 10; ++k) {
                char key[64], val[64];
                snprintf(key, sizeof key, "%s.%s", d ? "backward" : "forward", fl[k]);
                CHECK_OK(rpu_config_get(&c0, key, val, sizeof val));
                ovs[n] = malloc(4100);
                int l =
                    snprintf(ovs[n], 4100, "rpu.%s=%s%s", key, val, strchr(val, '.') ? "" : ".");
                memset(ovs[n] + l, '0', (size_t)(4000 - l));
                ovs[n][4000] = '\0';
                ++n;
            }
        m = parse_bad(FC, (const char *const *)ovs, n, "experiment text too long");
        CHECK(has(m, "exp.ini") && has(m, "60000"), "experiment text too long: %s", m);
        /* 14 of them fit */
        rpu_experiment *e = parse_ok(FC, (const char *const *)ovs, 14, "14 long values");
        CHECK(e && strlen(rpu_experiment_text(e)) > 50000, "14 long values: the text is stored");
        rpu_experiment_free(&e);
        for (int k = 0; k < n; ++k)
            free(ovs[k]);
    }
}

/* ------------------------------------------------------------------ 7. split */

static void test_split(void) {
    const char *t = "[rpu]\nkind = floating_point\nmapping.digital_bias = false\n"
                    "mapping.max_input_size = 16\nmapping.max_output_size = 4\n"
                    "[layer.c1]\ntype = conv2d\nout = 6\nkernel = 3\nsplit = tile_array\n"
                    "[layer.c2]\ntype = conv2d\nout = 6\nkernel = 3\n"
                    "[layer.flat]\ntype = flatten\n"
                    "[layer.fc]\ntype = linear\nout = 3\nsplit = tile_array\n";
    rpu_experiment *e = parse_ok(t, NULL, 0, "split");
    if (e) {
        rpu_net *net = NULL;
        const int sp[2] = {7, 7};
        /* c1: 4 ch x 9 = 36 columns at 16 -> [12, 12, 12] (array: digital bias); c2 mapped:
         * 6 ch x 9 at 16 -> 6 one-channel splits, bias analog as configured; fc: 6 x 3 x 3
         * = 54 features -> 3 outputs: 54 > 16, an array: digital bias */
        CHECK_OK(rpu_net_create(MPI_COMM_WORLD, e, 4, 2, sp, &net));
        if (net && rpu_net_analog_count(net) == 3) {
            const rpu_conv *c1 = rpu_net_analog_layer(net, 0), *c2 = rpu_net_analog_layer(net, 1),
                           *fc = rpu_net_analog_layer(net, 2);
            const rpu_tile_grid *g1 = rpu_conv_grid(c1), *g2 = rpu_conv_grid(c2);
            CHECK(g1->split == RPU_SPLIT_TILE_ARRAY && g1->n_in == 3 && g1->tiles[0].ncol == 12 &&
                      rpu_conv_get_params(c1)->bias == RPU_BIAS_DIGITAL,
                  "split: c1 is a tile array of [12, 12, 12] columns with a digital bias");
            CHECK(g2->split == RPU_SPLIT_MAPPED && g2->n_in == 6 &&
                      rpu_conv_get_params(c2)->bias == RPU_BIAS_ANALOG,
                  "split: c2 is mapped (the default), one channel per split, analog bias");
            CHECK(rpu_conv_grid(fc)->split == RPU_SPLIT_TILE_ARRAY &&
                      rpu_conv_get_params(fc)->bias == RPU_BIAS_DIGITAL,
                  "split: fc is a tile array with a digital bias");
        } else {
            CHECK(false, "split: network with 3 analog layers");
        }
        rpu_net_destroy(&net);
        check_fixed_point(e, "split");
    }
    rpu_experiment_free(&e);
    const char *m =
        parse_bad("[layer.c1]\ntype = conv2d\nout = 2\nsplit = tiles\n", NULL, 0, "split = tiles");
    CHECK(has_loc(m, "exp.ini", 4) && has(m, "split") && has(m, "want mapped or tile_array"),
          "split = tiles: %s", m);
}

/* ------------------------------------------------------------------ 8. synthetic channels */

/* data.synthetic_channels gives both splits of the synthetic set that many channels
 * (default 1), and a value outside 1..256 is refused naming the line and key. */
static void test_synthetic_channels(void) {
    const char *t = "[data]\ndataset = synthetic\nsynthetic_n = 8\nsynthetic_classes = 2\n"
                    "synthetic_size = 4\nsynthetic_channels = 3\n"
                    "[layer.fc]\ntype = linear\nout = 2\n";
    for (int with = 0; with <= 1; ++with) {
        const char *ov[] = {"data.synthetic_channels=1"};
        rpu_experiment *e = parse_ok(t, with ? NULL : ov, with ? 0 : 1, "synthetic_channels");
        if (!e) continue;
        rpu_dataset train = {0}, test = {0};
        CHECK_OK(net_load_data(e, &train, &test));
        const int want = with ? 3 : 1;
        CHECK(train.channels == want && test.channels == want && train.height == 4 &&
                  train.width == 4,
              "synthetic_channels %d: splits of %d and %d channels of %d x %d", want,
              train.channels, test.channels, train.height, train.width);
        rpu_dataset_free(&train);
        rpu_dataset_free(&test);
        rpu_experiment_free(&e);
    }
    const char *m = parse_bad("[data]\ndataset = synthetic\nsynthetic_channels = 0\n", NULL, 0,
                              "synthetic_channels = 0");
    CHECK(has_loc(m, "exp.ini", 3) && has(m, "synthetic_channels"), "synthetic_channels = 0: %s",
          m);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    snprintf(g_tmp, sizeof g_tmp, "%s/np%d", RPUSIM_EXP_TMP, tl_size());
    tl_remove_tree(g_tmp);
    if (tl_rank() == 0) {
        mkdir(RPUSIM_EXP_TMP, 0777);
        mkdir(g_tmp, 0777);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    test_long_lines();
    test_layer_names();
    test_value_syntax();
    test_overrides();
    test_fixed_point();
    test_before_first_step();
    test_split();
    test_synthetic_channels();
    if (!getenv("TEST_EXP_KEEP")) tl_remove_tree(g_tmp);
    return tl_finish();
}
