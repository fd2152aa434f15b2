/* Tests of the pure state machine: every command -> state and effects,
 * validation of every variable type, idempotency, replay, snapshot round
 * trip, restore of garbage, JSON mapping. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "consensus/consensus.h"
#include "consensus/internal.h"
#include "mb_test.h"
#include "sm_fixture.h"

static void *snap(size_t *len)
{
    void *buf = NULL;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_snapshot(sm, NULL, &buf, len, NULL), MB_OK);
    return buf;
}

static consensus_result define_float(const char *name, double min, double max, double initial)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = (char *)name, .by = "t" };
    c.spec.type = MB_VT_FLOAT;
    c.spec.min = min;
    c.spec.max = max;
    c.value.type = MB_VT_FLOAT;
    c.value.u.f = initial;
    return run(&c);
}

static consensus_result set_float(const char *name, double v)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_VAR_SET, .name = (char *)name, .by = "agent-1" };
    c.value.type = MB_VT_FLOAT;
    c.value.u.f = v;
    return run(&c);
}

/* ---------------- variables ---------------- */

static void test_define_then_get_returns_value_and_version(void)
{
    consensus_result r = define_float("lr", 1e-5, 1.0, 0.01);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_EQUAL(r.version, 1);
    const consensus_var *v = consensus_sm_var_get(sm, "lr");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(v->value.u.f, 0.01);
    CU_ASSERT_EQUAL(v->version, 1);
    CU_ASSERT_EQUAL(v->created, 1);
    CU_ASSERT_STRING_EQUAL(v->changed_by, "t");
    const consensus_effect *ev = find_effect(CONSENSUS_FX_EVENT, "var.define");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_STRING_EQUAL(ev->subject, "lr");
    CU_ASSERT_PTR_NOT_NULL(strstr(ev->payload, "\"min\":"));
    const consensus_effect *w = find_effect(CONSENSUS_FX_WATCH, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL(w->version, 1);
}

static void test_define_rejects_existing_name(void)
{
    define_float("x", 0, 1, 0.5);
    consensus_result r = define_float("x", 0, 2, 0.5);
    CU_ASSERT_EQUAL(r.code, MB_EEXIST);
    CU_ASSERT_EQUAL(fx.n, 0);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "x")->spec.max, 1.0);
}

static void test_define_rejects_bad_specs(void)
{
    CU_ASSERT_EQUAL(define_float("a", 2, 1, 1.5).code, MB_EINVAL);
    CU_ASSERT_EQUAL(define_float("bad name", 0, 1, 0.5).code, MB_EINVAL);
    CU_ASSERT_EQUAL(define_float("b", 0, INFINITY, 0.5).code, MB_EINVAL);
    consensus_cmd c = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = "c" };
    c.spec.type = MB_VT_FLOAT;
    c.spec.min = 0;
    c.spec.max = 1;
    c.spec.log_scale = 1;
    consensus_result r = run(&c);
    CU_ASSERT_EQUAL(r.code, MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "log scale"));
    char *opts[] = { "a", "a" };
    consensus_cmd ch = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = "d" };
    ch.spec.type = MB_VT_CHOICE;
    ch.spec.options = opts;
    ch.spec.n_options = 2;
    CU_ASSERT_EQUAL(run(&ch).code, MB_EINVAL);
    consensus_cmd t = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = "e" };
    t.spec.type = MB_VT_TENSOR;
    r = run(&t);
    CU_ASSERT_EQUAL(r.code, MB_EINVAL); /* no fixed shape and no initial value */
    /* A field of another type makes the spec invalid. */
    consensus_cmd m = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = "f" };
    m.spec.type = MB_VT_BOOL;
    m.spec.dim = 3;
    consensus_result rr;
    consensus_sm_apply_cmd(sm, ++next_index, &m, &rr, NULL);
    CU_ASSERT_EQUAL(rr.code, MB_EINVAL);
    CU_ASSERT_EQUAL(consensus_sm_var_count(sm), 0);
}

static void test_set_rejects_value_outside_range(void)
{
    define_float("lr", 1e-5, 1.0, 0.01);
    consensus_result r = set_float("lr", 2.5);
    CU_ASSERT_EQUAL(r.code, MB_ECONSTRAINT);
    CU_ASSERT_STRING_EQUAL(r.msg, "variable \"lr\": value 2.5 above max 1.0");
    CU_ASSERT_EQUAL(fx.n, 0);
    r = set_float("lr", 1e-6);
    CU_ASSERT_EQUAL(r.code, MB_ECONSTRAINT);
    CU_ASSERT_STRING_EQUAL(r.msg, "variable \"lr\": value 1e-06 below min 1e-05");
    r = set_float("lr", NAN);
    CU_ASSERT_EQUAL(r.code, MB_EINVAL);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "lr")->value.u.f, 0.01);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "lr")->version, 1);
}

static void test_set_changes_value_version_and_emits_event_and_watch(void)
{
    define_float("lr", 0, 1, 0.5);
    consensus_result r = set_float("lr", 0.25);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_EQUAL(r.version, 2);
    const consensus_var *v = consensus_sm_var_get(sm, "lr");
    CU_ASSERT_EQUAL(v->value.u.f, 0.25);
    CU_ASSERT_EQUAL(v->version, 2);
    CU_ASSERT_STRING_EQUAL(v->changed_by, "agent-1");
    const consensus_effect *ev = find_effect(CONSENSUS_FX_EVENT, "var.set");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_STRING_EQUAL(ev->payload, "{\"name\":\"lr\",\"value\":0.25,\"version\":2,"
                                        "\"prev_version\":1,\"by\":\"agent-1\"}");
    const consensus_effect *w = find_effect(CONSENSUS_FX_WATCH, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_STRING_EQUAL(w->subject, "lr");
    CU_ASSERT_EQUAL(w->version, 2);
    CU_ASSERT_EQUAL(w->deleted, 0);
}

static void test_set_unknown_variable_is_not_found(void)
{
    consensus_result r = set_float("nope", 1);
    CU_ASSERT_EQUAL(r.code, MB_ENOTFOUND);
    CU_ASSERT_STRING_EQUAL(r.msg, "variable \"nope\" not found");
}

static void test_compare_and_set_checks_version(void)
{
    define_float("x", 0, 1, 0.5);
    consensus_cmd c = {
        .kind = CONSENSUS_CMD_VAR_SET, .name = "x", .has_expected = 1, .expected = 7
    };
    c.value.type = MB_VT_FLOAT;
    c.value.u.f = 0.1;
    consensus_result r = run(&c);
    CU_ASSERT_EQUAL(r.code, MB_ECONFLICT);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "x")->value.u.f, 0.5);
    c.expected = 1;
    r = run(&c);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "x")->value.u.f, 0.1);
    /* The same expected version again is now stale. */
    r = run(&c);
    CU_ASSERT_EQUAL(r.code, MB_ECONFLICT);
}

static void test_delete_removes_variable_and_notifies_watchers(void)
{
    define_float("x", 0, 1, 0.5);
    consensus_cmd d = {
        .kind = CONSENSUS_CMD_VAR_DELETE, .name = "x", .has_expected = 1, .expected = 9
    };
    CU_ASSERT_EQUAL(run(&d).code, MB_ECONFLICT);
    CU_ASSERT_PTR_NOT_NULL(consensus_sm_var_get(sm, "x"));
    d.has_expected = 0;
    consensus_result r = run(&d);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_var_get(sm, "x"));
    const consensus_effect *w = find_effect(CONSENSUS_FX_WATCH, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL(w->deleted, 1);
    CU_ASSERT_PTR_NOT_NULL(find_effect(CONSENSUS_FX_EVENT, "var.delete"));
    CU_ASSERT_EQUAL(run(&d).code, MB_ENOTFOUND);
}

