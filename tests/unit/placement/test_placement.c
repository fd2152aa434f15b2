/* Unit tests of node/placement.c's pure part: the placement syntax of
 * spawn (any, node:N, spread:load, spread:cap=X) and its error messages. */
#include <string.h>

#include "mb_test.h"
#include "node/placement.h"

static void test_parse_accepts_every_documented_form(void)
{
    placement_mode m;
    uint64_t node;
    char cap[64];
    mb_error e;
    CU_ASSERT_EQUAL(placement_parse("any", &m, &node, cap, sizeof(cap), &e), MB_OK);
    CU_ASSERT_EQUAL(m, PLACEMENT_ANY);
    CU_ASSERT_EQUAL(placement_parse(NULL, &m, &node, cap, sizeof(cap), &e), MB_OK);
    CU_ASSERT_EQUAL(m, PLACEMENT_ANY);
    CU_ASSERT_EQUAL(placement_parse("node:2", &m, &node, cap, sizeof(cap), &e), MB_OK);
    CU_ASSERT_TRUE(m == PLACEMENT_NODE && node == 2);
    CU_ASSERT_EQUAL(placement_parse("7", &m, &node, cap, sizeof(cap), &e), MB_OK);
    CU_ASSERT_TRUE(m == PLACEMENT_NODE && node == 7);
    CU_ASSERT_EQUAL(placement_parse("spread:load", &m, &node, cap, sizeof(cap), &e), MB_OK);
    CU_ASSERT_EQUAL(m, PLACEMENT_SPREAD_LOAD);
    CU_ASSERT_EQUAL(placement_parse("spread:cap=gpu", &m, &node, cap, sizeof(cap), &e), MB_OK);
    CU_ASSERT_EQUAL(m, PLACEMENT_SPREAD_CAP);
    CU_ASSERT_STRING_EQUAL(cap, "gpu");
}

static void test_parse_rejects_bad_forms_with_a_message(void)
{
    placement_mode m;
    uint64_t node;
    char cap[8];
    mb_error e;
    const char *bad[] = { "",         "node:",   "node:0",      "node:70000",
                          "node:2x",  "spread:", "spread:cap=", "spread:cap=toolongcap",
                          "anywhere", "-1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mb_error_clear(&e);
        CU_ASSERT_EQUAL(placement_parse(bad[i], &m, &node, cap, sizeof(cap), &e), MB_EINVAL);
        CU_ASSERT_NOT_EQUAL(e.msg[0], '\0');
    }
}

static CU_TestInfo tests[] = {
    { "test_parse_accepts_every_documented_form", test_parse_accepts_every_documented_form },
    { "test_parse_rejects_bad_forms_with_a_message", test_parse_rejects_bad_forms_with_a_message },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "placement", NULL, NULL, NULL, NULL, tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
