/* Tests of the replicated studies and trials (consensus/study.c): every
 * command, bad definitions, re-queue of trials whose evaluator or node went
 * away, refusal of stale and double completions, snapshot round trip. */
#include <math.h>
#include <stdio.h>
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

/* studyagents: a re-queue that names the claim it ends (evaluator and
 * generation, through the codec) does not hit a later claim of the trial. */
static void test_conditional_requeue_only_ends_the_named_claim(void)
{
    add_node(1);
    CU_ASSERT_EQUAL(create_json(BRANIN), MB_OK);
    suggest("s1", 1, 1);
    CU_ASSERT_EQUAL(start("s1", 1, "evaluator-1-1", 4, 1).code, MB_OK);
    consensus_study_cmd s = { .study_id = "s1",
                              .number = 1,
                              .reason = "lost",
                              .evaluator = "evaluator-1-2",
                              .generation = 4 };
    consensus_cmd rq = { .kind = CONSENSUS_CMD_TRIAL_REQUEUE, .study = &s };
    CU_ASSERT_EQUAL(run(&rq).code, MB_ESTATE); /* another evaluator */
    s.evaluator = "evaluator-1-1";
    s.generation = 3;
    CU_ASSERT_EQUAL(run(&rq).code, MB_ESTATE); /* an older generation */
    CU_ASSERT_EQUAL(consensus_study_trial(study("s1"), 1)->status, CONSENSUS_TRIAL_RUNNING);
    s.generation = 4;
    CU_ASSERT_EQUAL(run(&rq).code, MB_OK);
    CU_ASSERT_EQUAL(consensus_study_trial(study("s1"), 1)->status, CONSENSUS_TRIAL_SUGGESTED);
    CU_ASSERT_EQUAL(count_events("trial.requeue"), 1);
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

/* Two trials of study `id` (budget 2) through evaluator "e": the first
 * completes at 0.4; the second is started and left for the caller. */
static void run_first_of_two(const char *id)
{
    suggest(id, 3, 2);
    start(id, 1, "e", 1, 1);
    finish(id, 1, "e", 1, CONSENSUS_TRIAL_COMPLETED, 0.4, NULL);
    suggest(id, 1, 1);
    start(id, 2, "e", 1, 1);
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
    run_first_of_two("w");
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

/* ---------------- studyfeat: pruning, on_finish propose ---------------- */

#define CURVES                                                                                     \
    "{\"id\":\"c\",\"objective\":\"command:/bin/obj\",\"strategy\":\"random\","                    \
    "\"space\":[{\"name\":\"x0\",\"type\":\"float\",\"min\":-5,\"max\":10},"                       \
    "{\"name\":\"x1\",\"type\":\"float\",\"min\":0,\"max\":15}],"                                  \
    "\"pruner\":{\"kind\":\"median\",\"n_startup_trials\":2},"                                     \
    "\"budget\":{\"trials\":5},\"parallelism\":2}"

/* Run trial n of "c" through reports (1, a) and (2, b); `done` completes it. */
static void curve(uint32_t n, double a, double b, int done)
{
    CU_ASSERT_EQUAL(suggest("c", 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(start("c", n, "e", 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(report("c", n, "e", 1, 1, a).code, MB_OK);
    CU_ASSERT_EQUAL(report("c", n, "e", 1, 2, b).code, MB_OK);
    if (done)
        CU_ASSERT_EQUAL(finish("c", n, "e", 1, CONSENSUS_TRIAL_COMPLETED, b, NULL).code, MB_OK);
}

static void test_median_pruner_prunes_bad_curves_in_the_state_machine(void)
{
    add_node(1);
    CU_ASSERT_EQUAL_FATAL(create_json(CURVES), MB_OK);
    curve(1, 10, 5, 1);
    curve(2, 12, 6, 1);
    CU_ASSERT_EQUAL(study("c")->n_done, 2);
    /* a good curve goes on */
    curve(3, 9, 4, 0);
    CU_ASSERT_EQUAL(consensus_study_trial(study("c"), 3)->status, CONSENSUS_TRIAL_RUNNING);
    /* a bad one: worse than the median (11) at step 1 — pruned by the report itself */
    CU_ASSERT_EQUAL(suggest("c", 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(start("c", 4, "e", 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(report("c", 4, "e", 1, 1, 30).code, MB_OK);
    CU_ASSERT_EQUAL(count_events("trial.report"), 1);
    CU_ASSERT_EQUAL(count_events("trial.prune"), 1);
    const consensus_trial *t = consensus_study_trial(study("c"), 4);
    CU_ASSERT_EQUAL(t->status, CONSENSUS_TRIAL_PRUNED);
    CU_ASSERT_TRUE(t->has_value);
    CU_ASSERT_EQUAL(t->value, 30);
    CU_ASSERT_EQUAL(t->n_reports, 1);
    CU_ASSERT_EQUAL(study("c")->n_done, 3);
    CU_ASSERT_EQUAL(study("c")->n_running, 1);
    /* the evaluator's late results are refused: its trial is over */
    CU_ASSERT_EQUAL(report("c", 4, "e", 1, 2, 29).code, MB_ESTATE);
    CU_ASSERT_EQUAL(finish("c", 4, "e", 1, CONSENSUS_TRIAL_COMPLETED, 29, NULL).code, MB_ESTATE);
    /* a pruned trial counts for the budget: the 5th finish ends the study */
    CU_ASSERT_EQUAL(finish("c", 3, "e", 1, CONSENSUS_TRIAL_COMPLETED, 4, NULL).code, MB_OK);
    CU_ASSERT_EQUAL(suggest("c", 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(start("c", 5, "e", 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(report("c", 5, "e", 1, 1, 10).code, MB_OK); /* median 10: not worse */
    CU_ASSERT_EQUAL(report("c", 5, "e", 1, 2, 50).code, MB_OK); /* best so far 10 > 5.5 */
    CU_ASSERT_EQUAL(count_events("trial.prune"), 1);
    CU_ASSERT_EQUAL(count_events("study.finish"), 1);
    CU_ASSERT_EQUAL(study("c")->status, CONSENSUS_STUDY_FINISHED);
    cJSON *o = NULL;
    CU_ASSERT_EQUAL_FATAL(consensus_study_to_json(study("c"), 0, &o), MB_OK);
    cJSON *by = cJSON_GetObjectItem(o, "trials_by_status");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(by, "pruned")->valueint, 2);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(o, "pruner"), "kind")->valuestring, "median");
    cJSON_Delete(o);
}

static void test_without_pruner_reports_never_prune(void)
{
    add_node(1);
    CU_ASSERT_EQUAL_FATAL(create_json("{\"id\":\"c\",\"objective\":\"command:/bin/obj\","
                                      "\"space\":[{\"name\":\"x0\",\"type\":\"float\",\"min\":0,"
                                      "\"max\":1},{\"name\":\"x1\",\"type\":\"float\",\"min\":0,"
                                      "\"max\":1}],\"budget\":{\"trials\":9}}"),
                          MB_OK);
    for (uint32_t n = 1; n <= 6; n++)
        curve(n, n == 6 ? 1000 : 1, 1, n < 6);
    CU_ASSERT_EQUAL(count_events("trial.prune"), 0);
    CU_ASSERT_EQUAL(consensus_study_trial(study("c"), 6)->status, CONSENSUS_TRIAL_RUNNING);
}

static void test_create_rejects_bad_pruner_and_propose_settings(void)
{
    define_float("k", 0, 1, MB_POLICY_CONSENSUS);
    static const char *const bad[] = {
        "\"objective\":\"builtin:sphere\",\"pruner\":\"median\"",
        "\"objective\":\"command:/x\",\"pruner\":\"sometimes\"",
        "\"objective\":\"command:/x\",\"pruner\":{\"kind\":\"asha\",\"reduction_factor\":1}",
        "\"objective\":\"command:/x\",\"pruner\":{\"kind\":\"median\",\"n_min_trials\":0}",
        "\"objective\":\"command:/x\",\"pruner\":{\"kind\":\"median\",\"bogus\":1}",
        "\"objective\":\"command:/x\",\"pruner\":{\"kind\":\"hyperband\",\"max_resource\":-3}",
        "\"objective\":\"command:/x\",\"propose\":{\"rule\":\"majority\"}",
        "\"objective\":\"command:/"
        "x\",\"on_finish\":\"propose\",\"propose\":{\"rule\":\"weighted\"}",
        "\"objective\":\"command:/x\",\"on_finish\":\"propose\",\"propose\":{\"caps\":[]}",
        "\"objective\":\"command:/x\",\"on_finish\":\"propose\",\"propose\":{\"fraction\":0.8}",
        "\"objective\":\"command:/x\",\"on_finish\":\"propose\","
        "\"propose\":{\"rule\":\"supermajority\",\"fraction\":0.4}",
        "\"objective\":\"command:/x\",\"on_finish\":\"propose\",\"propose\":{\"caps\":[\"a b\"]}",
        "\"objective\":\"command:/x\",\"on_finish\":\"propose\",\"propose\":{\"quorum\":3}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "{\"id\":\"b\",\"space\":[\"k\"],\"budget\":{\"trials\":2},%s}", bad[i]);
        int rc = create_json(text);
        if (rc != MB_EINVAL)
            fprintf(stderr, "accepted or wrong code %d: %s\n", rc, text);
        CU_ASSERT_EQUAL(rc, MB_EINVAL);
    }
    /* a grid cannot be partitioned */
    CU_ASSERT_EQUAL(create_json("{\"id\":\"g\",\"objective\":\"builtin:branin\",\"strategy\":"
                                "\"grid\",\"space\":[{\"name\":\"a\",\"type\":\"float\",\"min\":-5,"
                                "\"max\":10},{\"name\":\"b\",\"type\":\"float\",\"min\":0,\"max\":"
                                "15}],\"partition\":[[\"a\"],[\"b\"]],\"budget\":{\"trials\":2}}"),
                    MB_EINVAL);
    CU_ASSERT_EQUAL(create_json("{\"id\":\"ok\",\"space\":[\"k\"],\"budget\":{\"trials\":2},"
                                "\"objective\":\"command:/x\",\"on_finish\":\"propose\","
                                "\"propose\":{\"rule\":\"supermajority\",\"fraction\":0.75,"
                                "\"caps\":[\"voter\",\"tuner\"]},\"pruner\":\"hyperband\"}"),
                    MB_OK);
    const consensus_study_def *d = &study("ok")->def;
    CU_ASSERT_EQUAL(d->propose_rule, CONSENSUS_RULE_SUPERMAJORITY);
    CU_ASSERT_EQUAL(d->n_propose_caps, 2);
    CU_ASSERT_EQUAL(d->pruner.kind, 3);
    CU_ASSERT_EQUAL(d->pruner.max_resource, 81);
}

static void place_voter(const char *id, const char *cap)
{
    char *caps[1] = { (char *)cap };
    consensus_cmd c = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                        .agent_id = (char *)id,
                        .agent_kind = "voter",
                        .agent_node = 1,
                        .agent_caps = caps,
                        .n_agent_caps = 1 };
    CU_ASSERT_EQUAL_FATAL(run(&c).code, MB_OK);
}

static void test_finish_opens_a_proposal_per_variable_and_votes_decide(void)
{
    add_node(1);
    define_float("x0", -5, 10, MB_POLICY_CONSENSUS);
    define_float("x1", 0, 15, MB_POLICY_CONSENSUS);
    place_voter("v1", "voter");
    place_voter("v2", "voter");
    place_voter("v3", "voter");
    place_voter("other", "tuner"); /* not eligible: lacks the capability */
    double x0_before = consensus_sm_var_get(sm, "x0")->value.u.f;
    double x1_before = consensus_sm_var_get(sm, "x1")->value.u.f;
    CU_ASSERT_NOT_EQUAL(x0_before, 3);
    CU_ASSERT_NOT_EQUAL(x1_before, 2);
    CU_ASSERT_EQUAL(create_json("{\"id\":\"w\",\"objective\":\"builtin:branin\","
                                "\"space\":[\"x0\",\"x1\"],\"on_finish\":\"write\","
                                "\"budget\":{\"trials\":2}}"),
                    MB_EINVAL); /* consensus variables are not written */
    CU_ASSERT_EQUAL_FATAL(create_json("{\"id\":\"w\",\"objective\":\"builtin:branin\","
                                      "\"space\":[\"x0\",\"x1\"],\"on_finish\":\"propose\","
                                      "\"budget\":{\"trials\":2}}"),
                          MB_OK);
    run_first_of_two("w");
    uint64_t at = next_index + 1;
    CU_ASSERT_EQUAL(finish("w", 2, "e", 1, CONSENSUS_TRIAL_COMPLETED, 9, NULL).code, MB_OK);
    CU_ASSERT_EQUAL(count_events("study.finish"), 1);
    CU_ASSERT_EQUAL(count_events("proposal.open"), 2);
    CU_ASSERT_EQUAL(count_events("var.set"), 0);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "x0")->value.u.f, x0_before);
    char id0[32], id1[32];
    snprintf(id0, sizeof(id0), "%llu", (unsigned long long)((1ull << 51) + 64 * at));
    snprintf(id1, sizeof(id1), "%llu", (unsigned long long)((1ull << 51) + 64 * at + 1));
    const consensus_proposal *p = consensus_sm_proposal_get(sm, id0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(p->variable, "x0");
    CU_ASSERT_EQUAL(p->n_voters, 3);
    CU_ASSERT_EQUAL(p->value.u.f, 3);
    CU_ASSERT_STRING_EQUAL(p->proposer, "w");
    /* the finish event names the proposals */
    const consensus_study *st = study("w");
    CU_ASSERT_EQUAL(st->status, CONSENSUS_STUDY_FINISHED);
    consensus_cmd v = { .kind = CONSENSUS_CMD_PROPOSAL_VOTE, .proposal_id = id0, .yes = 1 };
    v.voter = "v1";
    CU_ASSERT_EQUAL(run(&v).code, MB_OK);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "x0")->value.u.f, x0_before); /* 1 of 3 */
    v.voter = "v2";
    CU_ASSERT_EQUAL(run(&v).code, MB_OK); /* 2 of 3: majority */
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "x0")->value.u.f, 3);
    v.proposal_id = id1;
    v.yes = 0;
    v.voter = "v1";
    run(&v);
    v.voter = "v3";
    CU_ASSERT_EQUAL(run(&v).code, MB_OK); /* 2 no of 3: rejected */
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, id1));
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "x1")->value.u.f, x1_before);
}

static void test_propose_skips_variables_it_cannot_propose(void)
{
    add_node(1);
    define_float("x0", -5, 10, MB_POLICY_CONSENSUS);
    define_float("x1", 0, 15, MB_POLICY_CONSENSUS);
    place_voter("v1", "voter");
    CU_ASSERT_EQUAL_FATAL(create_json("{\"id\":\"w\",\"objective\":\"builtin:branin\","
                                      "\"space\":[\"x0\",\"x1\"],\"on_finish\":\"propose\","
                                      "\"budget\":{\"trials\":1}}"),
                          MB_OK);
    char *voters[1] = { "v1" };
    consensus_cmd o = { .kind = CONSENSUS_CMD_PROPOSAL_OPEN,
                        .proposal_id = "mine",
                        .name = "x1",
                        .by = "user",
                        .voters = voters,
                        .n_voters = 1 };
    o.value = (mb_value){ .type = MB_VT_FLOAT, .u.f = 1 };
    CU_ASSERT_EQUAL_FATAL(run(&o).code, MB_OK);
    suggest("w", 3, 2);
    start("w", 1, "e", 1, 1);
    CU_ASSERT_EQUAL(finish("w", 1, "e", 1, CONSENSUS_TRIAL_COMPLETED, 0.4, NULL).code, MB_OK);
    CU_ASSERT_EQUAL(count_events("proposal.open"), 1); /* x0 only: x1 has one open */
    CU_ASSERT_EQUAL(study("w")->status, CONSENSUS_STUDY_FINISHED);
    CU_ASSERT_EQUAL(consensus_sm_proposal_count(sm), 2);
}

static void test_snapshot_keeps_pruner_and_propose_settings(void)
{
    define_float("k", 0, 1, MB_POLICY_CONSENSUS);
    CU_ASSERT_EQUAL_FATAL(create_json("{\"id\":\"ok\",\"space\":[\"k\"],\"budget\":{\"trials\":2},"
                                      "\"objective\":\"command:/x\",\"on_finish\":\"propose\","
                                      "\"propose\":{\"rule\":\"unanimous\",\"caps\":[\"tuner\"]},"
                                      "\"pruner\":{\"kind\":\"asha\",\"min_resource\":2,"
                                      "\"reduction_factor\":4}}"),
                          MB_OK);
    void *a = NULL;
    size_t la;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_snapshot(sm, NULL, &a, &la, NULL), MB_OK);
    consensus_sm *r = NULL;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_restore(a, la, &r, &e), MB_OK);
    const consensus_study *st = consensus_sm_study_get(r, "ok");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->def.pruner.kind, 2);
    CU_ASSERT_EQUAL(st->def.pruner.min_resource, 2);
    CU_ASSERT_EQUAL(st->def.pruner.reduction_factor, 4);
    CU_ASSERT_EQUAL(st->def.propose_rule, CONSENSUS_RULE_UNANIMOUS);
    CU_ASSERT_EQUAL_FATAL(st->def.n_propose_caps, 1);
    CU_ASSERT_STRING_EQUAL(st->def.propose_caps[0], "tuner");
    free(a);
    consensus_sm_free(r);
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
    { "test_conditional_requeue_only_ends_the_named_claim",
      test_conditional_requeue_only_ends_the_named_claim },
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
    { "test_median_pruner_prunes_bad_curves_in_the_state_machine",
      test_median_pruner_prunes_bad_curves_in_the_state_machine },
    { "test_without_pruner_reports_never_prune", test_without_pruner_reports_never_prune },
    { "test_create_rejects_bad_pruner_and_propose_settings",
      test_create_rejects_bad_pruner_and_propose_settings },
    { "test_finish_opens_a_proposal_per_variable_and_votes_decide",
      test_finish_opens_a_proposal_per_variable_and_votes_decide },
    { "test_propose_skips_variables_it_cannot_propose",
      test_propose_skips_variables_it_cannot_propose },
    { "test_snapshot_keeps_pruner_and_propose_settings",
      test_snapshot_keeps_pruner_and_propose_settings },
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