static void test_consensus_policy_refuses_direct_set(void)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_VAR_DEFINE,
                        .name = "p",
                        .policy = MB_POLICY_CONSENSUS };
    c.spec.type = MB_VT_BOOL;
    CU_ASSERT_EQUAL(run(&c).code, MB_OK);
    consensus_cmd s = { .kind = CONSENSUS_CMD_VAR_SET, .name = "p" };
    s.value.type = MB_VT_BOOL;
    s.value.u.b = 1;
    CU_ASSERT_EQUAL(run(&s).code, MB_EPERM);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "p")->value.u.b, 0);
}

/* Validation of each type through the pure validator. */
static void test_validate_int_range_and_step(void)
{
    mb_var_spec s = { .type = MB_VT_INT, .imin = 1, .imax = 9, .step = 2 };
    mb_value v = { .type = MB_VT_INT, .u.i = 5 };
    mb_error e;
    CU_ASSERT_EQUAL(mb_var_spec_check("n", &s, &e), MB_OK);
    CU_ASSERT_EQUAL(mb_value_validate("n", &s, &v, &e), MB_OK);
    v.u.i = 4;
    CU_ASSERT_EQUAL(mb_value_validate("n", &s, &v, &e), MB_ECONSTRAINT);
    CU_ASSERT_STRING_EQUAL(e.msg, "variable \"n\": value 4 not on step 2 from min 1");
    v.u.i = 11;
    CU_ASSERT_EQUAL(mb_value_validate("n", &s, &v, &e), MB_ECONSTRAINT);
    v.type = MB_VT_FLOAT;
    CU_ASSERT_EQUAL(mb_value_validate("n", &s, &v, &e), MB_EINVAL);
    /* Extreme ranges do not overflow. */
    mb_var_spec big = { .type = MB_VT_INT, .imin = INT64_MIN, .imax = INT64_MAX, .step = 3 };
    mb_value x = { .type = MB_VT_INT, .u.i = INT64_MAX };
    CU_ASSERT_EQUAL(mb_value_validate("n", &big, &x, &e),
                    ((uint64_t)INT64_MAX - (uint64_t)INT64_MIN) % 3 == 0 ? MB_OK : MB_ECONSTRAINT);
}

static void test_validate_choice_bool_probability(void)
{
    char *opts[] = { "adam", "sgd" };
    mb_var_spec s = { .type = MB_VT_CHOICE, .options = opts, .n_options = 2 };
    mb_value v = { .type = MB_VT_CHOICE, .u.choice = "sgd" };
    mb_error e;
    CU_ASSERT_EQUAL(mb_value_validate("opt", &s, &v, &e), MB_OK);
    v.u.choice = "rmsprop";
    CU_ASSERT_EQUAL(mb_value_validate("opt", &s, &v, &e), MB_ECONSTRAINT);
    CU_ASSERT_STRING_EQUAL(e.msg, "variable \"opt\": value \"rmsprop\" is not one of the options");
    double w[] = { 1, -1 };
    s.weights = w;
    CU_ASSERT_EQUAL(mb_var_spec_check("opt", &s, &e), MB_EINVAL);
    mb_var_spec b = { .type = MB_VT_BOOL };
    mb_value bv = { .type = MB_VT_BOOL, .u.b = 2 };
    CU_ASSERT_EQUAL(mb_value_validate("b", &b, &bv, &e), MB_EINVAL);
    mb_var_spec p = { .type = MB_VT_PROBABILITY };
    mb_value pv = { .type = MB_VT_PROBABILITY, .u.f = 1.0 };
    CU_ASSERT_EQUAL(mb_value_validate("p", &p, &pv, &e), MB_OK);
    pv.u.f = 1.01;
    CU_ASSERT_EQUAL(mb_value_validate("p", &p, &pv, &e), MB_ECONSTRAINT);
    pv.u.f = -0.0001;
    CU_ASSERT_EQUAL(mb_value_validate("p", &p, &pv, &e), MB_ECONSTRAINT);
}

static void test_validate_distribution_and_embedding(void)
{
    mb_var_spec d = { .type = MB_VT_DISTRIBUTION, .dim = 3 };
    double ok[] = { 0.2, 0.3, 0.5 }, neg[] = { -0.1, 0.6, 0.5 }, off[] = { 0.2, 0.3, 0.4 };
    mb_value v = { .type = MB_VT_DISTRIBUTION, .u.vec = { ok, 3 } };
    mb_error e;
    CU_ASSERT_EQUAL(mb_value_validate("d", &d, &v, &e), MB_OK);
    v.u.vec.data = neg;
    CU_ASSERT_EQUAL(mb_value_validate("d", &d, &v, &e), MB_ECONSTRAINT);
    v.u.vec.data = off;
    CU_ASSERT_EQUAL(mb_value_validate("d", &d, &v, &e), MB_ECONSTRAINT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "sum to 0.9"));
    d.tolerance = 0.1;
    CU_ASSERT_EQUAL(mb_value_validate("d", &d, &v, &e), MB_OK);
    v.u.vec.n = 2;
    CU_ASSERT_EQUAL(mb_value_validate("d", &d, &v, &e), MB_EINVAL);

    mb_var_spec m = { .type = MB_VT_EMBEDDING, .dim = 2, .unit_norm = 1 };
    double unit[] = { 0.6, 0.8 }, longv[] = { 1, 1 };
    mb_value ev = { .type = MB_VT_EMBEDDING, .u.vec = { unit, 2 } };
    CU_ASSERT_EQUAL(mb_value_validate("e", &m, &ev, &e), MB_OK);
    ev.u.vec.data = longv;
    CU_ASSERT_EQUAL(mb_value_validate("e", &m, &ev, &e), MB_ECONSTRAINT);
    m.unit_norm = 0;
    CU_ASSERT_EQUAL(mb_value_validate("e", &m, &ev, &e), MB_OK);
}

static void test_validate_tensor_shape_and_size_limit(void)
{
    uint32_t shape[] = { 2, 3 }, other[] = { 3, 2 };
    float data[6] = { 1, 2, 3, 4, 5, 6 };
    mb_var_spec s = { .type = MB_VT_TENSOR, .shape = shape, .ndim = 2 };
    mb_value v = { .type = MB_VT_TENSOR, .u.tensor = { shape, 2, data, 6 } };
    mb_error e;
    CU_ASSERT_EQUAL(mb_var_spec_check("t", &s, &e), MB_OK);
    CU_ASSERT_EQUAL(mb_value_validate("t", &s, &v, &e), MB_OK);
    v.u.tensor.shape = other;
    CU_ASSERT_EQUAL(mb_value_validate("t", &s, &v, &e), MB_ECONSTRAINT);
    CU_ASSERT_STRING_EQUAL(e.msg, "variable \"t\": value shape [3,2], expected [2,3]");
    mb_var_spec any = { .type = MB_VT_TENSOR, .max_elements = 4 };
    CU_ASSERT_EQUAL(mb_value_validate("t", &any, &v, &e), MB_ECONSTRAINT);
    any.max_elements = 6;
    CU_ASSERT_EQUAL(mb_value_validate("t", &any, &v, &e), MB_OK);
    v.u.tensor.n = 5;
    CU_ASSERT_EQUAL(mb_value_validate("t", &any, &v, &e), MB_EINVAL);
    v.u.tensor.n = 6;
    data[3] = NAN;
    CU_ASSERT_EQUAL(mb_value_validate("t", &any, &v, &e), MB_EINVAL);
}

