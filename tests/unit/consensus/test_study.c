/* Tests of the replicated studies and trials (consensus/study.c): every
 * command, bad definitions, re-queue of trials whose evaluator or node went
 * away, refusal of stale and double completions, snapshot round trip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"
#include "mb_test.h"
#include "sm_fixture.h"

/* Create a study from JSON text: the result code (parse errors as is). */
static int create_json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    consensus_cmd c;
    mb_error e;
    int rc = consensus_study_from_json(j, 1000, &c, &e);
    cJSON_Delete(j);
    if (rc != MB_OK)
        return rc;
    consensus_result r = run(&c);
    consensus_cmd_free(&c);
    return r.code;
}

static void define_float(const char *name, double min, double max, mb_var_policy policy)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = (char *)name, .policy = policy };
    c.spec.type = MB_VT_FLOAT;
    c.spec.min = min;
    c.spec.max = max;
    CU_ASSERT_EQUAL(run(&c).code, MB_OK);
}

static consensus_result suggest(const char *study, double x0, double x1)
{
    double p[2] = { x0, x1 };
    consensus_study_cmd s = {
        .study_id = (char *)study, .params = p, .n_params = 2, .strategy = "tpe"
    };
    consensus_cmd c = { .kind = CONSENSUS_CMD_TRIAL_SUGGEST, .by = "opt-1", .study = &s };
    return run(&c);
}

static consensus_result start(const char *study, uint32_t n, const char *ev, uint64_t gen,
                              uint64_t node)
{
    consensus_study_cmd s = { .study_id = (char *)study,
                              .number = n,
                              .evaluator = (char *)ev,
                              .generation = gen,
                              .node = node };
    consensus_cmd c = { .kind = CONSENSUS_CMD_TRIAL_START, .study = &s };
    return run(&c);
}

static consensus_result finish(const char *study, uint32_t n, const char *ev, uint64_t gen,
                               consensus_trial_status st, double value, const char *error)
{
    consensus_study_cmd s = { .study_id = (char *)study,
                              .number = n,
                              .evaluator = (char *)ev,
                              .generation = gen,
                              .status = st,
                              .value = value,
                              .error = (char *)error };
    consensus_cmd c = { .kind = CONSENSUS_CMD_TRIAL_FINISH, .study = &s };
    return run(&c);
}

static consensus_result report(const char *study, uint32_t n, const char *ev, uint64_t gen,
                               uint64_t step, double value)
{
    consensus_study_cmd s = { .study_id = (char *)study,
                              .number = n,
                              .evaluator = (char *)ev,
                              .generation = gen,
                              .step = step,
                              .value = value };
    consensus_cmd c = { .kind = CONSENSUS_CMD_TRIAL_REPORT, .study = &s };
    return run(&c);
}

#define BRANIN                                                                                     \
    "{\"id\":\"s1\",\"objective\":\"builtin:branin\",\"strategy\":\"tpe\","                        \
    "\"space\":[{\"name\":\"x0\",\"type\":\"float\",\"min\":-5,\"max\":10},"                       \
    "{\"name\":\"x1\",\"type\":\"float\",\"min\":0,\"max\":15}],"                                  \
    "\"budget\":{\"trials\":3},\"parallelism\":2}"

