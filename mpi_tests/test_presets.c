/* Tests of the named presets (compound-devices spec §10.1, §10.2) and of the order in
 * which texts apply them: the expected values are the spec's table written out here (not
 * read from the library), on top of the library's type defaults (checked against the spec
 * by test_config), so a preset must set exactly its listed fields and nothing else. */
#include "rpusim/config.h"
#include "rpusim/net.h"
#include "rpusim/tile.h"

#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool mentions(const char *needle) {
    return strstr(rpu_last_error(), needle) != NULL;
}

/* ---------------------------------------------------------------------------------------
 * The spec's table (§10.2), written out.
 * ------------------------------------------------------------------------------------- */

typedef struct {
    const char *name, *device_class, *config_class; /* config_class NULL: device preset only */
    rpu_device_type type;
    void (*fill)(rpu_device_params *d); /* the listed fields, on the type defaults */
} spec_row;

/* common: dw_min, up_down, w_min, w_max, dtod (dw_min, up_down, w_min, w_max), dw_min_std */
static void common(rpu_device_params *d, float dw_min, float up_down, float w_min, float w_max,
                   float dw_min_dtod, float up_down_dtod, float w_min_dtod, float w_max_dtod,
                   float dw_min_std) {
    d->dw_min = dw_min;
    d->up_down = up_down;
    d->w_min = w_min;
    d->w_max = w_max;
    d->dw_min_dtod = dw_min_dtod;
    d->up_down_dtod = up_down_dtod;
    d->w_min_dtod = w_min_dtod;
    d->w_max_dtod = w_max_dtod;
    d->dw_min_std = dw_min_std;
}

static void fill_reram_es(rpu_device_params *d) {
    common(d, 0.00135f, 0.259359f, -1.0f, 1.0f, 0.2f, 0.05f, 0.3f, 0.3f, 5.0f);
    d->write_noise_std = 75.0f;
    d->a = -0.5f;
    d->b = -0.5f;
    d->gamma_up = 5.0f;
    d->gamma_down = 5.0f;
    d->A_up = -1.18445f;
    d->A_down = -0.081404f;
}

static void fill_reram_sb(rpu_device_params *d) {
    /* dtod w_min = 0.3/0.75, w_max = 0.3/1.25 as aihwkit computes them (double, then float) */
    common(d, 0.002f, 0.0f, -0.75f, 1.25f, 0.3f, 0.01f, (float)(0.3 / 0.75), (float)(0.3 / 1.25),
           3.75f);
    d->write_noise_std = 56.0f;
    d->mult_noise = false;
}

static void fill_capacitor(rpu_device_params *d) {
    common(d, 0.005f, 0.0f, -1.0f, 1.0f, 0.1f, 0.06f, 0.07f, 0.07f, 0.3f);
    d->write_noise_std = 0.0f;
    d->mult_noise = false;
    d->gamma_up = 0.05f;
    d->gamma_down = 0.05f;
    d->gamma_up_dtod = 0.01f;
    d->gamma_down_dtod = 0.01f;
    d->mean_bound_reference = true;
    d->lifetime = 1e6f;
    d->lifetime_dtod = 0.3f;
}

static void fill_ecram(rpu_device_params *d) {
    common(d, 0.002f, 0.0f, -0.8276f, 1.1724f, 0.1f, 0.01f, 0.05f, 0.05f, 0.3f);
    d->write_noise_std = 0.0f;
    d->mult_noise = true;
    d->gamma_up = 0.1153f;
    d->gamma_down = 0.5085f;
    d->gamma_up_dtod = 0.05f;
    d->gamma_down_dtod = 0.05f;
    d->mean_bound_reference = true;
}

static void fill_ecram_mo(rpu_device_params *d) {
    common(d, 2.8214e-4f, 0.0f, -0.8286f, 1.1714f, 0.1f, 0.01f, 0.05f, 0.05f, 2.0f);
    d->write_noise_std = 0.0f;
    d->mult_noise = true;
    d->gamma_up = 0.4152f;
    d->gamma_down = 0.7342f;
    d->gamma_up_dtod = 0.05f;
    d->gamma_down_dtod = 0.05f;
    d->mean_bound_reference = true;
}

static void fill_idealized(rpu_device_params *d) {
    common(d, 0.0002f, 0.0f, -1.0f, 1.0f, 0.3f, 0.0f, 0.3f, 0.3f, 0.3f);
}

static void fill_gokmen_vlasov(rpu_device_params *d) {
    common(d, 0.0016f, 0.0f, -1.0f, 1.0f, 0.3f, 0.01f, 0.3f, 0.3f, 0.3f);
}

static void fill_pcm(rpu_device_params *d) {
    common(d, 0.01f, 0.0f, 0.0f, 2.0f, 0.2f, 0.05f, 0.0f, 0.1f, 0.6f);
    d->write_noise_std = 0.0f;
    d->a = -1.0f;
    d->b = 0.0f;
    d->gamma_up = 2.5f;
    d->gamma_down = 2.5f;
    d->A_up = -27.235f;
    d->A_down = -2.235f;
    d->dw_min_std_add = 0.042f;
    d->dw_min_std_slope = 0.108f;
    d->reset = 0.01f;
    d->reset_dtod = 0.02f;
}

/* spec §10.2: ReRamES = ExpStep, ReRamSB = SoftBoundsReference, Capacitor/EcRam/EcRamMO =
 * LinearStep, Idealized/GokmenVlasov = ConstantStep, PCM = ExpStep; config classes from
 * aihwkit.simulator.presets.configs. */
static const spec_row rows[] = {
    {"reram_es", "ReRamESPresetDevice", "ReRamESPreset", RPU_DEVICE_EXP_STEP, fill_reram_es},
    {"reram_sb", "ReRamSBPresetDevice", "ReRamSBPreset", RPU_DEVICE_SOFT_BOUNDS_REFERENCE,
     fill_reram_sb},
    {"capacitor", "CapacitorPresetDevice", "CapacitorPreset", RPU_DEVICE_LINEAR_STEP,
     fill_capacitor},
    {"ecram", "EcRamPresetDevice", "EcRamPreset", RPU_DEVICE_LINEAR_STEP, fill_ecram},
    {"ecram_mo", "EcRamMOPresetDevice", "EcRamMOPreset", RPU_DEVICE_LINEAR_STEP, fill_ecram_mo},
    {"idealized", "IdealizedPresetDevice", "IdealizedPreset", RPU_DEVICE_CONSTANT_STEP,
     fill_idealized},
    {"gokmen_vlasov", "GokmenVlasovPresetDevice", "GokmenVlasovPreset", RPU_DEVICE_CONSTANT_STEP,
     fill_gokmen_vlasov},
    {"pcm", "PCMPresetDevice", NULL, RPU_DEVICE_EXP_STEP, fill_pcm},
};
#define N_ROWS (sizeof rows / sizeof rows[0])

static void expected_device(const spec_row *r, rpu_device_params *d) {
    CHECK_OK(rpu_device_params_default(d, r->type));
    r->fill(d);
}