static void test_define_without_value_uses_type_default(void)
{
    uint32_t shape[] = { 2, 2 };
    char *opts[] = { "x", "y" };
    mb_var_spec specs[] = {
        { .type = MB_VT_FLOAT, .min = -1, .max = 1 },
        { .type = MB_VT_INT, .imin = -7, .imax = 10, .step = 3 },
        { .type = MB_VT_CHOICE, .options = opts, .n_options = 2 },
        { .type = MB_VT_BOOL },
        { .type = MB_VT_PROBABILITY },
        { .type = MB_VT_DISTRIBUTION, .dim = 4 },
        { .type = MB_VT_EMBEDDING, .dim = 3, .unit_norm = 1 },
        { .type = MB_VT_TENSOR, .shape = shape, .ndim = 2 },
    };
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        char name[16];
        snprintf(name, sizeof(name), "v%zu", i);
        consensus_cmd c = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = name, .spec = specs[i] };
        consensus_result r = run(&c);
        CU_ASSERT_EQUAL(r.code, MB_OK);
        const consensus_var *v = consensus_sm_var_get(sm, name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        CU_ASSERT_EQUAL(mb_value_validate(name, &v->spec, &v->value, NULL), MB_OK);
    }
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "v1")->value.u.i, 2); /* -7 + 3*3 */
    CU_ASSERT_STRING_EQUAL(consensus_sm_var_get(sm, "v2")->value.u.choice, "x");
}

/* ---------------- idempotency and replay ---------------- */

static void test_same_idempotency_id_returns_first_result_without_reapplying(void)
{
    define_float("x", 0, 1, 0.5);
    consensus_cmd c = {
        .kind = CONSENSUS_CMD_VAR_SET, .name = "x", .client_id = 42, .request_seq = 1
    };
    c.value.type = MB_VT_FLOAT;
    c.value.u.f = 0.7;
    consensus_result r1 = run(&c);
    CU_ASSERT_EQUAL(r1.code, MB_OK);
    CU_ASSERT_EQUAL(r1.version, 2);
    /* Someone else writes in between; the retry must not overwrite it. */
    set_float("x", 0.9);
    consensus_result r2 = run(&c);
    CU_ASSERT_EQUAL(r2.code, MB_OK);
    CU_ASSERT_EQUAL(r2.version, 2);
    CU_ASSERT_EQUAL(fx.n, 0);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "x")->value.u.f, 0.9);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "x")->version, 3);
    /* A failed command keeps its failure too. */
    consensus_cmd bad = c;
    bad.request_seq = 2;
    bad.value.u.f = 5;
    CU_ASSERT_EQUAL(run(&bad).code, MB_ECONSTRAINT);
    bad.value.u.f = 0.1;
    consensus_result r3 = run(&bad);
    CU_ASSERT_EQUAL(r3.code, MB_ECONSTRAINT);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "x")->value.u.f, 0.9);
    consensus_result look;
    CU_ASSERT_TRUE(consensus_sm_dedup_lookup(sm, 42, 1, &look));
    CU_ASSERT_EQUAL(look.version, 2);
    CU_ASSERT_FALSE(consensus_sm_dedup_lookup(sm, 42, 3, NULL));
}

static void test_applying_the_same_index_twice_is_harmless(void)
{
    define_float("x", 0, 1, 0.5);
    consensus_cmd c = { .kind = CONSENSUS_CMD_VAR_SET, .name = "x" };
    c.value.type = MB_VT_FLOAT;
    c.value.u.f = 0.3;
    void *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(consensus_cmd_encode(&c, NULL, &buf, &len, NULL), MB_OK);
    consensus_result r;
    consensus_effects_clear(&fx);
    consensus_sm_apply(sm, 5, buf, len, &r, &fx);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_EQUAL(fx.n, 2);
    size_t l1, l2;
    void *s1 = snap(&l1);
    consensus_effects_clear(&fx);
    consensus_sm_apply(sm, 5, buf, len, &r, &fx);
    consensus_sm_apply(sm, 3, buf, len, &r, &fx);
    CU_ASSERT_EQUAL(fx.n, 0);
    void *s2 = snap(&l2);
    CU_ASSERT_TRUE(l1 == l2 && memcmp(s1, s2, l1) == 0);
    CU_ASSERT_EQUAL(consensus_sm_applied_index(sm), 5);
    free(buf);
    free(s1);
    free(s2);
}

static void test_dedup_table_evicts_oldest_first(void)
{
    consensus_sm_free(sm);
    consensus_sm_options o = { .dedup_capacity = 4 };
    CU_ASSERT_EQUAL_FATAL(consensus_sm_new(&o, &sm), MB_OK);
    define_float("x", 0, 100, 0);
    for (uint64_t i = 1; i <= 6; i++) {
        consensus_cmd c = {
            .kind = CONSENSUS_CMD_VAR_SET, .name = "x", .client_id = 7, .request_seq = i
        };
        c.value.type = MB_VT_FLOAT;
        c.value.u.f = (double)i;
        CU_ASSERT_EQUAL(run(&c).code, MB_OK);
    }
    CU_ASSERT_FALSE(consensus_sm_dedup_lookup(sm, 7, 1, NULL));
    CU_ASSERT_FALSE(consensus_sm_dedup_lookup(sm, 7, 2, NULL));
    for (uint64_t i = 3; i <= 6; i++)
        CU_ASSERT_TRUE(consensus_sm_dedup_lookup(sm, 7, i, NULL));
    /* The table survives a snapshot round trip with its order. */
    size_t len;
    void *buf = snap(&len);
    consensus_sm *r = NULL;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_restore(buf, len, &r, NULL), MB_OK);
    CU_ASSERT_TRUE(consensus_sm_dedup_lookup(r, 7, 3, NULL));
    consensus_sm_free(sm);
    sm = r;
    consensus_cmd c = {
        .kind = CONSENSUS_CMD_VAR_SET, .name = "x", .client_id = 7, .request_seq = 7
    };
    c.value.type = MB_VT_FLOAT;
    c.value.u.f = 7;
    run(&c);
    CU_ASSERT_FALSE(consensus_sm_dedup_lookup(sm, 7, 3, NULL));
    CU_ASSERT_TRUE(consensus_sm_dedup_lookup(sm, 7, 4, NULL));
    free(buf);
}

/* ---------------- bad input ---------------- */

static void test_bad_commands_change_nothing(void)
{
    define_float("x", 0, 1, 0.5);
    size_t l0;
    void *s0 = snap(&l0);
    uint8_t garbage[] = { 0xff, 0x01, 0x02, 0x03, 0x10, 0x99 };
    consensus_result r;
    consensus_sm_apply(sm, ++next_index, garbage, sizeof(garbage), &r, &fx);
    CU_ASSERT_EQUAL(r.code, MB_EPROTO);
    consensus_sm_apply(sm, ++next_index, NULL, 0, &r, &fx);
    CU_ASSERT_EQUAL(r.code, MB_EPROTO);
    CU_ASSERT_EQUAL(set_float("x", 3).code, MB_ECONSTRAINT);
    CU_ASSERT_EQUAL(set_float("y", 0).code, MB_ENOTFOUND);
    consensus_cmd wrong = { .kind = CONSENSUS_CMD_VAR_SET, .name = "x" };
    wrong.value.type = MB_VT_INT;
    CU_ASSERT_EQUAL(run(&wrong).code, MB_EINVAL);
    consensus_cmd rm = { .kind = CONSENSUS_CMD_NODE_REMOVE, .node.id = 9 };
    CU_ASSERT_EQUAL(run(&rm).code, MB_ENOTFOUND);
    consensus_cmd ag = {
        .kind = CONSENSUS_CMD_AGENT_PLACE, .agent_id = "a", .agent_kind = "k", .agent_node = 1
    };
    CU_ASSERT_EQUAL(run(&ag).code, MB_ENOTFOUND);
    CU_ASSERT_EQUAL(fx.n, 0);
    /* Only the applied index moved: the tables are byte-identical. */
    consensus_sm *before = NULL;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_restore(s0, l0, &before, NULL), MB_OK);
    CU_ASSERT_EQUAL(consensus_sm_var_count(sm), consensus_sm_var_count(before));
    const consensus_var *a = consensus_sm_var_get(sm, "x"), *b = consensus_sm_var_get(before, "x");
    CU_ASSERT_TRUE(mb_value_equal(&a->value, &b->value));
    CU_ASSERT_EQUAL(a->version, b->version);
    CU_ASSERT_EQUAL(consensus_sm_node_count(sm), 0);
    CU_ASSERT_EQUAL(consensus_sm_agent_count(sm), 0);
    consensus_sm_free(before);
    free(s0);
}