static const consensus_study *study(const char *id)
{
    const consensus_study *st = consensus_sm_study_get(sm, id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    return st;
}

/* ---------------- create ---------------- */

static void test_create_study_resolves_variables_and_emits_event(void)
{
    define_float("lr", 1e-5, 1, MB_POLICY_DIRECT);
    CU_ASSERT_EQUAL(create_json("{\"id\":\"s2\",\"objective\":{\"command\":[\"/bin/obj\",\"-q\"]},"
                                "\"space\":[\"lr\",{\"name\":\"act\",\"type\":\"choice\","
                                "\"options\":[\"relu\",\"tanh\"]}],\"direction\":\"maximize\","
                                "\"strategy\":\"portfolio\",\"bandit\":\"thompson\","
                                "\"budget\":{\"trials\":10},\"seed\":\"42\"}"),
                    MB_OK);
    CU_ASSERT_EQUAL(count_events("study.create"), 1);
    const consensus_study *st = study("s2");
    CU_ASSERT_EQUAL(st->def.n_params, 2);
    CU_ASSERT_EQUAL(st->def.params[0].spec.type, MB_VT_FLOAT);
    CU_ASSERT_TRUE(st->def.params[0].from_variable);
    CU_ASSERT_EQUAL(st->def.params[0].spec.max, 1.0);
    CU_ASSERT_EQUAL(st->def.params[1].spec.type, MB_VT_CHOICE);
    CU_ASSERT_EQUAL(st->def.objective_kind, CONSENSUS_OBJECTIVE_COMMAND);
    CU_ASSERT_EQUAL(st->def.argc, 2);
    CU_ASSERT_TRUE(st->def.maximize);
    CU_ASSERT_EQUAL(st->def.seed, 42);
    CU_ASSERT_EQUAL(st->status, CONSENSUS_STUDY_RUNNING);
    CU_ASSERT_EQUAL(create_json("{\"id\":\"s2\",\"objective\":\"builtin:sphere\","
                                "\"space\":[\"lr\"],\"budget\":{\"trials\":1}}"),
                    MB_EEXIST);
}

static void test_create_rejects_bad_definitions(void)
{
    consensus_cmd def = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = "t" };
    def.spec.type = MB_VT_TENSOR;
    run(&def);
    define_float("c", 0, 1, MB_POLICY_CONSENSUS);
    static const char *const bad[] = {
        /* empty space */
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"space\":[],\"budget\":{\"trials\":5}}",
        /* zero budget */
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"space\":[{\"name\":\"x\","
        "\"type\":\"float\",\"min\":0,\"max\":1}],\"budget\":{\"trials\":0}}",
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"space\":[{\"name\":\"x\","
        "\"type\":\"float\",\"min\":0,\"max\":1}]}",
        /* unknown strategy */
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"strategy\":\"annealing\",\"space\":[{"
        "\"name\":\"x\",\"type\":\"float\",\"min\":0,\"max\":1}],\"budget\":{\"trials\":5}}",
        /* unknown objective kind and unknown builtin */
        "{\"id\":\"b\",\"objective\":\"ruby:x.rb\",\"space\":[{\"name\":\"x\",\"type\":\"float\","
        "\"min\":0,\"max\":1}],\"budget\":{\"trials\":5}}",
        "{\"id\":\"b\",\"objective\":\"builtin:nope\",\"space\":[{\"name\":\"x\","
        "\"type\":\"float\",\"min\":0,\"max\":1}],\"budget\":{\"trials\":5}}",
        /* branin needs 2 dims */
        "{\"id\":\"b\",\"objective\":\"builtin:branin\",\"space\":[{\"name\":\"x\","
        "\"type\":\"float\",\"min\":0,\"max\":1}],\"budget\":{\"trials\":5}}",
        /* contradictory: a name twice, an empty float range, a tensor, a
         * partition with a parameter in two groups, on_finish write with an
         * inline parameter or a consensus variable, an unknown variable */
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"space\":[{\"name\":\"x\","
        "\"type\":\"float\",\"min\":0,\"max\":1},{\"name\":\"x\",\"type\":\"int\",\"min\":0,"
        "\"max\":3}],\"budget\":{\"trials\":5}}",
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"space\":[{\"name\":\"x\","
        "\"type\":\"float\",\"min\":1,\"max\":1}],\"budget\":{\"trials\":5}}",
        "{\"id\":\"b\",\"objective\":\"command:/bin/true\",\"space\":[\"t\"],"
        "\"budget\":{\"trials\":5}}",
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"space\":[{\"name\":\"x\","
        "\"type\":\"float\",\"min\":0,\"max\":1},{\"name\":\"y\",\"type\":\"float\",\"min\":0,"
        "\"max\":1}],\"partition\":[[\"x\",\"y\"],[\"y\"]],\"budget\":{\"trials\":5}}",
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"on_finish\":\"write\",\"space\":[{"
        "\"name\":\"x\",\"type\":\"float\",\"min\":0,\"max\":1}],\"budget\":{\"trials\":5}}",
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"on_finish\":\"write\","
        "\"space\":[\"c\"],\"budget\":{\"trials\":5}}",
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"space\":[\"missing\"],"
        "\"budget\":{\"trials\":5}}",
        /* parallelism 0, bandit without portfolio, unknown field */
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"parallelism\":0,\"space\":[{\"name\":"
        "\"x\",\"type\":\"float\",\"min\":0,\"max\":1}],\"budget\":{\"trials\":5}}",
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"bandit\":\"ucb\",\"space\":[{\"name\":"
        "\"x\",\"type\":\"float\",\"min\":0,\"max\":1}],\"budget\":{\"trials\":5}}",
        "{\"id\":\"b\",\"objective\":\"builtin:sphere\",\"colour\":1,\"space\":[{\"name\":"
        "\"x\",\"type\":\"float\",\"min\":0,\"max\":1}],\"budget\":{\"trials\":5}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = create_json(bad[i]);
        if (rc == MB_OK)
            fprintf(stderr, "accepted bad study %zu: %s\n", i, bad[i]);
        CU_ASSERT_NOT_EQUAL(rc, MB_OK);
    }
    CU_ASSERT_EQUAL(consensus_sm_study_count(sm), 0);
    /* The same shape checks hold for a command built without JSON. */
    consensus_study_cmd s = { 0 };
    s.def.id = "raw";
    s.def.objective_kind = CONSENSUS_OBJECTIVE_BUILTIN;
    s.def.objective = "sphere";
    s.def.strategy = "tpe";
    s.def.parallelism = 1;
    s.def.max_trials = 5;
    consensus_cmd c = { .kind = CONSENSUS_CMD_STUDY_CREATE, .study = &s };
    consensus_result r = run(&c);
    CU_ASSERT_EQUAL(r.code, MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "empty"));
}

