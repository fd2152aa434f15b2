/* A shared object that is not a kind library (no mb_agent_kind_v1): loading
 * it must fail with a clear error. */
int it_not_a_kind(void);
int it_not_a_kind(void)
{
    return 42;
}