/* ---------------- nodes and agents ---------------- */

static consensus_result node_add(uint64_t id)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_NODE_ADD };
    c.node.id = id;
    c.node.raft_addr = "127.0.0.1:9001";
    c.node.mesh_addr = "tcp://127.0.0.1:9101";
    return run(&c);
}

static void test_node_add_update_remove(void)
{
    CU_ASSERT_EQUAL(node_add(2).code, MB_OK);
    CU_ASSERT_EQUAL(node_add(1).code, MB_OK);
    CU_ASSERT_EQUAL(node_add(2).code, MB_EEXIST);
    CU_ASSERT_EQUAL(consensus_sm_node_at(sm, 0)->id, 1);
    consensus_cmd u = { .kind = CONSENSUS_CMD_NODE_UPDATE,
                        .node_fields = CONSENSUS_NODE_SET_STATUS | CONSENSUS_NODE_SET_ROLE };
    u.node.id = 2;
    u.node.status = CONSENSUS_NODE_SUSPECT;
    u.node.role = CONSENSUS_ROLE_STANDBY;
    CU_ASSERT_EQUAL(run(&u).code, MB_OK);
    const consensus_node *n = consensus_sm_node_get(sm, 2);
    CU_ASSERT_EQUAL(n->status, CONSENSUS_NODE_SUSPECT);
    CU_ASSERT_EQUAL(n->role, CONSENSUS_ROLE_STANDBY);
    CU_ASSERT_STRING_EQUAL(n->raft_addr, "127.0.0.1:9001"); /* untouched */
    CU_ASSERT_PTR_NOT_NULL(find_effect(CONSENSUS_FX_EVENT, "node.update"));
    consensus_cmd rm = { .kind = CONSENSUS_CMD_NODE_REMOVE };
    rm.node.id = 2;
    CU_ASSERT_EQUAL(run(&rm).code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_node_get(sm, 2));
    CU_ASSERT_EQUAL(run(&rm).code, MB_ENOTFOUND);
    u.node.id = 0;
    CU_ASSERT_EQUAL(run(&u).code, MB_EINVAL);
}

static void test_agent_place_reassign_checkpoint_with_generation_fencing(void)
{
    node_add(1);
    node_add(2);
    consensus_cmd p = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                        .agent_id = "opt-1",
                        .agent_kind = "random_search",
                        .agent_config = "{\"budget\":10}",
                        .agent_node = 1 };
    CU_ASSERT_EQUAL(run(&p).code, MB_OK);
    const consensus_effect *st = find_effect(CONSENSUS_FX_AGENT_START, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->node_id, 1);
    CU_ASSERT_EQUAL(st->generation, 1);
    CU_ASSERT_EQUAL(run(&p).code, MB_EEXIST);
    p.agent_id = "opt-2";
    p.agent_config = "{not json";
    CU_ASSERT_EQUAL(run(&p).code, MB_EINVAL);

    consensus_cmd ck = { .kind = CONSENSUS_CMD_AGENT_CHECKPOINT,
                         .agent_id = "opt-1",
                         .generation = 1,
                         .blob = "state-1",
                         .blob_len = 7 };
    consensus_result r = run(&ck);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    const consensus_agent *a = consensus_sm_agent_get(sm, "opt-1");
    CU_ASSERT_EQUAL(a->checkpoint_version, r.version);
    CU_ASSERT_EQUAL(a->checkpoint_len, 7);

    consensus_cmd re = { .kind = CONSENSUS_CMD_AGENT_REASSIGN,
                         .agent_id = "opt-1",
                         .agent_node = 2,
                         .has_expected = 1,
                         .expected = 1 };
    CU_ASSERT_EQUAL(run(&re).code, MB_OK);
    a = consensus_sm_agent_get(sm, "opt-1");
    CU_ASSERT_EQUAL(a->node, 2);
    CU_ASSERT_EQUAL(a->generation, 2);
    CU_ASSERT_EQUAL(a->restarts, 1);
    CU_ASSERT_EQUAL(a->checkpoint_len, 7); /* the new node restores from it */
    const consensus_effect *stop = find_effect(CONSENSUS_FX_AGENT_STOP, NULL);
    st = find_effect(CONSENSUS_FX_AGENT_START, NULL);
    CU_ASSERT_TRUE(stop != NULL && stop->node_id == 1 && stop->generation == 1);
    CU_ASSERT_TRUE(st != NULL && st->node_id == 2 && st->generation == 2);
    /* A reassignment decided on an old view is refused. */
    CU_ASSERT_EQUAL(run(&re).code, MB_ECONFLICT);
    /* The old copy (generation 1) can no longer checkpoint. */
    ck.blob = "stale";
    ck.blob_len = 5;
    CU_ASSERT_EQUAL(run(&ck).code, MB_ECONFLICT);
    CU_ASSERT_EQUAL(memcmp(consensus_sm_agent_get(sm, "opt-1")->checkpoint, "state-1", 7), 0);

    consensus_cmd ss = { .kind = CONSENSUS_CMD_AGENT_STATUS,
                         .agent_id = "opt-1",
                         .generation = 2,
                         .agent_status = CONSENSUS_AGENT_RUNNING };
    CU_ASSERT_EQUAL(run(&ss).code, MB_OK);
    CU_ASSERT_EQUAL(consensus_sm_agent_get(sm, "opt-1")->status, CONSENSUS_AGENT_RUNNING);

    /* A node with agents cannot be removed; a down node takes no agents. */
    consensus_cmd rm = { .kind = CONSENSUS_CMD_NODE_REMOVE };
    rm.node.id = 2;
    CU_ASSERT_EQUAL(run(&rm).code, MB_ESTATE);
    consensus_cmd down = { .kind = CONSENSUS_CMD_NODE_UPDATE,
                           .node_fields = CONSENSUS_NODE_SET_STATUS };
    down.node.id = 1;
    down.node.status = CONSENSUS_NODE_DOWN;
    CU_ASSERT_EQUAL(run(&down).code, MB_OK);
    re.agent_node = 1;
    re.expected = 2;
    CU_ASSERT_EQUAL(run(&re).code, MB_ESTATE);

    consensus_cmd del = { .kind = CONSENSUS_CMD_AGENT_REMOVE, .agent_id = "opt-1" };
    CU_ASSERT_EQUAL(run(&del).code, MB_OK);
    CU_ASSERT_PTR_NOT_NULL(find_effect(CONSENSUS_FX_AGENT_STOP, NULL));
    CU_ASSERT_EQUAL(run(&del).code, MB_ENOAGENT);
    CU_ASSERT_EQUAL(run(&rm).code, MB_OK);
}

/* A node's study evaluator agents go with it when it is removed; any
 * other agent placed on it still blocks the removal. */
static void test_node_remove_takes_its_evaluators_and_refuses_with_other_agents(void)
{
    add_node(1);
    add_node(2);
    CU_ASSERT_EQUAL_FATAL(place_agent("evaluator-2-1", "evaluator", 2, NULL, 0).code, MB_OK);
    CU_ASSERT_EQUAL_FATAL(place_agent("evaluator-2-2", "evaluator", 2, NULL, 0).code, MB_OK);
    CU_ASSERT_EQUAL_FATAL(place_agent("evaluator-1-1", "evaluator", 1, NULL, 0).code, MB_OK);
    CU_ASSERT_EQUAL_FATAL(place_agent("c", "counter", 2, NULL, 0).code, MB_OK);
    consensus_cmd rm = { .kind = CONSENSUS_CMD_NODE_REMOVE };
    rm.node.id = 2;
    CU_ASSERT_EQUAL(run(&rm).code, MB_ESTATE); /* the counter */
    CU_ASSERT_PTR_NOT_NULL(consensus_sm_agent_get(sm, "evaluator-2-1"));
    consensus_cmd del = { .kind = CONSENSUS_CMD_AGENT_REMOVE, .agent_id = "c" };
    CU_ASSERT_EQUAL_FATAL(run(&del).code, MB_OK);
    CU_ASSERT_EQUAL(run(&rm).code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_agent_get(sm, "evaluator-2-1"));
    CU_ASSERT_PTR_NULL(consensus_sm_agent_get(sm, "evaluator-2-2"));
    CU_ASSERT_PTR_NOT_NULL(consensus_sm_agent_get(sm, "evaluator-1-1"));
    CU_ASSERT_EQUAL(count_effects(CONSENSUS_FX_AGENT_STOP, NULL), 2);
    CU_ASSERT_EQUAL(count_events("agent.remove"), 2);
    CU_ASSERT_PTR_NULL(consensus_sm_node_get(sm, 2));
}