/* spec §10.1: PresetIOParameters = IOParameters() with out_bound 20, out_noise 0.1 (the
 * restated fields equal the defaults); PresetUpdateParameters = UpdateParameters(). */
static void expected_config(const spec_row *r, rpu_config *c) {
    CHECK_OK(rpu_config_default(c, RPU_KIND_SINGLE));
    rpu_io_params *io[2] = {&c->forward, &c->backward};
    for (int k = 0; k < 2; ++k) {
        io[k]->out_bound = 20.0f;
        io[k]->out_noise = 0.1f;
        CHECK(io[k]->bound_management == RPU_BM_ITERATIVE &&
                  io[k]->noise_management == RPU_NM_ABS_MAX &&
                  io[k]->inp_res == (float)(1.0 / 126.0) &&
                  io[k]->out_res == (float)(1.0 / 510.0) && !io[k]->inp_sto_round &&
                  io[k]->w_noise == 0.0f && io[k]->w_noise_type == RPU_WNOISE_NONE,
              "IOParameters defaults differ from the restated PresetIOParameters fields");
    }
    CHECK(c->update.desired_bl == 31 && c->update.pulse_type == RPU_PULSE_STOCHASTIC_COMPRESSED &&
              c->update.update_bl_management && c->update.update_management,
          "UpdateParameters defaults differ from PresetUpdateParameters");
    expected_device(r, &c->device);
}

/* The first device field that differs, for a message. */
static const char *first_difference(const rpu_config *a, const rpu_config *b) {
    const char *const *keys;
    int n = rpu_config_keys(&keys);
    static char buf[700]; /* test only */
    for (int k = 0; k < n; ++k) {
        char va[300], vb[300];
        if (rpu_config_get(a, keys[k], va, sizeof va) != RPU_OK ||
            rpu_config_get(b, keys[k], vb, sizeof vb) != RPU_OK)
            continue;
        if (strcmp(va, vb)) {
            snprintf(buf, sizeof buf, "%s = %s, want %s", keys[k], va, vb);
            return buf;
        }
    }
    return "(no key differs)";
}

/* The transfer-family presets of §10.3, written out: device preset X, compound type,
 * main-update BL, fast_lr, auto_granularity, in_chop_prob, tail_weightening (AGAD). */
typedef struct {
    const char *name, *cls, *dev, *type;
    int bl;
    float fast_lr, auto_granularity, in_chop_prob, tail;
} transfer2_row;

static const transfer2_row t2rows[] = {
    {"ttv2_reram_es", "TTv2ReRamESPreset", "reram_es", "chopped_transfer", 31, 0.5f, 1000, 0, 5},
    {"ttv2_reram_sb", "TTv2ReRamSBPreset", "reram_sb", "chopped_transfer", 31, 0.5f, 1000, 0, 5},
    {"ttv2_capacitor", "TTv2CapacitorPreset", "capacitor", "chopped_transfer", 31, 0.1f, 1000, 0,
     5},
    {"ttv2_ecram", "TTv2EcRamPreset", "ecram", "chopped_transfer", 100, 0.1f, 500, 0, 5},
    {"ttv2_ecram_mo", "TTv2EcRamMOPreset", "ecram_mo", "chopped_transfer", 100, 0.1f, 500, 0, 5},
    {"ttv2_idealized", "TTv2IdealizedPreset", "idealized", "chopped_transfer", 100, 0.1f, 500, 0,
     5},
    {"chopped_ttv2_reram_es", "ChoppedTTv2ReRamESPreset", "reram_es", "chopped_transfer", 31, 0.5f,
     1000, 0.01f, 5},
    {"chopped_ttv2_reram_sb", "ChoppedTTv2ReRamSBPreset", "reram_sb", "chopped_transfer", 31, 0.5f,
     1000, 0.01f, 5},
    {"chopped_ttv2_capacitor", "ChoppedTTv2CapacitorPreset", "capacitor", "chopped_transfer", 31,
     0.1f, 1000, 0.01f, 5},
    {"chopped_ttv2_ecram", "ChoppedTTv2EcRamPreset", "ecram", "chopped_transfer", 100, 1.0f, 500,
     0.01f, 5},
    {"chopped_ttv2_ecram_mo", "ChoppedTTv2EcRamMOPreset", "ecram_mo", "chopped_transfer", 100, 0.1f,
     500, 0.001f, 5},
    {"chopped_ttv2_idealized", "ChoppedTTv2IdealizedPreset", "idealized", "chopped_transfer", 100,
     0.1f, 500, 0.001f, 5},
    {"agad_reram_es", "AGADReRamESPreset", "reram_es", "dynamic_transfer", 31, 0.5f, 1000, 0.02f,
     5},
    {"agad_reram_sb", "AGADReRamSBPreset", "reram_sb", "dynamic_transfer", 31, 0.5f, 1000, 0.02f,
     5},
    {"agad_capacitor", "AGADCapacitorPreset", "capacitor", "dynamic_transfer", 31, 0.1f, 1000,
     0.01f, 20},
    {"agad_ecram", "AGADEcRamPreset", "ecram", "dynamic_transfer", 31, 0.1f, 750, 0.005f, 50},
    {"agad_ecram_mo", "AGADEcRamMOPreset", "ecram_mo", "dynamic_transfer", 100, 0.1f, 500, 0.005f,
     50},
    {"agad_idealized", "AGADIdealizedPreset", "idealized", "dynamic_transfer", 100, 0.1f, 500,
     0.005f, 50},
};
#define N_TRANSFER2 ((int)(sizeof t2rows / sizeof t2rows[0]))

/* ---------------------------------------------------------------------------------------
 * Values.
 * ------------------------------------------------------------------------------------- */

/* Every device preset, by "device.preset" on a single config: the device equals the spec
 * row on the type defaults; IO, update and kind untouched. */
static void test_device_presets(void) {
    for (size_t i = 0; i < N_ROWS; ++i) {
        rpu_config c, want;
        CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
        CHECK_OK(rpu_config_set(&c, "forward.out_noise", "0.25")); /* kept */
        want = c;
        expected_device(&rows[i], &want.device);
        rpu_status s = rpu_config_set(&c, "device.preset", rows[i].name);
        CHECK(s == RPU_OK, "device.preset = %s: %s", rows[i].name, rpu_last_error());
        CHECK(rpu_config_equal(&c, &want), "device.preset = %s: %s", rows[i].name,
              first_difference(&c, &want));
        CHECK(rpu_config_validate(&c) == RPU_OK, "device.preset = %s does not validate: %s",
              rows[i].name, rpu_last_error());
        /* the device-params call gives the same device */
        rpu_device_params d;
        CHECK_OK(rpu_device_params_preset(&d, rows[i].name));
        rpu_config cd = want;
        cd.device = d;
        CHECK(rpu_config_equal(&cd, &want), "rpu_device_params_preset(%s): %s", rows[i].name,
              first_difference(&cd, &want));
        const char *cls = rpu_config_preset_class(rows[i].name, true);
        CHECK(cls && !strcmp(cls, rows[i].device_class), "class of device preset %s: %s",
              rows[i].name, cls ? cls : "NULL");
    }
    /* a few values spelled out once more, against the spec text */
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_set(&c, "device.preset", "capacitor"));
    CHECK(c.device.lifetime == 1e6f && c.device.type == RPU_DEVICE_LINEAR_STEP,
          "capacitor: lifetime %g", (double)c.device.lifetime);
    CHECK_OK(rpu_config_set(&c, "device.preset", "reram_sb"));
    CHECK(c.device.type == RPU_DEVICE_SOFT_BOUNDS_REFERENCE && !c.device.mult_noise &&
              !c.device.subtract_symmetry_point && c.device.reference_std == 0.0f &&
              c.device.write_noise_std == 56.0f && c.device.w_min == -0.75f &&
              c.device.lifetime == 0.0f,
          "reram_sb after capacitor keeps nothing of capacitor");
}

