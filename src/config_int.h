/* config_int.h - what the config*.c files share; nothing outside them
 * includes this header.
 *
 * config.c parses the options (the table, --help, the values);
 * config_secret.c reads the admin token and scrubs it from the
 * environment; config_net.c resolves and judges listening addresses.
 */
#ifndef H1MOCK_CONFIG_INT_H
#define H1MOCK_CONFIG_INT_H

#include <stddef.h>

/* Why `t` cannot be a bearer token, or NULL when it can be one. The reason
 * never quotes the token. */
const char *config_token_problem(const char *t, size_t len);

#endif