/* ---------------- proposals ---------------- */

static consensus_result open_proposal(const char *id, consensus_rule rule, double fraction,
                                      char **voters, double *weights, uint32_t n, int64_t value)
{
    place_voters(voters, n);
    consensus_cmd c = { .kind = CONSENSUS_CMD_PROPOSAL_OPEN,
                        .proposal_id = (char *)id,
                        .name = "k",
                        .by = "agent-0",
                        .rule = rule,
                        .fraction = fraction,
                        .voters = voters,
                        .weights = weights,
                        .n_voters = n,
                        .deadline_ms = 1000 };
    c.value = (mb_value){ .type = MB_VT_INT, .u.i = value };
    return run(&c);
}

static void test_majority_proposal_sets_the_variable_when_decided(void)
{
    define_consensus_int("k");
    char *voters[] = { "a", "b", "c" };
    CU_ASSERT_EQUAL(open_proposal("p1", CONSENSUS_RULE_MAJORITY, 0, voters, NULL, 3, 42).code,
                    MB_OK);
    CU_ASSERT_PTR_NOT_NULL(find_effect(CONSENSUS_FX_EVENT, "proposal.open"));
    CU_ASSERT_EQUAL(vote("p1", "a", 1).code, MB_OK);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "k")->value.u.i, 0);
    CU_ASSERT_EQUAL(vote("p1", "a", 1).code, MB_EEXIST);
    CU_ASSERT_EQUAL(vote("p1", "z", 1).code, MB_EPERM);
    consensus_result r = vote("p1", "c", 1);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    const consensus_var *v = consensus_sm_var_get(sm, "k");
    CU_ASSERT_EQUAL(v->value.u.i, 42);
    CU_ASSERT_EQUAL(v->version, r.version);
    CU_ASSERT_STRING_EQUAL(v->changed_by, "proposal:p1");
    const consensus_effect *cl = find_effect(CONSENSUS_FX_EVENT, "proposal.close");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cl);
    CU_ASSERT_PTR_NOT_NULL(strstr(cl->payload, "\"outcome\":\"accepted\""));
    CU_ASSERT_PTR_NOT_NULL(find_effect(CONSENSUS_FX_WATCH, NULL));
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, "p1"));
    CU_ASSERT_EQUAL(vote("p1", "b", 1).code, MB_ENOTFOUND);
}

static void test_proposal_rules_reject_and_accept_as_specified(void)
{
    define_consensus_int("k");
    char *voters[] = { "a", "b", "c", "d" };
    /* Majority of 4: two no votes reject. */
    open_proposal("m", CONSENSUS_RULE_MAJORITY, 0, voters, NULL, 4, 1);
    vote("m", "a", 0);
    CU_ASSERT_PTR_NOT_NULL(consensus_sm_proposal_get(sm, "m"));
    vote("m", "b", 0);
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, "m"));
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "k")->value.u.i, 0);
    /* Supermajority 0.75 of 4: needs three yes. */
    open_proposal("s", CONSENSUS_RULE_SUPERMAJORITY, 0.75, voters, NULL, 4, 2);
    vote("s", "a", 1);
    vote("s", "b", 1);
    CU_ASSERT_PTR_NOT_NULL(consensus_sm_proposal_get(sm, "s"));
    vote("s", "c", 1);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "k")->value.u.i, 2);
    /* Unanimous: one no rejects. */
    open_proposal("u", CONSENSUS_RULE_UNANIMOUS, 0, voters, NULL, 4, 3);
    vote("u", "a", 1);
    vote("u", "b", 0);
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, "u"));
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "k")->value.u.i, 2);
    /* Weighted: a heavy voter decides alone. */
    double w[] = { 5, 1, 1, 1 };
    open_proposal("w", CONSENSUS_RULE_WEIGHTED, 0, voters, w, 4, 4);
    vote("w", "a", 1);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "k")->value.u.i, 4);
    /* Bad openings change nothing. */
    CU_ASSERT_EQUAL(open_proposal("x", CONSENSUS_RULE_SUPERMAJORITY, 0.4, voters, NULL, 4, 5).code,
                    MB_EINVAL);
    CU_ASSERT_EQUAL(open_proposal("x", CONSENSUS_RULE_MAJORITY, 0, voters, w, 4, 5).code,
                    MB_EINVAL);
    CU_ASSERT_EQUAL(open_proposal("x", CONSENSUS_RULE_MAJORITY, 0, voters, NULL, 0, 5).code,
                    MB_EINVAL);
    CU_ASSERT_EQUAL(open_proposal("x", CONSENSUS_RULE_MAJORITY, 0, voters, NULL, 4, 500).code,
                    MB_ECONSTRAINT);
    char *dup[] = { "a", "a" };
    CU_ASSERT_EQUAL(open_proposal("x", CONSENSUS_RULE_MAJORITY, 0, dup, NULL, 2, 5).code,
                    MB_EINVAL);
    define_float("direct", 0, 1, 0);
    consensus_cmd c = { .kind = CONSENSUS_CMD_PROPOSAL_OPEN,
                        .proposal_id = "x",
                        .name = "direct",
                        .voters = voters,
                        .n_voters = 1 };
    c.value = (mb_value){ .type = MB_VT_FLOAT, .u.f = 0.5 };
    CU_ASSERT_EQUAL(run(&c).code, MB_EINVAL);
    CU_ASSERT_EQUAL(consensus_sm_proposal_count(sm), 0);
}

static void test_crashed_voter_leaves_open_proposals_so_votes_never_wait_for_the_dead(void)
{
    define_consensus_int("k");
    node_add(1);
    char *voters[] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++) {
        consensus_cmd p = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                            .agent_id = voters[i],
                            .agent_kind = "k",
                            .agent_node = 1 };
        CU_ASSERT_EQUAL_FATAL(run(&p).code, MB_OK);
    }
    CU_ASSERT_EQUAL(open_proposal("p", CONSENSUS_RULE_UNANIMOUS, 0, voters, NULL, 3, 9).code,
                    MB_OK);
    vote("p", "a", 1);
    vote("p", "b", 1);
    /* "c" crashes: it leaves the voters, and the remaining two decided. */
    consensus_cmd st = { .kind = CONSENSUS_CMD_AGENT_STATUS,
                         .agent_id = "c",
                         .generation = 1,
                         .agent_status = CONSENSUS_AGENT_CRASHED };
    CU_ASSERT_EQUAL(run(&st).code, MB_OK);
    CU_ASSERT_PTR_NOT_NULL(find_effect(CONSENSUS_FX_EVENT, "proposal.voter_left"));
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, "p"));
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "k")->value.u.i, 9);
    /* Forced close: expired. */
    CU_ASSERT_EQUAL(open_proposal("q", CONSENSUS_RULE_MAJORITY, 0, voters, NULL, 3, 1).code, MB_OK);
    consensus_cmd cl = { .kind = CONSENSUS_CMD_PROPOSAL_CLOSE,
                         .proposal_id = "q",
                         .outcome = CONSENSUS_PROPOSAL_ACCEPTED };
    CU_ASSERT_EQUAL(run(&cl).code, MB_EINVAL);
    cl.outcome = CONSENSUS_PROPOSAL_EXPIRED;
    CU_ASSERT_EQUAL(run(&cl).code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, "q"));
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "k")->value.u.i, 9);
}