/* The compound presets of §10.3 written out: name, aihwkit class, compound type, the
 * device row (by name), sub-devices. */
typedef struct {
    const char *name, *config_class;
    rpu_device_type type;
    const char *device;
    int n_devices;
    bool cell; /* the device is PCMPresetUnitCell (preset pcm's one_sided cell) */
} compound_row;

static const compound_row compound_rows[] = {
    {"mixed_precision_reram_es", "MixedPrecisionReRamESPreset", RPU_DEVICE_MIXED_PRECISION,
     "reram_es", 1, false},
    {"mixed_precision_reram_sb", "MixedPrecisionReRamSBPreset", RPU_DEVICE_MIXED_PRECISION,
     "reram_sb", 1, false},
    {"mixed_precision_capacitor", "MixedPrecisionCapacitorPreset", RPU_DEVICE_MIXED_PRECISION,
     "capacitor", 1, false},
    {"mixed_precision_ecram", "MixedPrecisionEcRamPreset", RPU_DEVICE_MIXED_PRECISION, "ecram", 1,
     false},
    {"mixed_precision_ecram_mo", "MixedPrecisionEcRamMOPreset", RPU_DEVICE_MIXED_PRECISION,
     "ecram_mo", 1, false},
    {"mixed_precision_idealized", "MixedPrecisionIdealizedPreset", RPU_DEVICE_MIXED_PRECISION,
     "idealized", 1, false},
    {"mixed_precision_gokmen_vlasov", "MixedPrecisionGokmenVlasovPreset",
     RPU_DEVICE_MIXED_PRECISION, "gokmen_vlasov", 1, false},
    {"mixed_precision_pcm", "MixedPrecisionPCMPreset", RPU_DEVICE_MIXED_PRECISION, "pcm", 2, true},
    {"reram_es2", "ReRamES2Preset", RPU_DEVICE_VECTOR, "reram_es", 2, false},
    {"reram_sb2", "ReRamSB2Preset", RPU_DEVICE_VECTOR, "reram_sb", 2, false},
    {"capacitor2", "Capacitor2Preset", RPU_DEVICE_VECTOR, "capacitor", 2, false},
    {"ecram2", "EcRam2Preset", RPU_DEVICE_VECTOR, "ecram", 2, false},
    {"ecram_mo2", "EcRamMO2Preset", RPU_DEVICE_VECTOR, "ecram_mo", 2, false},
    {"idealized2", "Idealized2Preset", RPU_DEVICE_VECTOR, "idealized", 2, false},
    {"reram_es4", "ReRamES4Preset", RPU_DEVICE_VECTOR, "reram_es", 4, false},
    {"reram_sb4", "ReRamSB4Preset", RPU_DEVICE_VECTOR, "reram_sb", 4, false},
    {"capacitor4", "Capacitor4Preset", RPU_DEVICE_VECTOR, "capacitor", 4, false},
    {"ecram4", "EcRam4Preset", RPU_DEVICE_VECTOR, "ecram", 4, false},
    {"ecram_mo4", "EcRamMO4Preset", RPU_DEVICE_VECTOR, "ecram_mo", 4, false},
    {"idealized4", "Idealized4Preset", RPU_DEVICE_VECTOR, "idealized", 4, false},
    {"pcm", "PCMPreset", RPU_DEVICE_ONE_SIDED, "pcm", 2, false},
    {"tiki_taka_reram_es", "TikiTakaReRamESPreset", RPU_DEVICE_TRANSFER, "reram_es", 2, false},
    {"tiki_taka_reram_sb", "TikiTakaReRamSBPreset", RPU_DEVICE_TRANSFER, "reram_sb", 2, false},
    {"tiki_taka_capacitor", "TikiTakaCapacitorPreset", RPU_DEVICE_TRANSFER, "capacitor", 2, false},
    {"tiki_taka_ecram", "TikiTakaEcRamPreset", RPU_DEVICE_TRANSFER, "ecram", 2, false},
    {"tiki_taka_ecram_mo", "TikiTakaEcRamMOPreset", RPU_DEVICE_TRANSFER, "ecram_mo", 2, false},
    {"tiki_taka_idealized", "TikiTakaIdealizedPreset", RPU_DEVICE_TRANSFER, "idealized", 2, false},
};
#define N_COMPOUND_ROWS (sizeof compound_rows / sizeof compound_rows[0])

/* Every compound preset: PresetIOParameters forward/backward, PresetUpdateParameters, the
 * compound's defaults (vector: single_random) and n copies of the device row. A tile of
 * each is created and updated once. */
