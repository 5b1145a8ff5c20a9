/* Shared pieces of the clcnn command-line tool: usage errors (exit 2), library failures
 * (exit 1) and option parsing. Defined in tools/clcnn.c. */
#ifndef CLCNN_TOOLS_CLI_H
#define CLCNN_TOOLS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "clcnn/clcnn.h"

#define CLI_EXIT_USAGE 2

/* Prints "clcnn CMD: <fmt with arg> (see 'clcnn CMD --help')" on stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, const char *arg);

/* Prints "clcnn CMD: STATUS: <last error>" on stderr; returns 1. */
int cli_fail(const char *cmd, clcnn_status st);

/* Takes the value of "--opt VALUE" or "--opt=VALUE" at argv[*i]: 1 when it matched (value set,
 * *i advanced past it), 0 when argv[*i] is another argument, -1 when the value is missing. */
int cli_option_value(int argc, char **argv, int *i, const char *opt, const char **value);

/* Parses "A" or "A,B" of positive sizes into a and b (b = a for one value). */
bool cli_parse_pair(const char *s, size_t *a, size_t *b);

/* Writes s as a JSON string literal (quoted, escaped). */
void cli_json_string(FILE *f, const char *s);

/* clcnn train: train a model on Fashion-MNIST. */
int cli_cmd_train(int argc, char **argv);

/* clcnn eval: test accuracy and confusion matrix of trained weights. */
int cli_cmd_eval(int argc, char **argv);

/* clcnn infer: classify images with trained weights. */
int cli_cmd_infer(int argc, char **argv);

/* clcnn summary: a model file's layers, shapes, parameters and FLOPs. */
int cli_cmd_summary(int argc, char **argv);

/* clcnn op: run one operation on .npy files. */
int cli_cmd_op(int argc, char **argv);

/* The classifier ops of clcnn op (tools/op_fc.c): whether NAME is one, its help, and running
 * it with argv[0] = NAME. */
bool cli_op_fc_known(const char *name);
void cli_op_fc_help(const char *name);
int cli_op_fc(int argc, char **argv);

#endif
