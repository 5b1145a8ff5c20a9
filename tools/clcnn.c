/* The clcnn command-line tool: one sub-command per job. Usage errors exit 2, failures exit 1
 * with the library's message on stderr. */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

#define EXIT_USAGE CLI_EXIT_USAGE

typedef struct command {
    const char *name;
    const char *summary;
    const char *usage;
    int (*run)(int argc, char **argv);
    bool own_help; /* the command prints its own --help (it has sub-commands) */
} command;

static const command *find_command(const char *name);

int cli_usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "clcnn%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'clcnn %s%s--help')\n", cmd ? cmd : "", cmd ? " " : "");
    return EXIT_USAGE;
}

int cli_fail(const char *cmd, clcnn_status st)
{
    fprintf(stderr, "clcnn %s: %s: %s\n", cmd, clcnn_status_name(st), clcnn_last_error());
    return 1;
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static void print_command_help(const command *c)
{
    printf("usage: clcnn %s %s\n\n%s\n", c->name, c->usage, c->summary);
}

/* Takes the value of an option given as "--opt VALUE" or "--opt=VALUE". Returns 1 when arg is
 * this option (value set, *i advanced), 0 when it is not, -1 on a missing value. */
/* ---- devices --------------------------------------------------------------------------- */

static void format_bytes(unsigned long long b, char *buf, size_t size)
{
    if (b >= (1ull << 30))
        snprintf(buf, size, "%.1f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, size, "%.1f MiB", (double)b / (double)(1ull << 20));
    else
        snprintf(buf, size, "%llu KiB", b >> 10);
}

static void print_quirks(FILE *f, uint32_t quirks, bool json)
{
    bool first = true;
    for (int bit = 0; bit < 32; bit++) {
        const char *desc;
        const char *name = clcnn_quirk_name(1u << bit, &desc);
        if (name == NULL || !(quirks & (1u << bit)))
            continue;
        if (json) {
            fputs(first ? "" : ", ", f);
            cli_json_string(f, name);
        } else {
            fprintf(f, "      quirk %s: %s\n", name, desc);
        }
        first = false;
    }
    if (!json && first)
        fprintf(f, "      quirks: none\n");
}

static void print_json(const clcnn_device_info *list, size_t n, long selected)
{
    printf("{\n  \"selected\": %ld,\n  \"devices\": [\n", selected);
    for (size_t i = 0; i < n; i++) {
        const clcnn_device_info *d = &list[i];
        printf("    {\"index\": %u, \"platform_index\": %u, \"platform\": ", d->index,
               d->platform_index);
        cli_json_string(stdout, d->platform_name);
        printf(", \"platform_version\": ");
        cli_json_string(stdout, d->platform_version);
        printf(", \"name\": ");
        cli_json_string(stdout, d->name);
        printf(", \"vendor\": \"%s\", \"vendor_name\": ", clcnn_vendor_name(d->vendor));
        cli_json_string(stdout, d->vendor_name);
        printf(", \"vendor_id\": %u, \"type\": \"%s\", \"arch\": ", d->vendor_id,
               clcnn_device_type_name(d->type));
        cli_json_string(stdout, d->arch);
        printf(", \"device_version\": ");
        cli_json_string(stdout, d->device_version);
        printf(", \"driver_version\": ");
        cli_json_string(stdout, d->driver_version);
        printf(", \"opencl_c_version\": \"%u.%u\", \"compute_units\": %u, "
               "\"max_clock_mhz\": %u, \"global_mem_bytes\": %llu, \"max_alloc_bytes\": %llu, "
               "\"local_mem_bytes\": %llu, \"max_work_group_size\": %zu, "
               "\"max_work_item_sizes\": [%zu, %zu, %zu], \"pref_vector_width_float\": %u, "
               "\"native_vector_width_float\": %u, \"pref_vector_width_half\": %u, "
               "\"fp16\": %s, \"fp64\": %s, \"unified_memory\": %s, \"compiler_available\": %s, "
               "\"available\": %s, \"quirks\": [",
               d->opencl_c_major, d->opencl_c_minor, d->compute_units, d->max_clock_mhz,
               (unsigned long long)d->global_mem_bytes, (unsigned long long)d->max_alloc_bytes,
               (unsigned long long)d->local_mem_bytes, d->max_work_group_size,
               d->max_work_item_sizes[0], d->max_work_item_sizes[1], d->max_work_item_sizes[2],
               d->pref_vector_width_float, d->native_vector_width_float, d->pref_vector_width_half,
               d->fp16 ? "true" : "false", d->fp64 ? "true" : "false",
               d->unified_memory ? "true" : "false", d->compiler_available ? "true" : "false",
               d->available ? "true" : "false");
        print_quirks(stdout, d->quirks, true);
        printf("]}%s\n", i + 1 < n ? "," : "");
    }
    printf("  ]\n}\n");
}

static void print_table(const clcnn_device_info *list, size_t n, long selected)
{
    printf("  %-3s %-11s %-7s %-40s %-14s %-5s %4s %10s %9s %6s %4s %4s\n", "#", "type", "vendor",
           "device", "driver", "CL C", "CUs", "global", "local", "maxWG", "fp16", "fp64");
    for (size_t i = 0; i < n; i++) {
        const clcnn_device_info *d = &list[i];
        char global[32], local[32];
        format_bytes(d->global_mem_bytes, global, sizeof global);
        format_bytes(d->local_mem_bytes, local, sizeof local);
        printf("%c %-3u %-11s %-7s %-40.40s %-14.14s %u.%-3u %4u %10s %9s %6zu %4s %4s\n",
               (long)i == selected ? '*' : ' ', d->index, clcnn_device_type_name(d->type),
               clcnn_vendor_name(d->vendor), d->name, d->driver_version, d->opencl_c_major,
               d->opencl_c_minor, d->compute_units, global, local, d->max_work_group_size,
               d->fp16 ? "yes" : "no", d->fp64 ? "yes" : "no");
    }
    printf("\n");
    for (size_t i = 0; i < n; i++) {
        const clcnn_device_info *d = &list[i];
        char alloc[32];
        format_bytes(d->max_alloc_bytes, alloc, sizeof alloc);
        printf("[%u] %s\n", d->index, d->name);
        printf("      platform %s (%s)\n", d->platform_name, d->platform_version);
        printf("      vendor %s (reports '%s', id 0x%04x), arch %s\n", clcnn_vendor_name(d->vendor),
               d->vendor_name, d->vendor_id, d->arch);
        printf("      %s, driver %s, %s\n", d->device_version, d->driver_version,
               d->opencl_c_version);
        printf("      %u compute units at %u MHz, max allocation %s, work-items %zux%zux%zu\n",
               d->compute_units, d->max_clock_mhz, alloc, d->max_work_item_sizes[0],
               d->max_work_item_sizes[1], d->max_work_item_sizes[2]);
        printf("      float vectors: preferred %u, native %u; unified memory %s; compiler %s\n",
               d->pref_vector_width_float, d->native_vector_width_float,
               d->unified_memory ? "yes" : "no", d->compiler_available ? "yes" : "no");
        print_quirks(stdout, d->quirks, false);
    }
}

/* Builds every embedded program on the selected device and reports what the cache did. */
static int verbose_build(const char *selector)
{
    clcnn_device *dev;
    clcnn_status st = clcnn_device_create(selector, &dev);
    if (st != CLCNN_OK)
        return cli_fail("devices", st);
    st = clcnn_program_build_all(dev);
    clcnn_program_stats s;
    if (st == CLCNN_OK)
        st = clcnn_program_stats_get(dev, &s);
    if (st == CLCNN_OK) {
        const char *cache = clcnn_program_cache_dir(dev);
        printf("\nkernel programs on [%u]: %zu embedded sources\n",
               clcnn_device_get_info(dev)->index, clcnn_program_source_count());
        printf("  binary cache %s\n", cache != NULL ? cache : "off");
        printf("  %llu from the cache (%.1f ms), %llu offline binaries, %llu compiled (%.1f ms), "
               "%llu cache entries rejected and rebuilt, %llu written\n",
               (unsigned long long)s.cache_hits, s.cache_load_ms,
               (unsigned long long)s.offline_loads, (unsigned long long)s.source_builds,
               s.source_build_ms, (unsigned long long)s.cache_rejected,
               (unsigned long long)s.cache_writes);
    }
    clcnn_device_release(dev);
    return st == CLCNN_OK ? 0 : cli_fail("devices", st);
}

static int cmd_devices(int argc, char **argv)
{
    bool json = false, verbose = false;
    const char *selector = NULL;
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
            verbose = true;
        } else if ((r = cli_option_value(argc, argv, &i, "--device", &selector)) != 0) {
            if (r < 0)
                return cli_usage_error("devices", "option '%s' needs a value", "--device");
        } else {
            return cli_usage_error("devices", "unknown argument '%s'", argv[i]);
        }
    }
    clcnn_device_info *list;
    size_t n;
    clcnn_status st = clcnn_device_list(&list, &n);
    if (st != CLCNN_OK)
        return cli_fail("devices", st);
    clcnn_device_info chosen;
    long selected = -1;
    char select_error[1024] = "";
    if (clcnn_device_select(selector, &chosen) == CLCNN_OK)
        selected = (long)chosen.index;
    else
        snprintf(select_error, sizeof select_error, "%s", clcnn_last_error());
    if (json)
        print_json(list, n, selected);
    else
        print_table(list, n, selected);
    clcnn_free(list);
    if (selected < 0) {
        fprintf(stderr, "clcnn devices: %s\n", select_error);
        return 1;
    }
    if (!json) {
        const char *how = selector ? selector : getenv("CLCNN_DEVICE");
        printf("\nselector '%s' picks [%ld] %s\n", how && *how ? how : "default", selected,
               chosen.name);
    }
    if (verbose && !json)
        return verbose_build(selector);
    return 0;
}