static void test_compound_presets(void) {
    for (size_t i = 0; i < N_COMPOUND_ROWS; ++i) {
        const compound_row *r = &compound_rows[i];
        const spec_row *dr = NULL;
        for (size_t k = 0; k < N_ROWS; ++k)
            if (!strcmp(rows[k].name, r->device)) dr = &rows[k];
        CHECK(dr != NULL, "no device row %s", r->device);
        if (!dr) continue;
        rpu_config c, want;
        expected_config(dr, &want); /* IO, update, kind; then the compound */
        CHECK_OK(rpu_device_params_default(&want.device, r->type));
        CHECK_OK(rpu_compound_params_default(&want.compound, r->type));
        if (r->type == RPU_DEVICE_VECTOR) want.compound.update_policy = RPU_POLICY_SINGLE_RANDOM;
        if (r->type == RPU_DEVICE_TRANSFER) {              /* TikiTaka<X>Preset */
            want.compound.transfer_forward = want.forward; /* PresetIOParameters(NM, BM none) */
            want.compound.transfer_forward.noise_management = RPU_NM_NONE;
            want.compound.transfer_forward.bound_management = RPU_BM_NONE;
            want.compound.transfer_update = want.update; /* PresetUpdateParameters() */
            want.compound.units_in_mbatch = true;
            want.compound.transfer_every = 1.0f;
        }
        /* PCMPresetUnitCell: the compound itself (pcm) or its one device, a unit cell inside
         * (mixed_precision_pcm, compound spec §1.2) */
        rpu_compound_params *pcm = r->cell ? &want.cells[0] : &want.compound;
        if (r->cell) {
            want.compound.n_devices = 1;
            CHECK_OK(rpu_device_params_default(&want.compound.unit_cell_devices[0],
                                               RPU_DEVICE_ONE_SIDED));
            CHECK_OK(rpu_compound_params_default(pcm, RPU_DEVICE_ONE_SIDED));
        }
        if (r->type == RPU_DEVICE_ONE_SIDED || r->cell) {
            pcm->refresh_every = 1;
            pcm->units_in_mbatch = true;
            pcm->refresh_forward = want.forward; /* PresetIOParameters() */
            pcm->refresh_update = want.update;   /* PresetUpdateParameters(bl 31) */
        }
        pcm->n_devices = r->n_devices;
        for (int k = 0; k < r->n_devices; ++k)
            expected_device(dr, &pcm->unit_cell_devices[k]);
        if (r->type == RPU_DEVICE_TRANSFER && !strcmp(r->device, "reram_sb"))
            for (int k = 0; k < 2; ++k) /* ReRamSBPresetDevice(subtract_symmetry_point=True) */
                want.compound.unit_cell_devices[k].subtract_symmetry_point = true;
        CHECK_OK(rpu_config_default(&c, RPU_KIND_INFERENCE));
        rpu_status s = rpu_config_preset(&c, r->name);
        CHECK(s == RPU_OK, "preset %s: %s", r->name, rpu_last_error());
        CHECK(rpu_config_equal(&c, &want), "preset %s: %s", r->name, first_difference(&c, &want));
        CHECK(rpu_config_validate(&c) == RPU_OK, "preset %s does not validate: %s", r->name,
              rpu_last_error());
        const char *cls = rpu_config_preset_class(r->name, false);
        CHECK(cls && !strcmp(cls, r->config_class), "class of preset %s: %s", r->name,
              cls ? cls : "NULL");
        /* round trip through text */
        char *text = NULL;
        CHECK_OK(rpu_config_to_text(&c, &text));
        rpu_config back;
        CHECK_OK(rpu_config_default(&back, RPU_KIND_INFERENCE));
        if (text) CHECK_OK(rpu_config_parse(&back, text, r->name));
        CHECK(rpu_config_equal(&c, &back), "%s: round trip: %s", r->name,
              first_difference(&back, &c));
        free(text);
        /* it builds and trains */
        rpu_tile_params p;
        rpu_tile_params_default(&p, 3, 4);
        rpu_tile *t = NULL;
        s = rpu_tile_create(&p, &c, &t);
        CHECK(s == RPU_OK, "preset %s: tile: %s", r->name, rpu_last_error());
        if (t) {
            const float x[8] = {1, -0.5f, 0.25f, 0, 0.5f, 1, -1, 0.75f};
            const float d[6] = {0.1f, -0.2f, 0.05f, -0.1f, 0.3f, 0.2f};
            CHECK_OK(rpu_tile_update(t, x, d, 2, 0.1f));
            CHECK_OK(rpu_tile_update(t, x, d, 2, 0.1f));
        }
        rpu_tile_destroy(&t);
    }
    /* keys after a compound preset override it */
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_parse(&c,
                              "device.n_x_bins = 16\npreset = mixed_precision_reram_sb\n"
                              "device.unit_cell_devices.0.dw_min = 0.004\n",
                              "override"));
    CHECK(c.device.type == RPU_DEVICE_MIXED_PRECISION && c.compound.n_x_bins == 16 &&
              c.compound.unit_cell_devices[0].dw_min == 0.004f &&
              c.compound.unit_cell_devices[0].write_noise_std == 56.0f,
          "overrides after mixed_precision_reram_sb");
}

/* Every config preset: the spec's SingleRPUConfig of §10.1 with the row's device. */
static void test_config_presets(void) {
    const char *const *names;
    int n = rpu_config_presets(&names);
    int n_config_rows = 0;
    for (size_t i = 0; i < N_ROWS; ++i) {
        if (!rows[i].config_class) continue;
        ++n_config_rows;
        rpu_config c, want;
        CHECK_OK(rpu_config_default(&c, RPU_KIND_INFERENCE)); /* a preset resets all */
        CHECK_OK(rpu_config_set(&c, "mapping.max_input_size", "64"));
        expected_config(&rows[i], &want);
        rpu_status s = rpu_config_preset(&c, rows[i].name);
        CHECK(s == RPU_OK, "preset %s: %s", rows[i].name, rpu_last_error());
        CHECK(rpu_config_equal(&c, &want), "preset %s: %s", rows[i].name,
              first_difference(&c, &want));
        CHECK(c.kind == RPU_KIND_SINGLE && c.forward.out_bound == 20.0f &&
                  c.backward.out_noise == 0.1f && c.mapping.max_input_size == 512,
              "preset %s: kind %d out_bound %g", rows[i].name, c.kind, (double)c.forward.out_bound);
        CHECK(rpu_config_validate(&c) == RPU_OK, "preset %s does not validate: %s", rows[i].name,
              rpu_last_error());
        const char *cls = rpu_config_preset_class(rows[i].name, false);
        CHECK(cls && !strcmp(cls, rows[i].config_class), "class of preset %s: %s", rows[i].name,
              cls ? cls : "NULL");
        bool listed = false;
        for (int k = 0; k < n; ++k)
            listed |= !strcmp(names[k], rows[i].name);
        CHECK(listed, "rpu_config_presets lacks %s", rows[i].name);
    }
    CHECK(n == n_config_rows + (int)N_COMPOUND_ROWS + N_TRANSFER2,
          "rpu_config_presets lists %d names, the spec rows %d + %d compound presets + %d "
          "transfer-family rows",
          n, n_config_rows, (int)N_COMPOUND_ROWS, N_TRANSFER2);
    CHECK(names[n] == NULL, "config preset names not NULL-terminated");
    const char *const *dnames;
    int nd = rpu_device_presets(&dnames);
    CHECK(nd == (int)N_ROWS && dnames[nd] == NULL, "rpu_device_presets lists %d names, want %d", nd,
          (int)N_ROWS);
    CHECK(rpu_config_preset_class("x", false) == NULL && rpu_config_preset_class("x", true) == NULL,
          "unknown presets have classes");
    const char *pcm = rpu_config_preset_class("pcm", false);
    CHECK(pcm && !strcmp(pcm, "PCMPreset"), "config preset pcm: %s", pcm ? pcm : "NULL");
}

/* Every transfer-family preset (§10.3): the row's values, both sub-devices equal to the
 * device preset (reram_sb: subtracting its symmetry point, spec §10.2), transfer reads
 * PresetIOParameters with NM/BM none, transfer writes BL 1 without management, forward/backward
 * PresetIOParameters; the config validates, a tile trains, and keys after the preset override it.
 */
