/* Opt-out and opt-in keywords: the whole message, any case, configurable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "conv.h"

static const char *OUT = "STOP STOPALL UNSUBSCRIBE CANCEL END QUIT REVOKE OPTOUT";
static const char *IN = "START UNSTOP YES";

static void the_whole_message_in_any_case_opts_out(void **state)
{
    (void)state;
    const char *yes[] = {"STOP", "stop", " Stop \n", "STOP.", "unsubscribe!",
                         "Quit", "end",  "revoke",   "OptOut"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_int_equal(conv_keyword(yes[i], OUT, IN), KW_OPTOUT);
}

static void a_keyword_inside_a_sentence_does_not(void **state)
{
    (void)state;
    const char *no[] = {"please stop sending", "STOPPED", "don't stop", "", "   ",
                        "STOP STOP",           "endless"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_int_equal(conv_keyword(no[i], OUT, IN), KW_NONE);
    assert_int_equal(conv_keyword(NULL, OUT, IN), KW_NONE);
}

static void opt_in_keywords_opt_back_in(void **state)
{
    (void)state;
    assert_int_equal(conv_keyword("start", OUT, IN), KW_OPTIN);
    assert_int_equal(conv_keyword("UNSTOP", OUT, IN), KW_OPTIN);
}

static void the_lists_are_configurable(void **state)
{
    (void)state;
    assert_int_equal(conv_keyword("PARAR", "PARAR SAIR", "VOLTAR"), KW_OPTOUT);
    assert_int_equal(conv_keyword("stop", "PARAR SAIR", "VOLTAR"), KW_NONE);
    assert_int_equal(conv_keyword("voltar", "PARAR SAIR", "VOLTAR"), KW_OPTIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_whole_message_in_any_case_opts_out),
        cmocka_unit_test(a_keyword_inside_a_sentence_does_not),
        cmocka_unit_test(opt_in_keywords_opt_back_in),
        cmocka_unit_test(the_lists_are_configurable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
