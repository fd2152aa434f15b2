/* Tests of the header-only pieces shared by every module: the error enum
 * and its string table. */
#include <mabeam/error.h>
#include <string.h>

#include "mb_test.h"

static void test_every_code_has_a_distinct_name_and_text(void)
{
    for (int i = 0; i < MB_ERR_COUNT_; i++) {
        CU_ASSERT_STRING_NOT_EQUAL(mb_errname(i), "MB_E?");
        CU_ASSERT_STRING_NOT_EQUAL(mb_strerror(i), "unknown error");
        for (int j = 0; j < i; j++)
            CU_ASSERT_STRING_NOT_EQUAL(mb_errname(i), mb_errname(j));
    }
    CU_ASSERT_STRING_EQUAL(mb_strerror(-1), "unknown error");
    CU_ASSERT_STRING_EQUAL(mb_errname(MB_ERR_COUNT_), "MB_E?");
}

static void test_errorf_records_code_and_message_and_returns_code(void)
{
    mb_error e;
    mb_error_clear(&e);
    CU_ASSERT_EQUAL(mb_errorf(&e, MB_EIO, "open %s: %d", "/x", 5), MB_EIO);
    CU_ASSERT_EQUAL(e.code, MB_EIO);
    CU_ASSERT_STRING_EQUAL(e.msg, "open /x: 5");
    CU_ASSERT_EQUAL(mb_errorf(NULL, MB_EINVAL, "ignored"), MB_EINVAL);
}

static void test_errorf_truncates_long_messages(void)
{
    mb_error e;
    char big[600];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    mb_errorf(&e, MB_EINVAL, "%s", big);
    CU_ASSERT_EQUAL(strlen(e.msg), sizeof(e.msg) - 1);
}

static CU_TestInfo error_tests[] = {
    { "every_code_has_a_distinct_name_and_text", test_every_code_has_a_distinct_name_and_text },
    { "errorf_records_code_and_message_and_returns_code",
      test_errorf_records_code_and_message_and_returns_code },
    { "errorf_truncates_long_messages", test_errorf_truncates_long_messages },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "error", NULL, NULL, NULL, NULL, error_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