static void test_transfer2_presets(void) {
    for (int i = 0; i < N_TRANSFER2; ++i) {
        const transfer2_row *r = &t2rows[i];
        rpu_config c;
        CHECK_OK(rpu_config_default(&c, RPU_KIND_INFERENCE));
        rpu_status s = rpu_config_preset(&c, r->name);
        CHECK(s == RPU_OK, "preset %s: %s", r->name, rpu_last_error());
        if (s != RPU_OK) continue;
        char type[64];
        CHECK_OK(rpu_config_get(&c, "device.type", type, sizeof type));
        CHECK(!strcmp(type, r->type), "%s: device.type %s", r->name, type);
        const rpu_compound_params *cp = &c.compound;
        CHECK(c.kind == RPU_KIND_SINGLE && cp->n_devices == 2, "%s: kind %d, %d sub-devices",
              r->name, c.kind, cp->n_devices);
        rpu_device_params d;
        CHECK_OK(rpu_device_params_preset(&d, r->dev));
        if (!strcmp(r->dev, "reram_sb")) /* ReRamSBPresetDevice(subtract_symmetry_point=True) */
            d.subtract_symmetry_point = true;
        for (int k = 0; k < 2; ++k)
            CHECK(!memcmp(&cp->unit_cell_devices[k], &d, sizeof d),
                  "%s: sub-device %d differs from device preset %s", r->name, k, r->dev);
        CHECK(c.update.desired_bl == r->bl && c.update.update_management &&
                  c.update.update_bl_management,
              "%s: update BL %d", r->name, c.update.desired_bl);
        CHECK(cp->fast_lr == r->fast_lr && cp->auto_granularity == r->auto_granularity &&
                  cp->in_chop_prob == r->in_chop_prob && cp->tail_weightening == r->tail,
              "%s: fast_lr %g auto_granularity %g in_chop_prob %g tail %g", r->name,
              (double)cp->fast_lr, (double)cp->auto_granularity, (double)cp->in_chop_prob,
              (double)cp->tail_weightening);
        CHECK(cp->auto_scale && !cp->units_in_mbatch && cp->transfer_every == 1.0f &&
                  cp->gamma == 0.0f && cp->momentum == 0.0f && cp->forget_buffer &&
                  cp->in_chop_random == !strcmp(r->type, "chopped_transfer"),
              "%s: compound settings", r->name);
        CHECK(cp->transfer_forward.noise_management == RPU_NM_NONE &&
                  cp->transfer_forward.bound_management == RPU_BM_NONE &&
                  cp->transfer_forward.out_bound == 20.0f && cp->transfer_forward.out_noise == 0.1f,
              "%s: transfer_forward", r->name);
        CHECK(cp->transfer_update.desired_bl == 1 && !cp->transfer_update.update_management &&
                  !cp->transfer_update.update_bl_management &&
                  cp->transfer_update.pulse_type == RPU_PULSE_STOCHASTIC_COMPRESSED,
              "%s: transfer_update", r->name);
        CHECK(c.forward.out_bound == 20.0f && c.backward.out_noise == 0.1f, "%s: forward IO",
              r->name);
        CHECK(rpu_config_validate(&c) == RPU_OK, "%s: validate: %s", r->name, rpu_last_error());
        const char *cls = rpu_config_preset_class(r->name, false);
        CHECK(cls && !strcmp(cls, r->cls), "class of %s: %s", r->name, cls ? cls : "NULL");
        /* a tile trains */
        rpu_tile_params p;
        rpu_tile_params_default(&p, 3, 4);
        rpu_tile *t = NULL;
        s = rpu_tile_create(&p, &c, &t);
        CHECK(s == RPU_OK, "%s: tile: %s", r->name, rpu_last_error());
        float x[2 * 4] = {1, -0.5f, 0.25f, 0, 0.5f, 1, -1, 0.5f},
                    dd[2 * 3] = {0.1f, -0.2f, 0.05f, -0.1f, 0.3f, 0};
        for (int k = 0; t && k < 8; ++k)
            CHECK_OK(rpu_tile_update(t, x, dd, 2, 0.1f));
        float w[12];
        if (t) CHECK_OK(rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED));
        rpu_tile_destroy(&t);
        /* keys after the preset override it */
        char text[200];
        snprintf(text, sizeof text, "preset = %s\ndevice.fast_lr = 0.25\n", r->name);
        rpu_config o;
        CHECK_OK(rpu_config_default(&o, RPU_KIND_SINGLE));
        CHECK_OK(rpu_config_parse(&o, text, "override"));
        CHECK(o.compound.fast_lr == 0.25f && o.compound.auto_granularity == r->auto_granularity,
              "%s: override", r->name);
    }
}

/* A 1 x in tile of a preset with perfect transfer reads (for the derived numbers). */
static rpu_tile *preset_tile(const char *name, int in) {
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_preset(&c, name));
    CHECK_OK(rpu_config_set(&c, "device.transfer_forward.is_perfect", "true"));
    rpu_tile_params p;
    rpu_tile_params_default(&p, 1, in);
    p.seed = 11;
    rpu_tile *t = NULL;
    rpu_status s = rpu_tile_create(&p, &c, &t);
    CHECK(s == RPU_OK, "%s: tile: %s", name, rpu_last_error());
    return t;
}

static double state_value(rpu_tile *t, const char *name) {
    rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
    const int n = rpu_tile_state_items(t, it, RPU_TILE_MAX_STATE_ITEMS);
    for (int k = 0; k < n; ++k)
        if (!strcmp(it[k].name, name))
            return it[k].type == RPU_STATE_U64 ? (double)*(const uint64_t *)it[k].data
                                               : (double)*(const float *)it[k].data;
    CHECK(false, "no state item %s", name);
    return -1;
}

/* The derived numbers of §10.3. AGAD: the chopper period Ns = 1 / in_chop_prob (the input
 * chopper of a 1 x 1 tile, one read per vector, first switches at read Ns) and the running-
 * mean weight beta = tail_weightening / Ns (after one vector R = beta y with y = A, perfect
 * reads): ReRamSB Ns 50, beta 0.1; Capacitor Ns 100, beta 0.2; EcRam Ns 200, beta 0.25.
 * TTv2 Idealized on 100 columns: buffer granularity bg = 0.0002 * 500 / 100 = 0.001, seen as
 * the buffer after one read of column 0: H = lr A / bg (below the threshold). */