/* ---------------- snapshots ---------------- */

static void populate(void)
{
    uint32_t shape[] = { 2, 2 };
    float data[] = { 1, 2, 3, 4 };
    char *opts[] = { "a", "b", "c" };
    double w[] = { 1, 2, 3 };
    define_float("lr", 1e-5, 1, 0.01);
    consensus_cmd c = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = "opt", .by = "me" };
    c.spec = (mb_var_spec){ .type = MB_VT_CHOICE, .options = opts, .n_options = 3, .weights = w };
    run(&c);
    c.name = "t";
    c.spec = (mb_var_spec){ .type = MB_VT_TENSOR, .max_elements = 100 };
    c.value = (mb_value){ .type = MB_VT_TENSOR, .u.tensor = { shape, 2, data, 4 } };
    run(&c);
    c.name = "n";
    c.value.type = MB_VT_NONE;
    c.spec = (mb_var_spec){ .type = MB_VT_INT, .imin = -5, .imax = 5, .step = 5 };
    c.policy = MB_POLICY_CONSENSUS;
    run(&c);
    c.name = "d";
    c.policy = MB_POLICY_DIRECT;
    c.spec = (mb_var_spec){ .type = MB_VT_DISTRIBUTION, .dim = 5, .tolerance = 1e-3 };
    run(&c);
    c.name = "e";
    c.spec = (mb_var_spec){ .type = MB_VT_EMBEDDING, .dim = 3, .unit_norm = 1 };
    run(&c);
    node_add(3);
    node_add(1);
    consensus_cmd p = {
        .kind = CONSENSUS_CMD_AGENT_PLACE, .agent_id = "z", .agent_kind = "k", .agent_node = 3
    };
    run(&p);
    p.agent_id = "a";
    run(&p);
    consensus_cmd ck = { .kind = CONSENSUS_CMD_AGENT_CHECKPOINT,
                         .agent_id = "a",
                         .generation = 1,
                         .blob = "\x00\x01\x02",
                         .blob_len = 3 };
    run(&ck);
    char *voters[] = { "a", "z", "q" };
    double pw[] = { 1, 2.5, 1 };
    place_voters(voters, 3);
    consensus_cmd po = { .kind = CONSENSUS_CMD_PROPOSAL_OPEN,
                         .proposal_id = "prop",
                         .name = "n",
                         .rule = CONSENSUS_RULE_WEIGHTED,
                         .voters = voters,
                         .weights = pw,
                         .n_voters = 3,
                         .deadline_ms = 123 };
    po.value = (mb_value){ .type = MB_VT_INT, .u.i = 5 };
    CU_ASSERT_EQUAL(run(&po).code, MB_OK);
    consensus_cmd pv = {
        .kind = CONSENSUS_CMD_PROPOSAL_VOTE, .proposal_id = "prop", .voter = "q", .yes = 0
    };
    CU_ASSERT_EQUAL(run(&pv).code, MB_OK);
    for (uint64_t i = 1; i <= 3; i++) {
        consensus_cmd s = {
            .kind = CONSENSUS_CMD_VAR_SET, .name = "lr", .client_id = 99, .request_seq = i
        };
        s.value = (mb_value){ .type = MB_VT_FLOAT, .u.f = i == 2 ? 7.0 : 0.1 * (double)i };
        run(&s);
    }
}

static void test_snapshot_restore_snapshot_gives_identical_bytes(void)
{
    populate();
    size_t l1, l2;
    void *s1 = snap(&l1);
    consensus_sm *r = NULL;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_restore(s1, l1, &r, &e), MB_OK);
    void *s2 = NULL;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_snapshot(r, NULL, &s2, &l2, NULL), MB_OK);
    CU_ASSERT_EQUAL(l1, l2);
    CU_ASSERT_TRUE(l1 == l2 && memcmp(s1, s2, l1) == 0);
    CU_ASSERT_EQUAL(consensus_sm_var_count(r), 6);
    CU_ASSERT_EQUAL(consensus_sm_agent_count(r), 3); /* a, z and the voter q */
    CU_ASSERT_EQUAL(consensus_sm_applied_index(r), consensus_sm_applied_index(sm));
    CU_ASSERT_TRUE(consensus_sm_dedup_lookup(r, 99, 2, NULL));
    const consensus_proposal *rp = consensus_sm_proposal_get(r, "prop");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rp);
    CU_ASSERT_EQUAL(rp->n_voters, 3);
    /* Voters are kept sorted: a, q, z (weights follow their voter). */
    CU_ASSERT_STRING_EQUAL(rp->voters[1], "q");
    CU_ASSERT_EQUAL(rp->votes[1], CONSENSUS_VOTE_NO);
    CU_ASSERT_EQUAL(rp->weights[2], 2.5);
    const consensus_var *a = consensus_sm_var_get(r, "t"), *b = consensus_sm_var_get(sm, "t");
    CU_ASSERT_TRUE(mb_value_equal(&a->value, &b->value));
    CU_ASSERT_TRUE(mb_var_spec_equal(&a->spec, &b->spec));
    /* The restored machine applies the next command the same way. */
    consensus_cmd s = { .kind = CONSENSUS_CMD_VAR_SET, .name = "lr" };
    s.value = (mb_value){ .type = MB_VT_FLOAT, .u.f = 0.5 };
    void *buf;
    size_t len;
    consensus_cmd_encode(&s, NULL, &buf, &len, NULL);
    consensus_result r1, r2;
    consensus_sm_apply(sm, 100, buf, len, &r1, NULL);
    consensus_sm_apply(r, 100, buf, len, &r2, NULL);
    CU_ASSERT_EQUAL(r1.code, r2.code);
    free(s1);
    free(s2);
    s1 = snap(&l1);
    consensus_sm_snapshot(r, NULL, &s2, &l2, NULL);
    CU_ASSERT_TRUE(l1 == l2 && memcmp(s1, s2, l1) == 0);
    free(buf);
    free(s1);
    free(s2);
    consensus_sm_free(r);
}

static void test_restore_rejects_garbage(void)
{
    populate();
    size_t len;
    uint8_t *s = snap(&len);
    consensus_sm *r = NULL;
    mb_error e;
    CU_ASSERT_EQUAL(consensus_sm_restore(s, 5, &r, &e), MB_ECORRUPT);
    CU_ASSERT_EQUAL(consensus_sm_restore(s, len - 1, &r, &e), MB_ECORRUPT);
    CU_ASSERT_EQUAL(consensus_sm_restore("nonsense-bytes-here", 19, &r, &e), MB_ECORRUPT);
    for (size_t i = 0; i < len; i += 7) {
        s[i] ^= 0x5a;
        CU_ASSERT_EQUAL(consensus_sm_restore(s, len, &r, &e), MB_ECORRUPT);
        s[i] ^= 0x5a;
    }
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_EQUAL(consensus_sm_restore(s, len, &r, &e), MB_OK);
    consensus_sm_free(r);
    free(s);
}

/* ---------------- codec and JSON ---------------- */