/* ---- export-binaries ------------------------------------------------------------------- */

static int cmd_export_binaries(int argc, char **argv)
{
    const char *dir = NULL, *selector = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_option_value(argc, argv, &i, "--device", &selector);
        if (r < 0)
            return cli_usage_error("export-binaries", "option '%s' needs a value", "--device");
        if (r > 0)
            continue;
        if (argv[i][0] == '-')
            return cli_usage_error("export-binaries", "unknown option '%s'", argv[i]);
        if (dir != NULL)
            return cli_usage_error("export-binaries", "unexpected argument '%s'", argv[i]);
        dir = argv[i];
    }
    if (dir == NULL)
        return cli_usage_error("export-binaries", "missing the output directory%s", "");
    clcnn_device *dev;
    clcnn_status st = clcnn_device_create(selector, &dev);
    if (st != CLCNN_OK)
        return cli_fail("export-binaries", st);
    size_t written = 0;
    st = clcnn_program_export_binaries(dev, dir, &written);
    if (st == CLCNN_OK)
        printf("wrote %zu program binaries for '%s' to %s\n", written,
               clcnn_device_get_info(dev)->name, dir);
    clcnn_device_release(dev);
    return st == CLCNN_OK ? 0 : cli_fail("export-binaries", st);
}

/* ---- dispatch -------------------------------------------------------------------------- */