static void test_transfer2_derived(void) {
    static const struct {
        const char *name;
        int Ns;
        double beta;
    } agad[] = {
        {"agad_reram_sb", 50, 0.1}, {"agad_capacitor", 100, 0.2}, {"agad_ecram", 200, 0.25}};
    for (size_t i = 0; i < sizeof agad / sizeof agad[0]; ++i) {
        rpu_tile *t = preset_tile(agad[i].name, 1);
        if (!t) continue;
        const float x = 1.0f, d = -0.01f;
        CHECK_OK(rpu_tile_update(t, &x, &d, 1, 0.1f));
        const float *A = rpu_tile_device_array_by_name(t, "hidden_weights_0");
        const float *R = rpu_tile_device_array_by_name(t, "running_mean_weight");
        CHECK(A && R && A[0] != 0, "%s: A moved", agad[i].name);
        if (A && R && A[0] != 0)
            CHECK(fabs(R[0] / A[0] - agad[i].beta) < 1e-6, "%s: beta = %.8g, want %g", agad[i].name,
                  (double)(R[0] / A[0]), agad[i].beta);
        for (int v = 2; v <= agad[i].Ns + 1; ++v) {
            CHECK_OK(rpu_tile_update(t, &x, &d, 1, 0.1f));
            const double c = state_value(t, "in_chopper");
            if (v < agad[i].Ns)
                CHECK(c == 0, "%s: chopper switched at read %d < Ns %d", agad[i].name, v,
                      agad[i].Ns);
            else
                CHECK(c == 1, "%s: chopper %g after read %d, Ns %d", agad[i].name, c, v,
                      agad[i].Ns);
        }
        rpu_tile_destroy(&t);
    }
    rpu_tile *t = preset_tile("ttv2_idealized", 100);
    if (!t) return;
    float x[100] = {1.0f};
    const float d = -0.01f, lr = 1e-3f;
    CHECK_OK(rpu_tile_update(t, x, &d, 1, lr));
    const float *A = rpu_tile_device_array_by_name(t, "hidden_weights_0");
    const float *H = rpu_tile_device_array_by_name(t, "buffered_FP_weight_0");
    CHECK(A && H && H[0] != 0 && fabsf(H[0]) < 1, "ttv2_idealized: buffer %g", H ? H[0] : 0.0);
    if (A && H && H[0] != 0) {
        const double bg = (double)lr * A[0] / H[0];
        CHECK(fabs(bg - 0.001) < 1e-8, "ttv2_idealized: bg = %.9g, want 0.001", bg);
    }
    rpu_tile_destroy(&t);
}

/* ---------------------------------------------------------------------------------------
 * Errors.
 * ------------------------------------------------------------------------------------- */

static void test_unknown(void) {
    const char *const *names;
    int n = rpu_config_presets(&names);
    rpu_config c, before;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_set(&c, "forward.out_noise", "0.2"));
    before = c;
    CHECK_STATUS(rpu_config_set(&c, "preset", "reram"), RPU_ERR_CONFIG);
    CHECK(mentions("preset") && mentions("\"reram\""), "unknown preset: %s", rpu_last_error());
    /* the single presets by name and class, the compound presets by family and device */
    for (size_t i = 0; i < N_ROWS; ++i)
        if (rows[i].config_class) {
            char both[160];
            snprintf(both, sizeof both, "%s (%s)", rows[i].name, rows[i].config_class);
            CHECK(mentions(both), "unknown preset message lacks %s: %s", both, rpu_last_error());
        }
    for (size_t i = 0; i < N_COMPOUND_ROWS; ++i) {
        if (!strcmp(compound_rows[i].name, compound_rows[i].device)) { /* pcm: by name */
            char both[160];
            snprintf(both, sizeof both, "%s (%s)", compound_rows[i].name,
                     compound_rows[i].config_class);
            CHECK(mentions(both), "unknown preset message lacks %s: %s", both, rpu_last_error());
            continue;
        }
        const char *fam = compound_rows[i].type == RPU_DEVICE_TRANSFER ? "tiki_taka_X"
                          : compound_rows[i].type == RPU_DEVICE_MIXED_PRECISION
                              ? "mixed_precision_X"
                          : compound_rows[i].n_devices == 2 ? "X2"
                                                            : "X4";
        const char *at = strstr(rpu_last_error(), fam);
        char dev[64];
        snprintf(dev, sizeof dev, " %s", compound_rows[i].device);
        const char *close = at ? strchr(at, ')') : NULL;
        const char *d = at ? strstr(at, dev) : NULL;
        CHECK(at && close && d && d < close, "unknown preset message lacks %s with X = %s: %s", fam,
              compound_rows[i].device, rpu_last_error());
    }
    for (int i = 0; i < N_TRANSFER2; ++i) {
        const char *nm = t2rows[i].name;
        const char *fam = !strncmp(nm, "ttv2_", 5)            ? "ttv2_X"
                          : !strncmp(nm, "chopped_ttv2_", 13) ? "chopped_ttv2_X"
                                                              : "agad_X";
        char famx[32], dev[64];
        snprintf(famx, sizeof famx, "%s (X = ", fam); /* not the tail of chopped_ttv2_X */
        const char *at = strstr(rpu_last_error(), famx);
        if (at && !strcmp(fam, "ttv2_X") && at > rpu_last_error() && at[-1] == '_')
            at = strstr(at + 1, famx);
        snprintf(dev, sizeof dev, " %s", t2rows[i].dev);
        const char *close = at ? strchr(at, ')') : NULL;
        const char *d = at ? strstr(at, dev) : NULL;
        CHECK(at && close && d && d < close, "unknown preset message lacks %s with X = %s: %s", fam,
              t2rows[i].dev, rpu_last_error());
    }
    CHECK(n == (int)(N_COMPOUND_ROWS + 7) + N_TRANSFER2, "%d config presets", n);
    CHECK(memcmp(&c, &before, sizeof c) == 0, "failed preset changed cfg");

    CHECK_STATUS(rpu_config_set(&c, "device.preset", "ReRamSB"), RPU_ERR_CONFIG);
    CHECK(mentions("device.preset") && mentions("pcm") && mentions("gokmen_vlasov"),
          "unknown device preset: %s", rpu_last_error());
    /* device presets are few: their message names the aihwkit classes too */
    CHECK(mentions("ReRamSBPresetDevice"), "message lacks the aihwkit classes: %s",
          rpu_last_error());
    CHECK(memcmp(&c, &before, sizeof c) == 0, "failed device preset changed cfg");
    CHECK_STATUS(rpu_config_preset(&c, ""), RPU_ERR_CONFIG);
    CHECK_STATUS(rpu_config_preset(&c, "capacitor4x"), RPU_ERR_CONFIG);
    CHECK_STATUS(rpu_config_preset(NULL, "reram_sb"), RPU_ERR_ARG);
    CHECK_STATUS(rpu_device_params_preset(&c.device, "nope"), RPU_ERR_CONFIG);
    CHECK(memcmp(&c, &before, sizeof c) == 0, "failed device params preset changed cfg");

    /* names in any case, as enum values */
    rpu_config up = before;
    CHECK_OK(rpu_config_set(&up, "device.preset", "ReRam_SB"));
    CHECK(up.device.type == RPU_DEVICE_SOFT_BOUNDS_REFERENCE && up.device.w_max == 1.25f,
          "device.preset = ReRam_SB");
    /* a sub-device prefix is a device prefix: the preset goes to its keys, which a single
     * device does not have (an error naming the sub-device key) */
    CHECK_STATUS(rpu_config_set(&c, "device.unit_cell_devices.0.preset", "reram_sb"),
                 RPU_ERR_CONFIG);
    CHECK(mentions("device.unit_cell_devices.0.") && !mentions("unknown config key \"device."
                                                               "unit_cell_devices.0.preset"),
          "sub-device preset: %s", rpu_last_error());
    CHECK(memcmp(&c, &before, sizeof c) == 0, "failed sub-device preset changed cfg");
    /* not a device prefix: an unknown key, not a preset */
    CHECK_STATUS(rpu_config_set(&c, "forward.preset", "reram_sb"), RPU_ERR_CONFIG);
    CHECK(mentions("unknown config key"), "forward.preset: %s", rpu_last_error());
    /* directives are not fields */
    char buf[64];
    CHECK_STATUS(rpu_config_get(&c, "preset", buf, sizeof buf), RPU_ERR_CONFIG);
    CHECK_STATUS(rpu_config_get(&c, "device.preset", buf, sizeof buf), RPU_ERR_CONFIG);

    /* in a text: file and line of the preset key */
    CHECK_STATUS(rpu_config_parse(&c, "forward.out_noise = 0.1\n\npreset = reram_sbb\n", "x.ini"),
                 RPU_ERR_CONFIG);
    CHECK(mentions("x.ini:3:") && mentions("reram_sb"), "parse: %s", rpu_last_error());
    CHECK(memcmp(&c, &before, sizeof c) == 0, "failed parse changed cfg");
}

