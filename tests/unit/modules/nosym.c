/* A shared object that is not a warren module: no descriptor symbol. */
__attribute__((visibility("default"))) int nosym_answer(void)
{
    return 42;
}
