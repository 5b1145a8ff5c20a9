/* clcnn bench: convolution solvers timed against each other and oneDNN, and the cold versus
 * cached cost of a first run. Defined in tools/bench.c. */
#ifndef CLCNN_TOOLS_BENCH_H
#define CLCNN_TOOLS_BENCH_H

#include <stdio.h>

#include "cli.h"

/* Help texts, shared by 'clcnn help bench' (the commands table) and 'clcnn bench conv --help'. */
#define BENCH_CONV_USAGE                                                                           \
    "conv [--shapes SET|LIST] [--algo all|NAME] [--repeat N] [--min-time MS] [--warmup N]\n"       \
    "                   [--json] [--device SEL] [--pass fwd|bwd-data|bwd-weights]"

#define BENCH_CONV_HELP                                                                            \
    "clcnn bench conv: for every shape, every applicable solver: warm-up runs (the first also\n"   \
    "compiles), then timed runs of clcnn_conv2d_forward (wall clock around the call and a\n"       \
    "clcnn_device_finish: the ops return before their kernels run).\n"                             \
    "Reports median and min ms, GFLOP/s, and the max relative error against the direct\n"          \
    "solver's output; built with -Donednn=enabled, also oneDNN's direct convolution and\n"         \
    "the best clcnn solver's speed relative to it.\n"                                              \
    "  --shapes SET|LIST  lenet (default), alexnet, vgg16, or N,C,H,W,K,R,S,stride,pad[;...]\n"    \
    "  --algo all|NAME    every applicable solver (default), or one: direct, auto, ...\n"          \
    "  --repeat N         timed runs per solver, at least (default 5)\n"                           \
    "  --min-time MS      and more until they add up to MS milliseconds (default 200; 0: off)\n"   \
    "  --warmup N         untimed runs before them (default 1)\n"                                  \
    "  --json             one JSON object with an array of rows instead of the table\n"            \
    "  --device SEL       the device (see clcnn devices --help)\n"                                 \
    "  --pass PASS        fwd (default), bwd-data (clcnn_conv2d_backward_data) or bwd-weights;\n"  \
    "                     GFLOP/s counts the forward's FLOPs for every pass, oneDNN runs the\n"    \
    "                     same pass"

#define BENCH_STARTUP_USAGE                                                                        \
    "startup [--shapes SET|LIST] [--algo NAME] [--repeat N] [--json] [--device SEL]"

#define BENCH_STARTUP_HELP                                                                         \
    "clcnn bench startup: starts fresh processes that each compute the first shape of --shapes\n"  \
    "once, and times process start to the first result: with empty kernel caches\n"                \
    "(CLCNN_CACHE_DIR and POCL_CACHE_DIR in a new temporary directory), then with both caches\n"   \
    "warm, then with only clcnn's cache warm. The target is a cached start >= 10x faster.\n"       \
    "  --repeat N         rounds (default 3); the medians are reported\n"                          \
    "  --algo NAME        the solver (default auto)\n"                                             \
    "  --shapes, --device, --json as for clcnn bench conv"

#define BENCH_POOL_USAGE                                                                           \
    "pool [--shapes N,C,H,W[;N,C,H,W...]] [--repeat N] [--warmup N] [--device SEL]"

#define BENCH_POOL_HELP                                                                            \
    "clcnn bench pool: max pooling 2x2 stride 2 (default shape 8,64,224,224): clcnn forward\n"     \
    "(without and with argmax indices) and backward (from indices, and recomputing the argmax\n"   \
    "from x), checked on the host, then oneDNN's pooling in nchw and in nChw16c, the blocked\n"    \
    "layout its convolutions produce, when built with -Donednn=enabled. Reports median and min\n"  \
    "ms, GB/s (bytes read + written over the median time) and clcnn's speed relative to the\n"     \
    "faster oneDNN layout.\n"                                                                      \
    "  --repeat N         timed runs (default 10)\n"                                               \
    "  --warmup N         untimed runs before them (default 1)"

#define BENCH_TRAIN_USAGE                                                                          \
    "train [--model FILE] [--batch N] [--batches N] [--no-peer] [--device SEL]"