/* ---------------- trials ---------------- */

static void test_trial_lifecycle_and_budget_finishes_study(void)
{
    add_node(1);
    CU_ASSERT_EQUAL(create_json(BRANIN), MB_OK);
    consensus_result r = suggest("s1", 1, 2);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_STRING_EQUAL(r.msg, "trial 1");
    CU_ASSERT_EQUAL(count_events("trial.suggest"), 1);
    CU_ASSERT_EQUAL(suggest("s1", 3, 4).code, MB_OK);
    /* parallelism 2: a third pending trial is refused */
    CU_ASSERT_EQUAL(suggest("s1", 3, 4).code, MB_ESTATE);
    CU_ASSERT_EQUAL(start("s1", 1, "ev-1", 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(count_events("trial.start"), 1);
    CU_ASSERT_EQUAL(start("s1", 1, "ev-2", 1, 1).code, MB_ESTATE); /* already running */
    CU_ASSERT_EQUAL(report("s1", 1, "ev-1", 1, 1, 5.0).code, MB_OK);
    CU_ASSERT_EQUAL(count_events("trial.report"), 1);
    CU_ASSERT_EQUAL(report("s1", 1, "ev-1", 1, 1, 4.0).code, MB_EINVAL); /* step repeats */
    CU_ASSERT_EQUAL(finish("s1", 1, "ev-1", 1, CONSENSUS_TRIAL_COMPLETED, 3.5, NULL).code, MB_OK);
    CU_ASSERT_EQUAL(count_events("trial.complete"), 1);
    const consensus_study *st = study("s1");
    CU_ASSERT_EQUAL(st->best, 1);
    CU_ASSERT_EQUAL(st->n_done, 1);
    CU_ASSERT_EQUAL(st->trials[0]->n_reports, 1);
    CU_ASSERT_STRING_EQUAL(st->trials[0]->strategy, "tpe");
    CU_ASSERT_STRING_EQUAL(st->trials[0]->suggested_by, "opt-1");

    CU_ASSERT_EQUAL(start("s1", 2, "ev-1", 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(finish("s1", 2, "ev-1", 1, CONSENSUS_TRIAL_FAILED, 0, NULL).code, MB_EINVAL);
    CU_ASSERT_EQUAL(
        finish("s1", 2, "ev-1", 1, CONSENSUS_TRIAL_FAILED, 0, "exit status 3: boom").code, MB_OK);
    CU_ASSERT_EQUAL(count_events("trial.fail"), 1);
    CU_ASSERT_STRING_EQUAL(st->trials[1]->error, "exit status 3: boom");
    CU_ASSERT_EQUAL(suggest("s1", 9, 9).code, MB_OK);
    CU_ASSERT_EQUAL(suggest("s1", 9, 9).code, MB_ERANGE); /* budget of 3 trials */
    CU_ASSERT_EQUAL(start("s1", 3, "ev-1", 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(finish("s1", 3, "ev-1", 1, CONSENSUS_TRIAL_COMPLETED, 0.5, NULL).code, MB_OK);
    CU_ASSERT_EQUAL(count_events("study.finish"), 1);
    CU_ASSERT_EQUAL(st->status, CONSENSUS_STUDY_FINISHED);
    CU_ASSERT_EQUAL(st->best, 3);
    CU_ASSERT_EQUAL(suggest("s1", 1, 1).code, MB_ESTATE);
}

static void test_parallelism_bounds_running_and_waiting_trials(void)
{
    add_node(1);
    CU_ASSERT_EQUAL(create_json(BRANIN), MB_OK); /* parallelism 2, 3 trials */
    suggest("s1", 1, 1);
    suggest("s1", 2, 2);
    CU_ASSERT_EQUAL(start("s1", 1, "e", 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(suggest("s1", 3, 3).code, MB_OK); /* one waits, two may */
    CU_ASSERT_EQUAL(start("s1", 2, "f", 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(start("s1", 3, "g", 1, 1).code, MB_ESTATE); /* two running already */
    CU_ASSERT_EQUAL(study("s1")->n_running, 2);
    CU_ASSERT_EQUAL(finish("s1", 1, "e", 1, CONSENSUS_TRIAL_COMPLETED, 1, NULL).code, MB_OK);
    CU_ASSERT_EQUAL(start("s1", 3, "g", 1, 1).code, MB_OK);
}

static void test_suggest_rejects_values_outside_space(void)
{
    CU_ASSERT_EQUAL(create_json(BRANIN), MB_OK);
    CU_ASSERT_EQUAL(suggest("s1", 11, 0).code, MB_ECONSTRAINT);
    CU_ASSERT_EQUAL(suggest("s1", NAN, 0).code, MB_EINVAL);
    double one = 1;
    consensus_study_cmd s = { .study_id = "s1", .params = &one, .n_params = 1 };
    consensus_cmd c = { .kind = CONSENSUS_CMD_TRIAL_SUGGEST, .study = &s };
    CU_ASSERT_EQUAL(run(&c).code, MB_EINVAL);
    CU_ASSERT_EQUAL(suggest("nope", 1, 1).code, MB_ENOTFOUND);
    CU_ASSERT_EQUAL(study("s1")->n_trials, 0);
}

static void test_double_completion_is_refused(void)
{
    add_node(1);
    CU_ASSERT_EQUAL(create_json(BRANIN), MB_OK);
    suggest("s1", 1, 1);
    start("s1", 1, "ev-1", 1, 1);
    CU_ASSERT_EQUAL(finish("s1", 1, "ev-1", 1, CONSENSUS_TRIAL_COMPLETED, 2, NULL).code, MB_OK);
    consensus_result r = finish("s1", 1, "ev-1", 1, CONSENSUS_TRIAL_COMPLETED, 1, NULL);
    CU_ASSERT_EQUAL(r.code, MB_ESTATE);
    CU_ASSERT_EQUAL(study("s1")->n_done, 1);
    CU_ASSERT_EQUAL(study("s1")->trials[0]->value, 2);
}

static void test_reassigned_evaluator_requeues_trial_and_stale_completion_is_refused(void)
{
    add_node(1);
    add_node(2);
    consensus_cmd p = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                        .agent_id = "ev-1",
                        .agent_kind = "evaluator",
                        .agent_node = 1 };
    CU_ASSERT_EQUAL(run(&p).code, MB_OK);
    CU_ASSERT_EQUAL(create_json(BRANIN), MB_OK);
    suggest("s1", 1, 1);
    CU_ASSERT_EQUAL(start("s1", 1, "ev-1", 2, 1).code, MB_ESTATE); /* not its generation */
    CU_ASSERT_EQUAL(start("s1", 1, "ev-1", 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(report("s1", 1, "ev-1", 1, 1, 9).code, MB_OK);
    consensus_cmd re = { .kind = CONSENSUS_CMD_AGENT_REASSIGN,
                         .agent_id = "ev-1",
                         .agent_node = 2 };
    CU_ASSERT_EQUAL(run(&re).code, MB_OK);
    CU_ASSERT_EQUAL(count_events("trial.requeue"), 1);
    const consensus_trial *t = consensus_study_trial(study("s1"), 1);
    CU_ASSERT_EQUAL(t->status, CONSENSUS_TRIAL_SUGGESTED);
    CU_ASSERT_EQUAL(t->requeues, 1);
    CU_ASSERT_EQUAL(t->n_reports, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(t->error, "moved"));
    /* The old copy's completion is refused; the new generation runs it. */
    CU_ASSERT_EQUAL(finish("s1", 1, "ev-1", 1, CONSENSUS_TRIAL_COMPLETED, 1, NULL).code, MB_ESTATE);
    CU_ASSERT_EQUAL(start("s1", 1, "ev-1", 2, 2).code, MB_OK);
    CU_ASSERT_EQUAL(finish("s1", 1, "ev-1", 1, CONSENSUS_TRIAL_COMPLETED, 1, NULL).code, MB_ESTATE);
    CU_ASSERT_EQUAL(finish("s1", 1, "ev-1", 2, CONSENSUS_TRIAL_COMPLETED, 7, NULL).code, MB_OK);
    CU_ASSERT_EQUAL(study("s1")->n_done, 1);
    CU_ASSERT_EQUAL(study("s1")->n_trials, 1);
    CU_ASSERT_EQUAL(consensus_study_trial(study("s1"), 1)->value, 7);
}

static void test_crashed_evaluator_and_down_node_requeue_running_trials(void)
{
    add_node(1);
    add_node(2);
    consensus_cmd p = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                        .agent_id = "ev-1",
                        .agent_kind = "evaluator",
                        .agent_node = 1 };
    run(&p);
    CU_ASSERT_EQUAL(create_json(BRANIN), MB_OK);
    suggest("s1", 1, 1);
    suggest("s1", 2, 2);
    start("s1", 1, "ev-1", 1, 1);
    start("s1", 2, "local-ev", 1, 2); /* not a placed agent: fenced by its node */
    consensus_cmd cr = { .kind = CONSENSUS_CMD_AGENT_STATUS,
                         .agent_id = "ev-1",
                         .generation = 1,
                         .agent_status = CONSENSUS_AGENT_CRASHED };
    CU_ASSERT_EQUAL(run(&cr).code, MB_OK);
    CU_ASSERT_EQUAL(count_events("trial.requeue"), 1);
    CU_ASSERT_EQUAL(consensus_study_trial(study("s1"), 1)->status, CONSENSUS_TRIAL_SUGGESTED);
    CU_ASSERT_EQUAL(consensus_study_trial(study("s1"), 2)->status, CONSENSUS_TRIAL_RUNNING);
    consensus_cmd down = { .kind = CONSENSUS_CMD_NODE_UPDATE,
                           .node_fields = CONSENSUS_NODE_SET_STATUS };
    down.node.id = 2;
    down.node.status = CONSENSUS_NODE_DOWN;
    CU_ASSERT_EQUAL(run(&down).code, MB_OK);
    CU_ASSERT_EQUAL(count_events("trial.requeue"), 1);
    const consensus_trial *t = consensus_study_trial(study("s1"), 2);
    CU_ASSERT_EQUAL(t->status, CONSENSUS_TRIAL_SUGGESTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(t->error, "node 2"));
    /* A trial cannot start on a node that is down. */
    CU_ASSERT_EQUAL(start("s1", 2, "local-ev", 1, 2).code, MB_ESTATE);
    CU_ASSERT_EQUAL(start("s1", 2, "local-ev", 1, 1).code, MB_OK);
    /* Explicit re-queue (e.g. a hung evaluator) */
    consensus_study_cmd s = { .study_id = "s1", .number = 2, .reason = "timed out" };
    consensus_cmd rq = { .kind = CONSENSUS_CMD_TRIAL_REQUEUE, .study = &s };
    CU_ASSERT_EQUAL(run(&rq).code, MB_OK);
    CU_ASSERT_EQUAL(consensus_study_trial(study("s1"), 2)->requeues, 2);
    CU_ASSERT_EQUAL(run(&rq).code, MB_ESTATE);
    CU_ASSERT_EQUAL(study("s1")->n_pending, 2);
}

static void test_prune_keeps_value_and_reports(void)
{
    add_node(1);
    CU_ASSERT_EQUAL(create_json(BRANIN), MB_OK);
    suggest("s1", 1, 1);
    start("s1", 1, "e", 1, 1);
    report("s1", 1, "e", 1, 1, 8);
    report("s1", 1, "e", 1, 3, 6);
    CU_ASSERT_EQUAL(report("s1", 1, "e", 1, 4, INFINITY).code, MB_EINVAL);
    CU_ASSERT_EQUAL(finish("s1", 1, "e", 1, CONSENSUS_TRIAL_PRUNED, 6, NULL).code, MB_OK);
    const consensus_trial *t = consensus_study_trial(study("s1"), 1);
    CU_ASSERT_EQUAL(t->status, CONSENSUS_TRIAL_PRUNED);
    CU_ASSERT_EQUAL(t->n_reports, 2);
    CU_ASSERT_EQUAL(study("s1")->best, 0); /* a pruned trial is never the best */
}

static void test_stop_refuses_new_trials_but_takes_running_results(void)
{
    add_node(1);
    CU_ASSERT_EQUAL(create_json(BRANIN), MB_OK);
    suggest("s1", 1, 1);
    start("s1", 1, "e", 1, 1);
    consensus_study_cmd s = { .study_id = "s1", .reason = "user" };
    consensus_cmd stop = { .kind = CONSENSUS_CMD_STUDY_STOP, .study = &s };
    CU_ASSERT_EQUAL(run(&stop).code, MB_OK);
    CU_ASSERT_EQUAL(count_events("study.stop"), 1);
    CU_ASSERT_EQUAL(run(&stop).code, MB_ESTATE);
    CU_ASSERT_EQUAL(suggest("s1", 1, 1).code, MB_ESTATE);
    CU_ASSERT_EQUAL(finish("s1", 1, "e", 1, CONSENSUS_TRIAL_COMPLETED, 1, NULL).code, MB_OK);
    CU_ASSERT_EQUAL(study("s1")->status, CONSENSUS_STUDY_STOPPED);
    CU_ASSERT_STRING_EQUAL(study("s1")->reason, "user");
}

static void test_finish_writes_best_configuration_to_variables(void)
{
    add_node(1);
    define_float("x0", -5, 10, MB_POLICY_DIRECT);
    define_float("x1", 0, 15, MB_POLICY_DIRECT);
    CU_ASSERT_EQUAL(create_json("{\"id\":\"w\",\"objective\":\"builtin:branin\","
                                "\"space\":[\"x0\",\"x1\"],\"on_finish\":\"write\","
                                "\"budget\":{\"trials\":2}}"),
                    MB_OK);
    suggest("w", 3, 2);
    start("w", 1, "e", 1, 1);
    finish("w", 1, "e", 1, CONSENSUS_TRIAL_COMPLETED, 0.4, NULL);
    suggest("w", 1, 1);
    start("w", 2, "e", 1, 1);
    CU_ASSERT_EQUAL(finish("w", 2, "e", 1, CONSENSUS_TRIAL_COMPLETED, 9, NULL).code, MB_OK);
    CU_ASSERT_EQUAL(count_events("study.finish"), 1);
    CU_ASSERT_EQUAL(count_events("var.set"), 2);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "x0")->value.u.f, 3);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "x1")->value.u.f, 2);
    CU_ASSERT_STRING_EQUAL(consensus_sm_var_get(sm, "x1")->changed_by, "w");
}

static void test_same_idempotency_id_suggests_once(void)
{
    CU_ASSERT_EQUAL(create_json(BRANIN), MB_OK);
    double p[2] = { 1, 1 };
    consensus_study_cmd s = { .study_id = "s1", .params = p, .n_params = 2 };
    consensus_cmd c = {
        .kind = CONSENSUS_CMD_TRIAL_SUGGEST, .client_id = 7, .request_seq = 1, .study = &s
    };
    CU_ASSERT_EQUAL(run(&c).code, MB_OK);
    consensus_result r = run(&c);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_STRING_EQUAL(r.msg, "trial 1");
    CU_ASSERT_EQUAL(study("s1")->n_trials, 1);
    /* A pipelined suggestion names the number it expects. */
    c.client_id = 0;
    s.number = 3;
    CU_ASSERT_EQUAL(run(&c).code, MB_ECONFLICT);
    s.number = 2;
    s.basis = 1; /* no trial has finished yet */
    CU_ASSERT_EQUAL(run(&c).code, MB_EINVAL);
    s.basis = 0;
    CU_ASSERT_EQUAL(run(&c).code, MB_OK);
    CU_ASSERT_EQUAL(study("s1")->n_trials, 2);
}

/* ---------------- snapshot and JSON ---------------- */

static void test_snapshot_round_trip_keeps_studies_and_trials(void)
{
    add_node(1);
    CU_ASSERT_EQUAL(create_json(BRANIN), MB_OK);
    CU_ASSERT_EQUAL(create_json("{\"id\":\"p\",\"objective\":\"python:/x/obj.py\","
                                "\"space\":[{\"name\":\"a\",\"type\":\"int\",\"min\":1,\"max\":9},"
                                "{\"name\":\"b\",\"type\":\"bool\"},{\"name\":\"c\",\"type\":"
                                "\"probability\"}],\"partition\":[[\"a\"],[\"b\",\"c\"]],"
                                "\"budget\":{\"seconds\":60}}"),
                    MB_OK);
    suggest("s1", 1, 1);
    suggest("s1", 2, 2);
    start("s1", 1, "e", 1, 1);
    report("s1", 1, "e", 1, 2, 3);
    start("s1", 2, "e", 1, 1);
    finish("s1", 2, "e", 1, CONSENSUS_TRIAL_FAILED, 0, "garbage on stdout");
    void *a = NULL, *b = NULL;
    size_t la, lb;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_snapshot(sm, NULL, &a, &la, NULL), MB_OK);
    consensus_sm *r = NULL;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_restore(a, la, &r, &e), MB_OK);
    CU_ASSERT_EQUAL_FATAL(consensus_sm_snapshot(r, NULL, &b, &lb, NULL), MB_OK);
    CU_ASSERT_EQUAL(la, lb);
    CU_ASSERT_TRUE(la == lb && memcmp(a, b, la) == 0);
    const consensus_study *st = consensus_sm_study_get(r, "s1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->n_trials, 2);
    CU_ASSERT_EQUAL(st->n_pending, 1);
    CU_ASSERT_EQUAL(st->trials[0]->n_reports, 1);
    CU_ASSERT_STRING_EQUAL(st->trials[1]->error, "garbage on stdout");
    const consensus_study *ps = consensus_sm_study_get(r, "p");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ps);
    CU_ASSERT_EQUAL(ps->def.n_groups, 2);
    CU_ASSERT_EQUAL(ps->def.params[2].group, 1);
    CU_ASSERT_EQUAL(ps->def.deadline_ms, 61000);
    /* Corrupting a byte of the body is detected. */
    ((uint8_t *)a)[la - 3] ^= 0x55;
    consensus_sm *bad = NULL;
    CU_ASSERT_NOT_EQUAL(consensus_sm_restore(a, la, &bad, &e), MB_OK);
    CU_ASSERT_PTR_NULL(bad);
    free(a);
    free(b);
    consensus_sm_free(r);
}

static void test_study_json_shows_best_allocation_and_trials(void)
{
    add_node(1);
    CU_ASSERT_EQUAL(create_json(BRANIN), MB_OK);
    suggest("s1", 1, 1);
    start("s1", 1, "e", 1, 1);
    finish("s1", 1, "e", 1, CONSENSUS_TRIAL_COMPLETED, 4, NULL);
    cJSON *o = NULL;
    CU_ASSERT_EQUAL_FATAL(consensus_study_to_json(study("s1"), 1, &o), MB_OK);
    char *text = cJSON_PrintUnformatted(o);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"best\":{\"number\":1,\"value\":4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"allocation\":{\"tpe\":{\"trials\":1,\"completed\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"objective\":\"builtin:branin\""));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(o, "trials")), 1);
    cJSON_free(text);
    cJSON_Delete(o);
}