/* ---------------------------------------------------------------------------------------
 * Ordering and overrides.
 * ------------------------------------------------------------------------------------- */

static void test_ordering(void) {
    const spec_row *sb = &rows[1], *ideal = &rows[5];
    CHECK(!strcmp(sb->name, "reram_sb") && !strcmp(ideal->name, "idealized"), "row order");
    rpu_config c, want;

    /* the preset first wherever it stands, then every other key in order */
    expected_config(sb, &want);
    want.forward.out_noise = 0.05f;
    want.device.dw_min = 0.003f;
    want.mapping.max_input_size = 256;
    const char *texts[] = {
        "forward.out_noise = 0.05\ndevice.dw_min = 0.003\npreset = reram_sb\n"
        "mapping.max_input_size = 256\n",
        "preset = reram_sb\nforward.out_noise = 0.05\ndevice.dw_min = 0.003\n"
        "mapping.max_input_size = 256\n",
        "mapping.max_input_size = 256\ndevice.dw_min = 0.003\nforward.out_noise = 0.05\n"
        "preset = reram_sb\n"};
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; ++t) {
        CHECK_OK(rpu_config_default(&c, RPU_KIND_FLOATING_POINT));
        CHECK_OK(rpu_config_parse(&c, texts[t], "order.ini"));
        CHECK(rpu_config_equal(&c, &want), "text %zu: %s", t, first_difference(&c, &want));
    }

    /* the same through rpu_config_set_entries */
    const char *keys[] = {"device.dw_min", " preset ", "forward.out_noise",
                          "mapping.max_input_size"};
    const char *values[] = {"0.003", "reram_sb", "0.05", "256"};
    int bad = 7;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_set_entries(&c, 4, keys, values, &bad));
    CHECK(bad == -1, "bad = %d on success", bad);
    CHECK(rpu_config_equal(&c, &want), "set_entries: %s", first_difference(&c, &want));

    /* a device preset after the config preset (any position): the preset's IO, the other
     * device; a device field after both overrides the device preset */
    expected_config(sb, &want);
    expected_device(ideal, &want.device);
    want.device.dw_min_std = 0.5f;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_parse(
        &c, "device.dw_min_std = 0.5\ndevice.preset = idealized\npreset = reram_sb\n", "d.ini"));
    CHECK(rpu_config_equal(&c, &want), "device.preset over preset: %s",
          first_difference(&c, &want));

    /* device.type after a preset: the preset's IO, that type's defaults */
    expected_config(sb, &want);
    CHECK_OK(rpu_device_params_default(&want.device, RPU_DEVICE_LINEAR_STEP));
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_parse(&c, "device.type = linear_step\npreset = reram_sb\n", "t.ini"));
    CHECK(rpu_config_equal(&c, &want), "device.type with preset: %s", first_difference(&c, &want));

    /* "kind" is applied first too: the old trap of a kind after keys is gone */
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_parse(&c, "forward.out_noise = 0.3\nkind = single\n", "k.ini"));
    CHECK(c.forward.out_noise == 0.3f, "kind after a key reset it: out_noise %g",
          (double)c.forward.out_noise);

    /* single calls apply in the caller's order: a preset set last resets earlier keys */
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_set(&c, "forward.out_noise", "0.3"));
    CHECK_OK(rpu_config_set(&c, "preset", "reram_sb"));
    CHECK(c.forward.out_noise == 0.1f, "rpu_config_set(preset) kept out_noise %g",
          (double)c.forward.out_noise);

    /* clashes of the same level: error at the later line, naming both keys */
    struct {
        const char *text, *line, *k1, *k2;
    } clash[] = {
        {"kind = single\nforward.out_noise = 0.1\npreset = reram_sb\n", "c.ini:3:", "kind",
         "preset"},
        {"preset = reram_sb\nkind = inference\n", "c.ini:2:", "kind", "preset"},
        {"preset = reram_sb\ndevice.type = soft_bounds\ndevice.preset = reram_sb\n",
         "c.ini:3:", "device.type", "device.preset"},
    };
    for (size_t i = 0; i < sizeof clash / sizeof clash[0]; ++i) {
        rpu_config before;
        CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
        before = c;
        CHECK_STATUS(rpu_config_parse(&c, clash[i].text, "c.ini"), RPU_ERR_CONFIG);
        CHECK(mentions(clash[i].line) && mentions(clash[i].k1) && mentions(clash[i].k2),
              "clash %zu: %s", i, rpu_last_error());
        CHECK(memcmp(&c, &before, sizeof c) == 0, "clash %zu changed cfg", i);
    }
    const char *ck[] = {"preset", "forward.out_noise", "kind"};
    const char *cv[] = {"reram_sb", "0.1", "single"};
    bad = -1;
    CHECK_STATUS(rpu_config_set_entries(&c, 3, ck, cv, &bad), RPU_ERR_CONFIG);
    CHECK(bad == 2, "set_entries clash at entry %d, want 2", bad);
    const char *bk[] = {"preset", "forward.out_noise"};
    const char *bv[] = {"reram_sb", "loud"};
    CHECK_STATUS(rpu_config_set_entries(&c, 2, bk, bv, &bad), RPU_ERR_CONFIG);
    CHECK(bad == 1 && mentions("forward.out_noise"), "set_entries bad value at %d: %s", bad,
          rpu_last_error());
    CHECK_STATUS(rpu_config_set_entries(NULL, 2, bk, bv, &bad), RPU_ERR_ARG);
    CHECK_OK(rpu_config_set_entries(&c, 0, NULL, NULL, NULL));

    /* which --set key replaces which entry of a file */
    struct {
        const char *key, *other;
        bool want;
    } rep[] = {
        {"preset", "kind", true},
        {"kind", "preset", true},
        {"preset", "device.type", true},
        {"preset", "device.preset", true},
        {"device.preset", "device.type", true},
        {"device.type", "device.preset", true},
        {"kind", "device.type", false},
        {"device.preset", "kind", false},
        {"device.preset", "preset", false},
        {"device.type", "preset", false},
        {"preset", "preset", false},
        {"preset", "forward.out_noise", false},
        {"forward.out_noise", "kind", false},
        /* sub-devices of compounds (keys recognised by shape) */
        {"device.unit_cell_devices.0.preset", "device.unit_cell_devices.0.type", true},
        {"device.unit_cell_devices.1.type", "device.unit_cell_devices.1.preset", true},
        {"device.unit_cell_devices.0.preset", "device.unit_cell_devices.1.type", false},
        {"device.preset", "device.unit_cell_devices.0.type", true},
        {"preset", "device.unit_cell_devices.3.preset", true},
        {"device.type", "device.unit_cell_devices.0.type", false},
        {"device.unit_cell_devices.0.unit_cell_devices.1.preset",
         "device.unit_cell_devices.0.unit_cell_devices.1.type", true},
        {"device.unit_cell_devices.x.preset", "device.unit_cell_devices.x.type", false},
        {"device.unit_cell_devices..preset", "device.unit_cell_devices..type", false},
        {"forward.unit_cell_devices.0.preset", "forward.unit_cell_devices.0.type", false},
    };
    for (size_t i = 0; i < sizeof rep / sizeof rep[0]; ++i)
        CHECK(rpu_config_key_replaces(rep[i].key, rep[i].other) == rep[i].want,
              "rpu_config_key_replaces(%s, %s) != %d", rep[i].key, rep[i].other, rep[i].want);
}