static void test_command_encode_decode_round_trip(void)
{
    uint32_t shape[] = { 3 };
    float data[] = { 1.5f, -2, 3 };
    consensus_cmd c = { .kind = CONSENSUS_CMD_VAR_SET,
                        .name = "w",
                        .by = "x",
                        .client_id = 5,
                        .request_seq = 9,
                        .has_expected = 1,
                        .expected = 0 };
    c.value = (mb_value){ .type = MB_VT_TENSOR, .u.tensor = { shape, 1, data, 3 } };
    void *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(consensus_cmd_encode(&c, NULL, &buf, &len, NULL), MB_OK);
    consensus_cmd d;
    CU_ASSERT_EQUAL_FATAL(consensus_cmd_decode(buf, len, &d, NULL), MB_OK);
    CU_ASSERT_EQUAL(d.kind, CONSENSUS_CMD_VAR_SET);
    CU_ASSERT_STRING_EQUAL(d.name, "w");
    CU_ASSERT_EQUAL(d.client_id, 5);
    CU_ASSERT_EQUAL(d.request_seq, 9);
    CU_ASSERT_TRUE(d.has_expected);
    CU_ASSERT_EQUAL(d.expected, 0);
    CU_ASSERT_TRUE(mb_value_equal(&d.value, &c.value));
    consensus_cmd_free(&d);
    free(buf);
    consensus_result res = { .code = MB_ENOTLEADER, .leader_id = 2, .leader_addr = "127.0.0.1:1" };
    snprintf(res.msg, sizeof(res.msg), "not the leader");
    consensus_result back;
    CU_ASSERT_EQUAL_FATAL(consensus_result_encode(&res, &buf, &len), MB_OK);
    CU_ASSERT_EQUAL(consensus_result_decode(buf, len, &back), MB_OK);
    CU_ASSERT_EQUAL(back.code, MB_ENOTLEADER);
    CU_ASSERT_EQUAL(back.leader_id, 2);
    CU_ASSERT_STRING_EQUAL(back.leader_addr, "127.0.0.1:1");
    CU_ASSERT_STRING_EQUAL(back.msg, "not the leader");
    free(buf);
    CU_ASSERT_EQUAL(consensus_result_decode("\xff\xff", 2, &back), MB_EPROTO);
}

static void test_entry_frame_pads_to_eight_bytes_and_unframes_strictly(void)
{
    for (size_t n = 0; n < 20; n++) {
        uint8_t cmd[20];
        memset(cmd, 0xab, sizeof(cmd));
        void *e;
        size_t len;
        CU_ASSERT_EQUAL_FATAL(consensus_entry_frame(cmd, n, NULL, &e, &len), MB_OK);
        CU_ASSERT_EQUAL(len % 8, 0);
        CU_ASSERT_TRUE(len >= n + CONSENSUS_ENTRY_HEADER && len < n + CONSENSUS_ENTRY_HEADER + 8);
        const void *back;
        size_t back_len;
        CU_ASSERT_EQUAL(consensus_entry_unframe(e, len, &back, &back_len), MB_OK);
        CU_ASSERT_EQUAL(back_len, n);
        CU_ASSERT_TRUE(n == 0 || memcmp(back, cmd, n) == 0);
        if (len > CONSENSUS_ENTRY_HEADER + n) {
            ((uint8_t *)e)[len - 1] = 1; /* padding must be zero */
            CU_ASSERT_EQUAL(consensus_entry_unframe(e, len, &back, &back_len), MB_EPROTO);
        }
        CU_ASSERT_EQUAL(consensus_entry_unframe(e, len - 1, &back, &back_len), MB_EPROTO);
        free(e);
    }
    CU_ASSERT_EQUAL(
        consensus_entry_unframe("XXXX\0\0\0\0", 8, &(const void *){ NULL }, &(size_t){ 0 }),
        MB_EPROTO);
}

static int define_json(const char *text, consensus_cmd *out, mb_error *e)
{
    cJSON *j = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    int rc = consensus_define_from_json(j, out, e);
    cJSON_Delete(j);
    return rc;
}

static void test_json_definition_maps_to_define_command(void)
{
    consensus_cmd c;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(define_json("{\"name\":\"lr\",\"type\":\"float\",\"min\":1e-5,\"max\":1,"
                                      "\"log_scale\":true,\"value\":0.01}",
                                      &c, &e),
                          MB_OK);
    CU_ASSERT_EQUAL(c.spec.type, MB_VT_FLOAT);
    CU_ASSERT_EQUAL(c.spec.log_scale, 1);
    CU_ASSERT_EQUAL(c.value.u.f, 0.01);
    CU_ASSERT_EQUAL(run(&c).code, MB_OK);
    consensus_cmd_free(&c);
    CU_ASSERT_EQUAL(define_json("{\"name\":\"lr2\",\"type\":\"float\",\"min\":0,\"max\":1,"
                                "\"value\":2.5}",
                                &c, &e),
                    MB_ECONSTRAINT);
    CU_ASSERT_STRING_EQUAL(e.msg, "variable \"lr2\": value 2.5 above max 1.0");
    CU_ASSERT_EQUAL(define_json("{\"name\":\"n\",\"type\":\"int\",\"min\":0,\"max\":9,"
                                "\"dim\":3}",
                                &c, &e),
                    MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "\"dim\""));
    CU_ASSERT_EQUAL(define_json("{\"name\":\"n\",\"type\":\"nope\"}", &c, &e), MB_EINVAL);
    CU_ASSERT_EQUAL(define_json("{\"name\":\"n\",\"type\":\"int\",\"min\":0.5,\"max\":9}", &c, &e),
                    MB_EINVAL);
    CU_ASSERT_EQUAL_FATAL(define_json("{\"name\":\"big\",\"type\":\"int\",\"min\":"
                                      "\"-9223372036854775808\",\"max\":\"9223372036854775807\","
                                      "\"value\":\"9007199254740993\",\"policy\":\"consensus\"}",
                                      &c, &e),
                          MB_OK);
    CU_ASSERT_EQUAL(c.value.u.i, 9007199254740993LL);
    CU_ASSERT_EQUAL(c.policy, MB_POLICY_CONSENSUS);
    consensus_cmd_free(&c);
    CU_ASSERT_EQUAL_FATAL(define_json("{\"name\":\"t\",\"type\":\"tensor\",\"shape\":[2,1],"
                                      "\"value\":{\"shape\":[2,1],\"data\":[1,2]}}",
                                      &c, &e),
                          MB_OK);
    CU_ASSERT_EQUAL(run(&c).code, MB_OK);
    consensus_cmd_free(&c);
    /* And back: variable -> JSON -> define -> same spec and value. */
    cJSON *j = NULL;
    CU_ASSERT_EQUAL_FATAL(consensus_var_to_json(consensus_sm_var_get(sm, "lr"), &j), MB_OK);
    cJSON_DeleteItemFromObject(j, "version");
    cJSON_DeleteItemFromObject(j, "created");
    cJSON_DeleteItemFromObject(j, "changed_by");
    CU_ASSERT_EQUAL(consensus_define_from_json(j, &c, &e), MB_OK);
    CU_ASSERT_TRUE(mb_var_spec_equal(&c.spec, &consensus_sm_var_get(sm, "lr")->spec));
    CU_ASSERT_TRUE(mb_value_equal(&c.value, &consensus_sm_var_get(sm, "lr")->value));
    consensus_cmd_free(&c);
    cJSON_Delete(j);
}

static void test_json_value_round_trip_for_every_type(void)
{
    uint32_t shape[] = { 1, 2 };
    float fdata[] = { 0.5f, -1 };
    double vdata[] = { 0.25, 0.75 };
    mb_value vals[] = {
        { .type = MB_VT_FLOAT, .u.f = 0.1 },
        { .type = MB_VT_INT, .u.i = INT64_MIN },
        { .type = MB_VT_CHOICE, .u.choice = "sgd" },
        { .type = MB_VT_BOOL, .u.b = 1 },
        { .type = MB_VT_PROBABILITY, .u.f = 0.3 },
        { .type = MB_VT_DISTRIBUTION, .u.vec = { vdata, 2 } },
        { .type = MB_VT_EMBEDDING, .u.vec = { vdata, 2 } },
        { .type = MB_VT_TENSOR, .u.tensor = { shape, 2, fdata, 2 } },
    };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        cJSON *j = NULL;
        CU_ASSERT_EQUAL_FATAL(consensus_value_to_json(&vals[i], &j), MB_OK);
        char *text = cJSON_PrintUnformatted(j);
        cJSON *k = cJSON_Parse(text);
        mb_value back;
        CU_ASSERT_EQUAL(consensus_value_from_json(k, vals[i].type, "v", &back, NULL), MB_OK);
        CU_ASSERT_TRUE(mb_value_equal(&back, &vals[i]));
        mb_value_free(&back);
        /* The wrong type is refused, not guessed. */
        mb_vtype other = vals[i].type == MB_VT_BOOL ? MB_VT_CHOICE : MB_VT_BOOL;
        CU_ASSERT_NOT_EQUAL(consensus_value_from_json(k, other, "v", &back, NULL), MB_OK);
        cJSON_Delete(j);
        cJSON_Delete(k);
        cJSON_free(text);
    }
}