static CU_TestInfo study_tests[] = {
    { "test_create_study_resolves_variables_and_emits_event",
      test_create_study_resolves_variables_and_emits_event },
    { "test_create_rejects_bad_definitions", test_create_rejects_bad_definitions },
    { "test_trial_lifecycle_and_budget_finishes_study",
      test_trial_lifecycle_and_budget_finishes_study },
    { "test_parallelism_bounds_running_and_waiting_trials",
      test_parallelism_bounds_running_and_waiting_trials },
    { "test_suggest_rejects_values_outside_space", test_suggest_rejects_values_outside_space },
    { "test_double_completion_is_refused", test_double_completion_is_refused },
    { "test_reassigned_evaluator_requeues_trial_and_stale_completion_is_refused",
      test_reassigned_evaluator_requeues_trial_and_stale_completion_is_refused },
    { "test_crashed_evaluator_and_down_node_requeue_running_trials",
      test_crashed_evaluator_and_down_node_requeue_running_trials },
    { "test_prune_keeps_value_and_reports", test_prune_keeps_value_and_reports },
    { "test_stop_refuses_new_trials_but_takes_running_results",
      test_stop_refuses_new_trials_but_takes_running_results },
    { "test_finish_writes_best_configuration_to_variables",
      test_finish_writes_best_configuration_to_variables },
    { "test_same_idempotency_id_suggests_once", test_same_idempotency_id_suggests_once },
    { "test_snapshot_round_trip_keeps_studies_and_trials",
      test_snapshot_round_trip_keeps_studies_and_trials },
    { "test_study_json_shows_best_allocation_and_trials",
      test_study_json_shows_best_allocation_and_trials },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "studies", sm_fixture_setup, sm_fixture_teardown, sm_fixture_fresh, NULL, study_tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