/* ---------------------------------------------------------------------------------------
 * Round trip: a preset prints back as its expanded keys, which parse to the same config.
 * ------------------------------------------------------------------------------------- */

static void test_round_trip(void) {
    for (size_t i = 0; i < N_ROWS; ++i) {
        rpu_config c, back;
        CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
        if (rows[i].config_class)
            CHECK_OK(rpu_config_preset(&c, rows[i].name));
        else
            CHECK_OK(rpu_config_set(&c, "device.preset", rows[i].name));
        CHECK_OK(rpu_config_set(&c, "forward.out_noise", "0.07")); /* an override */
        char *text = NULL;
        CHECK_OK(rpu_config_to_text(&c, &text));
        if (!text) continue;
        CHECK(strstr(text, "preset") == NULL, "%s: written text names a preset", rows[i].name);
        CHECK_OK(rpu_config_default(&back, RPU_KIND_INFERENCE));
        CHECK_OK(rpu_config_parse(&back, text, "written"));
        CHECK(rpu_config_equal(&c, &back), "%s: round trip: %s", rows[i].name,
              first_difference(&back, &c));
        free(text);
    }
}

/* ---------------------------------------------------------------------------------------
 * Experiment files: rpu.preset in [rpu] and by --set.
 * ------------------------------------------------------------------------------------- */

static const char *exp_body = "[run]\nepochs = 1\n[layer.fc]\ntype = linear\nout = 2\n"
                              "[loss]\ntype = cross_entropy\n";

static void test_experiment(void) {
    char text[1024];
    rpu_config want;
    const spec_row *sb = &rows[1];
    rpu_experiment *e = NULL;

    /* preset after an override key in [rpu] */
    snprintf(text, sizeof text, "[rpu]\nforward.out_noise = 0.05\npreset = reram_sb\n%s", exp_body);
    rpu_status s = rpu_experiment_parse(text, "p.ini", NULL, 0, &e);
    CHECK(s == RPU_OK, "experiment with preset: %s", rpu_last_error());
    expected_config(sb, &want);
    want.forward.out_noise = 0.05f;
    if (e) {
        CHECK(rpu_config_equal(rpu_experiment_config(e), &want), "[rpu] preset: %s",
              first_difference(rpu_experiment_config(e), &want));
        /* the stored text keeps the preset as written and reads back the same */
        const char *stored = rpu_experiment_text(e);
        CHECK(strstr(stored, "preset = reram_sb") != NULL, "stored text: %s", stored);
        rpu_experiment *again = NULL;
        CHECK_OK(rpu_experiment_parse(stored, "stored", NULL, 0, &again));
        if (again)
            CHECK(rpu_config_equal(rpu_experiment_config(again), &want) &&
                      !strcmp(rpu_experiment_text(again), stored),
                  "stored experiment is not a fixed point");
        rpu_experiment_free(&again);
    }
    rpu_experiment_free(&e);

    /* --set rpu.preset over a file with kind and device.type: they are replaced */
    snprintf(text, sizeof text,
             "[rpu]\nkind = single\ndevice.type = constant_step\ndevice.dw_min = 0.003\n%s",
             exp_body);
    const char *ov[] = {"rpu.preset=reram_sb"};
    s = rpu_experiment_parse(text, "f.ini", ov, 1, &e);
    CHECK(s == RPU_OK, "--set rpu.preset: %s", rpu_last_error());
    expected_config(sb, &want);
    want.device.dw_min = 0.003f; /* the file's device field still overrides */
    if (e) {
        CHECK(rpu_config_equal(rpu_experiment_config(e), &want), "--set rpu.preset: %s",
              first_difference(rpu_experiment_config(e), &want));
        const char *stored = rpu_experiment_text(e);
        CHECK(strstr(stored, "kind") == NULL && strstr(stored, "device.type") == NULL &&
                  strstr(stored, "[rpu]\npreset = reram_sb\n") != NULL,
              "--set rpu.preset: stored text %s", stored);
    }
    rpu_experiment_free(&e);

    /* --set rpu.kind over a file with a preset replaces the preset */
    snprintf(text, sizeof text, "[rpu]\npreset = reram_sb\n%s", exp_body);
    const char *ovk[] = {"rpu.kind=floating_point"};
    s = rpu_experiment_parse(text, "g.ini", ovk, 1, &e);
    CHECK(s == RPU_OK, "--set rpu.kind over preset: %s", rpu_last_error());
    if (e) CHECK(rpu_experiment_config(e)->kind == RPU_KIND_FLOATING_POINT, "kind not applied");
    rpu_experiment_free(&e);

    /* kind and preset in one file: error at the later line naming both */
    snprintf(text, sizeof text, "[rpu]\npreset = reram_sb\nkind = single\n%s", exp_body);
    CHECK_STATUS(rpu_experiment_parse(text, "h.ini", NULL, 0, &e), RPU_ERR_CONFIG);
    CHECK(mentions("h.ini:3:") && mentions("preset") && mentions("kind"), "clash: %s",
          rpu_last_error());
    /* an unknown preset by --set names the override and lists the names */
    snprintf(text, sizeof text, "[rpu]\nkind = single\n%s", exp_body);
    const char *ovu[] = {"rpu.preset=reram"};
    CHECK_STATUS(rpu_experiment_parse(text, "u.ini", ovu, 1, &e), RPU_ERR_CONFIG);
    CHECK(mentions("--set rpu.preset") && mentions("reram_es") && mentions("idealized"),
          "unknown preset by --set: %s", rpu_last_error());
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_device_presets();
    test_config_presets();
    test_compound_presets();
    test_unknown();
    test_ordering();
    test_round_trip();
    test_experiment();
    test_transfer2_presets();
    test_transfer2_derived();
    return tl_finish();
}