#define BENCH_TRAIN_HELP                                                                           \
    "clcnn bench train: training steps and inference of a model (default "                         \
    "tools/models/lenet.model)\n"                                                                  \
    "at batch 64 on random data, in images/s, then PyTorch (Debian's python3-torch with "          \
    "OpenBLAS)\n"                                                                                  \
    "training and running the same network in the same run (tools/bench/lenet_torch.py).\n"        \
    "  --batches N        timed batches after 3 warm-up ones (default 20)\n"                       \
    "  --no-peer          skip PyTorch"

#define BENCH_PIPELINE_USAGE                                                                       \
    "pipeline [--model FILE] [--pass train|infer] [--inflight 1,2,3] [--batch N] [--batches N]\n"  \
    "                   [--loaders N] [--rounds N] [--trace FILE] [--device SEL]"

#define BENCH_PIPELINE_HELP                                                                        \
    "clcnn bench pipeline: training steps (or inference) of a model (default\n"                    \
    "tools/models/lenet.model) on random batches through the scheduler, once per --inflight\n"     \
    "setting (default 1,2,3; 1 is serial), each on a fresh net after 2 warm-up batches, all\n"     \
    "after one untimed run.\n"                                                                     \
    "Reports images/s, the speed relative to the first setting, the transfer time (uploads\n"      \
    "and downloads, from OpenCL profiling), the part of it during which the compute queue ran,\n"  \
    "that overlap as a fraction of the transfer time, and the time per batch the compute queue\n"  \
    "stood idle between batches (what more batches in flight can hide). With --rounds N the\n"     \
    "settings run N times, interleaved, each round starting one setting further on (so that\n"     \
    "none always runs first), and a last table gives each setting's median images/s,\n"            \
    "the median over rounds of its speed relative to the first setting of the same round,\n"       \
    "its median idle time, and the geometric mean of those per-round ratios with a 95 percent\n"   \
    "interval (Student's t on their logarithms).\n"                                                \
    "  --batch N --batches N   batch size (default 64) and timed batches (default 20)\n"           \
    "  --loaders N             loader threads (default 1)\n"                                       \
    "  --rounds N              rounds of all settings (default 5, at most 100)\n"                  \
    "  --trace FILE            a Chrome trace of every setting's timed run"

#define BENCH_USAGE                                                                                \
    BENCH_CONV_USAGE                                                                               \
    "\n       clcnn bench " BENCH_STARTUP_USAGE "\n       clcnn bench " BENCH_POOL_USAGE           \
    "\n       clcnn bench " BENCH_TRAIN_USAGE "\n       clcnn bench " BENCH_PIPELINE_USAGE

#define BENCH_SUMMARY                                                                              \
    "Times convolution solvers against each other and oneDNN, or the cost of a first run.\n"       \
    "\n" BENCH_CONV_HELP "\n\n" BENCH_STARTUP_HELP "\n\n" BENCH_POOL_HELP "\n\n" BENCH_TRAIN_HELP  \
    "\n\n" BENCH_PIPELINE_HELP

/* What the machine and this process had used at one moment; busy_ms < 0 when unknown. */
typedef struct bench_cpu_probe {
    double wall_ms, self_ms, busy_ms;
} bench_cpu_probe;

bench_cpu_probe bench_cpu_probe_now(void);

/* CPU cores that other processes kept busy, on average, since [in] start; NaN when unknown.
 * Any of it skews the timings: this machine may be shared. */
double bench_other_cores(const bench_cpu_probe *start);

/* Above this many cores used by others while a shape (or a round) ran, it gets a warning. */
#define BENCH_OTHERS_WARN_CORES 0.05

/* Other work on the machine skews every number: says how busy it was when the run started. */
void bench_print_load(FILE *f);

/* Runs 'clcnn bench' (argv[0] is "bench"), --help included. Returns the exit status: 0, 1 (a
 * library failure) or 2 (a usage error). */
int cli_cmd_bench(int argc, char **argv);

/* Runs 'clcnn bench pool' (argv[0] is "bench", argv[1] "pool"), --help included; defined in
 * tools/bench_pool.c. Returns the exit status as cli_cmd_bench() does. */
int cli_bench_pool(int argc, char **argv);

/* Runs 'clcnn bench train'; defined in tools/bench_train.c. */
int cli_bench_train(int argc, char **argv);

/* Runs 'clcnn bench pipeline'; defined in tools/bench_pipeline.c. */
int cli_bench_pipeline(int argc, char **argv);

#endif
