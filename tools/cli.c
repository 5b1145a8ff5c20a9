/* Helpers every command-line tool shares (clcnn and cltune): option values, size pairs and
 * JSON strings. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_option_value(int argc, char **argv, int *i, const char *opt, const char **value)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

bool cli_parse_pair(const char *s, size_t *a, size_t *b)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    unsigned long long x = strtoull(s, &end, 10);
    unsigned long long y = x;
    if (*end == ',') {
        if (end[1] < '0' || end[1] > '9')
            return false;
        y = strtoull(end + 1, &end, 10);
    }
    if (*end != '\0' || x > (1ull << 30) || y > (1ull << 30))
        return false;
    *a = (size_t)x;
    *b = (size_t)y;
    return true;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}