/* What var_assign printed through cJSON before the direct formatter. */
static char *event_by_cjson(const char *name, const mb_value *v, uint64_t version, uint64_t prev,
                            const char *by)
{
    cJSON *o = cJSON_CreateObject(), *jv = NULL;
    CU_ASSERT_FATAL(o != NULL && consensus_value_to_json(v, &jv) == MB_OK);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddItemToObject(o, "value", jv);
    cJSON_AddNumberToObject(o, "version", (double)version);
    cJSON_AddNumberToObject(o, "prev_version", (double)prev);
    cJSON_AddStringToObject(o, "by", by);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static void test_var_set_event_is_byte_identical_to_cjson(void)
{
    static const double fixed[] = { 0.0,
                                    -0.0,
                                    1.0,
                                    -1.0,
                                    0.1,
                                    0.5,
                                    1e-300,
                                    5e-324,
                                    1e300,
                                    -1e300,
                                    2147483647.0,
                                    2147483648.0,
                                    -2147483648.0,
                                    -2147483649.0,
                                    2147483646.5,
                                    0.30000000000000004,
                                    123456789.123456789,
                                    1.0 / 3.0,
                                    9007199254740993.0,
                                    4.35e-7,
                                    999999999999999.0,
                                    1e15,
                                    -999999999999999.0,
                                    123456789012345.0,
                                    -3.0 };
    uint64_t seed = 88172645463325252ull;
    int n_checked = 0;
    for (int i = 0; i < 20000; i++) {
        mb_value v = { .type = i % 3 == 2 ? MB_VT_PROBABILITY : MB_VT_FLOAT };
        if (i < (int)(sizeof(fixed) / sizeof(fixed[0]))) {
            v.u.f = fixed[i];
        } else {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            uint64_t bits = seed;
            if (i % 2 == 0)
                v.u.f = (double)(bits % 2000001) / 1000000.0; /* typical decimal inputs */
            else
                memcpy(&v.u.f, &bits, sizeof(v.u.f)); /* any bit pattern */
        }
        if (i % 97 == 5)
            v = (mb_value){ .type = MB_VT_BOOL, .u.b = i % 2 };
        uint64_t version = i % 5 == 0 ? 5000000000ull + (uint64_t)i : (uint64_t)i + 1;
        const char *by = i % 4 == 0 ? "" : "api:127.0.0.1";
        char *fast = NULL;
        CU_ASSERT_EQUAL_FATAL(cs_var_set_event_json("lr.x-1", &v, version, version - 1, by, &fast),
                              MB_OK);
        char *slow = event_by_cjson("lr.x-1", &v, version, version - 1, by);
        CU_ASSERT_STRING_EQUAL(fast, slow);
        if (strcmp(fast, slow) != 0)
            fprintf(stderr, "differs: %s vs %s\n", fast, slow);
        n_checked++;
        free(fast);
        cJSON_free(slow);
    }
    CU_ASSERT_EQUAL(n_checked, 20000);
    /* Names or authors that need escapes, and other types, go through cJSON. */
    mb_value f = { .type = MB_VT_FLOAT, .u.f = 0.25 };
    char *out = (char *)1;
    CU_ASSERT_EQUAL(cs_var_set_event_json("a\"b", &f, 2, 1, "", &out), MB_ENOTSUP);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(cs_var_set_event_json("a", &f, 2, 1, "line\n", &out), MB_ENOTSUP);
    mb_value i64 = { .type = MB_VT_INT, .u.i = 3 };
    CU_ASSERT_EQUAL(cs_var_set_event_json("a", &i64, 2, 1, "", &out), MB_ENOTSUP);
}

static CU_TestInfo var_tests[] = {
    { "test_var_set_event_is_byte_identical_to_cjson",
      test_var_set_event_is_byte_identical_to_cjson },
    { "test_define_then_get_returns_value_and_version",
      test_define_then_get_returns_value_and_version },
    { "test_define_rejects_existing_name", test_define_rejects_existing_name },
    { "test_define_rejects_bad_specs", test_define_rejects_bad_specs },
    { "test_set_rejects_value_outside_range", test_set_rejects_value_outside_range },
    { "test_set_changes_value_version_and_emits_event_and_watch",
      test_set_changes_value_version_and_emits_event_and_watch },
    { "test_set_unknown_variable_is_not_found", test_set_unknown_variable_is_not_found },
    { "test_compare_and_set_checks_version", test_compare_and_set_checks_version },
    { "test_delete_removes_variable_and_notifies_watchers",
      test_delete_removes_variable_and_notifies_watchers },
    { "test_consensus_policy_refuses_direct_set", test_consensus_policy_refuses_direct_set },
    { "test_validate_int_range_and_step", test_validate_int_range_and_step },
    { "test_validate_choice_bool_probability", test_validate_choice_bool_probability },
    { "test_validate_distribution_and_embedding", test_validate_distribution_and_embedding },
    { "test_validate_tensor_shape_and_size_limit", test_validate_tensor_shape_and_size_limit },
    { "test_define_without_value_uses_type_default", test_define_without_value_uses_type_default },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo apply_tests[] = {
    { "test_same_idempotency_id_returns_first_result_without_reapplying",
      test_same_idempotency_id_returns_first_result_without_reapplying },
    { "test_applying_the_same_index_twice_is_harmless",
      test_applying_the_same_index_twice_is_harmless },
    { "test_dedup_table_evicts_oldest_first", test_dedup_table_evicts_oldest_first },
    { "test_bad_commands_change_nothing", test_bad_commands_change_nothing },
    { "test_node_add_update_remove", test_node_add_update_remove },
    { "test_agent_place_reassign_checkpoint_with_generation_fencing",
      test_agent_place_reassign_checkpoint_with_generation_fencing },
    { "test_node_remove_takes_its_evaluators_and_refuses_with_other_agents",
      test_node_remove_takes_its_evaluators_and_refuses_with_other_agents },
    { "test_majority_proposal_sets_the_variable_when_decided",
      test_majority_proposal_sets_the_variable_when_decided },
    { "test_proposal_rules_reject_and_accept_as_specified",
      test_proposal_rules_reject_and_accept_as_specified },
    { "test_crashed_voter_leaves_open_proposals_so_votes_never_wait_for_the_dead",
      test_crashed_voter_leaves_open_proposals_so_votes_never_wait_for_the_dead },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo snapshot_tests[] = {
    { "test_snapshot_restore_snapshot_gives_identical_bytes",
      test_snapshot_restore_snapshot_gives_identical_bytes },
    { "test_restore_rejects_garbage", test_restore_rejects_garbage },
    { "test_command_encode_decode_round_trip", test_command_encode_decode_round_trip },
    { "test_entry_frame_pads_to_eight_bytes_and_unframes_strictly",
      test_entry_frame_pads_to_eight_bytes_and_unframes_strictly },
    { "test_json_definition_maps_to_define_command", test_json_definition_maps_to_define_command },
    { "test_json_value_round_trip_for_every_type", test_json_value_round_trip_for_every_type },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "variables", sm_fixture_setup, sm_fixture_teardown, sm_fixture_fresh, NULL, var_tests },
        { "apply", sm_fixture_setup, sm_fixture_teardown, sm_fixture_fresh, NULL, apply_tests },
        { "codec", sm_fixture_setup, sm_fixture_teardown, sm_fixture_fresh, NULL, snapshot_tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