static const command commands[] = {
    {"devices",
     "Lists every OpenCL platform and device with its capabilities and quirks, and marks (*) the\n"
     "device that --device (else CLCNN_DEVICE, else the default GPU > accelerator > CPU) picks.\n"
     "\n"
     "  --json           machine-readable output\n"
     "  --verbose        also build every kernel on the picked device and show the binary\n"
     "                   cache's hits and build times\n"
     "  --device SEL     selector: cpu|gpu|accelerator, nvidia|amd|intel|pocl|..., an index,\n"
     "                   a name substring, joined by ':' (gpu:nvidia:1)",
     "[--json] [--verbose] [--device SELECTOR]", cmd_devices, false},
    {"export-binaries",
     "Builds every embedded kernel program for the device and writes the binaries to DIR, to be\n"
     "loaded later with CLCNN_BINARY_DIR=DIR (the flow of devices without a compiler).\n"
     "\n"
     "  --device SEL     the device to build for (see clcnn devices --help)",
     "DIR [--device SELECTOR]", cmd_export_binaries, false},
    {"train",
     "Trains a model file's network on Fashion-MNIST (an MNIST-format directory with --data),\n"
     "printing each epoch's training loss and test accuracy.\n"
     "\n"
     "  --model FILE          the model (e.g. tools/models/lenet.model)\n"
     "  --data DIR            default " CLCNN_FASHION_MNIST_DIR "\n"
     "  --epochs N --batch N  default 3 and 64\n"
     "  --optimizer NAME      sgd, momentum (default), nesterov or adam\n"
     "  --lr X --momentum X --weight-decay X   default 0.01, 0.9, 0\n"
     "  --seed N              initialization, shuffling, dropout and augmentation (default 1)\n"
     "  --crop P --flip       seeded augmentation: pad-and-crop by P pixels, mirror\n"
     "  --freeze A,B          layers whose parameters are not trained\n"
     "  --init kmeans|FILE    the first convolution's filters from k-means over image patches,\n"
     "                        or every parameter from pre-trained weights\n"
     "  --greedy              train the layers with parameters one at a time, bottom up,\n"
     "                        --epochs each, the others frozen\n"
     "  --limit N             train on the first N images of each epoch's order\n"
     "  --log FILE            per-epoch metrics as CSV\n"
     "  --out FILE            the weights, written after every epoch\n"
     "  --checkpoint FILE     a checkpoint (weights, optimizer state, step) after every epoch,\n"
     "                        every --checkpoint-every N steps, and on Ctrl-C\n"
     "  --resume FILE         continue from a checkpoint, bit for bit (same --seed, --batch,\n"
     "                        --limit and --data)\n"
     "  --inflight N          batches on the device at once: the next uploads while one\n"
     "                        computes (default 2; 1 is serial; results are the same bits)\n"
     "  --loaders N           threads that read and augment batches ahead (default 1)\n"
     "  --trace FILE          a Chrome trace (chrome://tracing, Perfetto) of the loaders, the\n"
     "                        transfer queue and the compute queue, per batch and layer\n"
     "  --device SEL          the device (see clcnn devices --help)",
     "--model FILE [OPTIONS]", cli_cmd_train, false},
    {"eval",
     "Evaluates trained weights on the test split: accuracy and the confusion matrix.\n"
     "\n"
     "  --model FILE --weights FILE   the model and what clcnn train --out wrote\n"
     "  --data DIR                    default " CLCNN_FASHION_MNIST_DIR "\n"
     "  --device SEL                  the device",
     "--model FILE --weights FILE [--data DIR] [--device SEL]", cli_cmd_eval, false},
    {"infer",
     "Classifies images with trained weights and prints the top classes and probabilities.\n"
     "Images are .npy arrays of pixel values 0-255 (C x H x W) or binary PGM files, normalized\n"
     "as in training.\n"
     "\n"
     "  --model FILE --weights FILE   the model and what clcnn train --out wrote\n"
     "  --top K                       classes to print (default 3)\n"
     "  --data DIR                    where the class names come from (default Fashion-MNIST)\n"
     "  --batch N                     images per batch (default 8)\n"
     "  --inflight N                  batches on the device at once (default 2)\n"
     "  --trace FILE                  a Chrome trace of loading, transfers and compute\n"
     "  --device SEL                  the device",
     "--model FILE --weights FILE [--top K] IMAGE...", cli_cmd_infer, false},
    {"summary",
     "Reads a model file and prints each layer's output shape, parameters, forward FLOPs,\n"
     "receptive field and jump, and for convolutions the parameters a dense layer with the same\n"
     "input and output would need; totals and activation memory at --batch.\n"
     "\n"
     "  --batch N        batch size for the activation memory (default 1)\n"
     "  --json           machine-readable output",
     "MODEL [--batch N] [--json]", cli_cmd_summary, false},
    {"op",
     "Runs one operation on .npy files (conv2d, pool, pool-bwd, act, act-bwd; 'clcnn op --help'\n"
     "lists them and their options), so a layer can be checked against NumPy or PyTorch.",
     "OPERATION [OPTIONS]", cli_cmd_op, true},
    {"bench", BENCH_SUMMARY, BENCH_USAGE, cli_cmd_bench, true},
};

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_help(void)
{
    printf("usage: clcnn [--version] [--help] COMMAND [OPTIONS]\n\n"
           "Convolutional neural networks on any OpenCL device.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const char *first_line_end = strchr(commands[i].summary, '\n');
        int len = first_line_end ? (int)(first_line_end - commands[i].summary)
                                 : (int)strlen(commands[i].summary);
        printf("  %-16s %.*s\n", commands[i].name, len, commands[i].summary);
    }
    printf("\n'clcnn COMMAND --help' describes a command's options.\n"
           "Environment: CLCNN_DEVICE (selector), CLCNN_CACHE_DIR (binary cache; 'off' disables),\n"
           "CLCNN_BINARY_DIR (offline binaries), CLCNN_LOG (error|warn|info|debug|trace).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help();
        return EXIT_USAGE;
    }
    if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        if (argc > 2 && find_command(argv[2]) != NULL) {
            print_command_help(find_command(argv[2]));
            return 0;
        }
        print_help();
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("clcnn %s\n", clcnn_version());
        return 0;
    }
    const command *c = find_command(argv[1]);
    if (c == NULL) {
        if (argv[1][0] == '-')
            return cli_usage_error(NULL, "unknown option '%s'", argv[1]);
        return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
    }
    for (int i = 2; i < argc && !c->own_help; i++) {
        if (is_help(argv[i])) {
            print_command_help(c);
            return 0;
        }
    }
    return c->run(argc - 1, argv + 1);
}
