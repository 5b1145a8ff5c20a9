/* The tuning search strategies on synthetic, deterministic cost functions: each finds the
 * optimum, never proposes a point the constraint refuses nor measures one twice, never chooses
 * a rejected (wrongly computing) candidate, respects its bounds, and is reproducible by seed;
 * random and annealing get within 10% of the optimum with a quarter of the evaluations. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "tune_search_impl.h"

/* The documented space, shaped like the direct convolution's: VW x OYB x KB x PADDED, 4 x 6 x 4
 * x 2 = 192 points; the constraint keeps VW * OYB * KB <= 256 accumulators (register room)
 * and VW = 16 only when padded. 158 points are valid. */
enum { VW, OYB, KB, PAD };

static bool conv_like_valid(const int *v, const void *user)
{
    (void)user;
    return v[VW] * v[OYB] * v[KB] <= 256 && (v[VW] < 16 || v[PAD] == 1);
}

static clcnn__tune_space conv_like_space(void)
{
    clcnn__tune_space s = {
        .nparams = 4,
        .params = {{"VW", {2, 4, 8, 16}, 4},
                   {"OYB", {1, 2, 3, 4, 6, 8}, 6},
                   {"KB", {1, 2, 4, 8}, 4},
                   {"PAD", {0, 1}, 2}},
        .defaults = {8, 2, 8, 0},
        .valid = conv_like_valid,
    };
    return s;
}

/* A roofline-like model: wider vectors up to 8 lanes, blocks that amortize loads, a spill
 * penalty past 128 accumulators, padding 15% faster, and a fixed +-4% ripple per point (a hash)
 * so that the surface has local minima. */
static double conv_like_cost(const int *v)
{
    double lanes = v[VW] >= 8 ? 1.0 : v[VW] / 8.0;
    double block = (double)v[OYB] * v[KB];
    double reuse = block / (block + v[OYB] + v[KB]);
    double regs = (double)v[VW] * v[OYB] * v[KB];
    double spill = regs > 128 ? 128.0 / regs : 1.0;
    double cost = 100.0 / (lanes * reuse * spill) * (v[PAD] ? 0.85 : 1.0);
    uint64_t h = 0xcbf29ce484222325ull;
    for (int d = 0; d < 4; d++)
        h = (h ^ (uint64_t)(v[d] + 31 * d)) * 0x100000001b3ull;
    return cost * (0.96 + 0.08 * (double)(h % 1000) / 999.0);
}

typedef struct tracker {
    const clcnn__tune_space *space;
    double (*fn)(const int *v);
    int reject[CLCNN__TUNE_MAX_PARAMS]; /* a planted wrong variant, when reject_on */
    bool reject_on;
    int stop_after; /* > 0: say STOP at this call */
    int calls;
    int broken;     /* points proposed that break the constraint */
    int duplicates; /* points proposed twice */
    int seen[512][CLCNN__TUNE_MAX_PARAMS];
    int nseen;
} tracker;

static clcnn__tune_verdict tracked_cost(const int *values, void *user, double *cost)
{
    tracker *t = user;
    t->calls++;
    if (t->stop_after > 0 && t->calls == t->stop_after)
        return CLCNN__TUNE_STOP;
    size_t n = t->space->nparams;
    if (t->space->valid != NULL && !t->space->valid(values, t->space->user))
        t->broken++;
    for (int i = 0; i < t->nseen; i++)
        if (memcmp(t->seen[i], values, n * sizeof(int)) == 0)
            t->duplicates++;
    if (t->nseen < 512)
        memcpy(t->seen[t->nseen++], values, n * sizeof(int));
    if (t->reject_on && memcmp(t->reject, values, n * sizeof(int)) == 0)
        return CLCNN__TUNE_REJECTED;
    *cost = t->fn(values);
    return CLCNN__TUNE_MEASURED;
}

/* The optimum by brute force, skipping [in] skip when not NULL; also counts the valid points. */
static double brute_force(const clcnn__tune_space *s, const int *skip, int *best, size_t *nvalid)
{
    double best_cost = INFINITY;
    *nvalid = 0;
    int v[4];
    for (size_t a = 0; a < s->params[0].count; a++)
        for (size_t b = 0; b < s->params[1].count; b++)
            for (size_t c = 0; c < s->params[2].count; c++)
                for (size_t d = 0; d < s->params[3].count; d++) {
                    v[0] = s->params[0].values[a];
                    v[1] = s->params[1].values[b];
                    v[2] = s->params[2].values[c];
                    v[3] = s->params[3].values[d];
                    if (!s->valid(v, s->user))
                        continue;
                    (*nvalid)++;
                    if (skip != NULL && memcmp(v, skip, sizeof v) == 0)
                        continue;
                    double cost = conv_like_cost(v);
                    if (cost < best_cost) {
                        best_cost = cost;
                        memcpy(best, v, sizeof v);
                    }
                }
    return best_cost;
}

static clcnn__tune_result search(const clcnn__tune_space *s, clcnn__tune_strategy strategy,
                                 uint64_t seed, size_t max_evals, tracker *t)
{
    clcnn__tune_options o = {
        .strategy = strategy, .seed = seed, .max_evals = max_evals, .start_default = true};
    clcnn__tune_result r;
    assert_ok(clcnn__tune_search(s, &o, tracked_cost, t, &r));
    return r;
}

static void test_every_strategy_finds_the_optimum_within_the_constraint(void **state)
{
    (void)state;
    clcnn__tune_space s = conv_like_space();
    int opt[4];
    size_t nvalid;
    double opt_cost = brute_force(&s, NULL, opt, &nvalid);
    assert_int_equal(nvalid, 158);
    for (int st = 0; st < CLCNN__TUNE_STRATEGY_COUNT; st++) {
        tracker t = {.space = &s, .fn = conv_like_cost};
        clcnn__tune_result r = search(&s, (clcnn__tune_strategy)st, 7, 0, &t);
        print_message("%-10s evals %zu best %.3f (optimum %.3f)\n",
                      clcnn__tune_strategy_name((clcnn__tune_strategy)st), r.evals, r.best_cost,
                      opt_cost);
        assert_true(r.found);
        assert_int_equal(r.valid_points, 158);
        assert_memory_equal(r.best, opt, sizeof opt);
        assert_true(r.best_cost == opt_cost);
        assert_int_equal(t.broken, 0);
        assert_int_equal(t.duplicates, 0);
        assert_int_equal(r.evals, (size_t)t.calls);
        assert_true(r.evals <= 158);
        assert_int_equal(r.rejected, 0);
    }
}

/* Sum of squared distances in index space to a target: one basin, so a local method must walk
 * to it. The constraint cuts off a corner that holds no optimum. */
static bool bowl_valid(const int *v, const void *user)
{
    (void)user;
    return v[0] + v[1] + v[2] <= 30;
}

static double bowl_cost(const int *v)
{
    const int target[3] = {11, 3, 7};
    double c = 1;
    for (int d = 0; d < 3; d++)
        c += (double)(v[d] - target[d]) * (v[d] - target[d]);
    return c;
}

static void test_local_strategies_walk_to_a_basin(void **state)
{
    (void)state;
    clcnn__tune_space s = {.nparams = 3, .defaults = {0, 0, 0}, .valid = bowl_valid};
    static const char *const names[3] = {"A", "B", "C"};
    for (int d = 0; d < 3; d++) {
        s.params[d].name = names[d];
        s.params[d].count = 16;
        for (int j = 0; j < 16; j++)
            s.params[d].values[j] = j;
    }
    /* 3281 valid points; a quarter of them is plenty for a walk from (0,0,0). */
    for (int st = CLCNN__TUNE_ANNEALING; st <= CLCNN__TUNE_PSO; st++) {
        tracker t = {.space = &s, .fn = bowl_cost};
        clcnn__tune_result r = search(&s, (clcnn__tune_strategy)st, 3, 800, &t);
        print_message("%s: %zu of %zu points, best %.0f at (%d,%d,%d)\n",
                      clcnn__tune_strategy_name((clcnn__tune_strategy)st), r.evals, r.valid_points,
                      r.best_cost, r.best[0], r.best[1], r.best[2]);
        assert_int_equal(r.evals, 800);
        assert_true(r.best_cost == 1.0);
        assert_int_equal(t.broken, 0);
    }
}

/* A quarter of the evaluations exhaustive search needs (39 of 158), over 20 seeds. Annealing,
 * which walks from the defaults, must get within 10% of the optimum every time. Random sampling
 * is a lottery over the few points within 10%: it must win for at least half of the seeds
 * (12 of 20 when this was written; a single seed would say nothing). */
static void test_quarter_budget_within_ten_percent(void **state)
{
    (void)state;
    clcnn__tune_space s = conv_like_space();
    int opt[4];
    size_t nvalid;
    double opt_cost = brute_force(&s, NULL, opt, &nvalid);
    size_t quarter = nvalid / 4;
    const clcnn__tune_strategy strategies[] = {CLCNN__TUNE_RANDOM, CLCNN__TUNE_ANNEALING};
    const int need[] = {10, 20};
    for (size_t i = 0; i < 2; i++) {
        int within = 0;
        for (uint64_t seed = 1; seed <= 20; seed++) {
            tracker t = {.space = &s, .fn = conv_like_cost};
            clcnn__tune_result r = search(&s, strategies[i], seed, quarter, &t);
            assert_int_equal(r.evals, quarter);
            assert_int_equal(t.broken, 0);
            within += r.best_cost <= 1.10 * opt_cost;
        }
        print_message("%s: within 10%% of the optimum for %d of 20 seeds with %zu of %zu "
                      "evaluations\n",
                      clcnn__tune_strategy_name(strategies[i]), within, quarter, nvalid);
        assert_true(within >= need[i]);
    }
}

static void test_rejected_candidate_is_never_chosen(void **state)
{
    (void)state;
    clcnn__tune_space s = conv_like_space();
    int opt[4], second[4];
    size_t nvalid;
    brute_force(&s, NULL, opt, &nvalid);
    double second_cost = brute_force(&s, opt, second, &nvalid);
    for (int st = 0; st < CLCNN__TUNE_STRATEGY_COUNT; st++) {
        /* The fastest point computes wrong results: verification rejects it. */
        tracker t = {.space = &s, .fn = conv_like_cost, .reject_on = true};
        memcpy(t.reject, opt, sizeof opt);
        clcnn__tune_result r = search(&s, (clcnn__tune_strategy)st, 11, 0, &t);
        assert_int_equal(r.rejected, 1);
        assert_memory_not_equal(r.best, opt, sizeof opt);
        assert_memory_equal(r.best, second, sizeof second);
        assert_true(r.best_cost == second_cost);
    }
}

static void test_same_seed_same_points(void **state)
{
    (void)state;
    clcnn__tune_space s = conv_like_space();
    for (int st = CLCNN__TUNE_RANDOM; st < CLCNN__TUNE_STRATEGY_COUNT; st++) {
        tracker *a = calloc(3, sizeof *a);
        assert_non_null(a);
        for (int i = 0; i < 3; i++) {
            a[i] = (tracker){.space = &s, .fn = conv_like_cost};
            search(&s, (clcnn__tune_strategy)st, i < 2 ? 42 : 43, 40, &a[i]);
            assert_int_equal(a[i].nseen, 40);
        }
        assert_memory_equal(a[0].seen, a[1].seen, sizeof a[0].seen);
        assert_memory_not_equal(a[0].seen, a[2].seen, sizeof a[0].seen);
        free(a);
    }
}

static clcnn__tune_verdict slow_cost(const int *values, void *user, double *cost)
{
    (void)values;
    int *calls = user;
    (*calls)++;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    *cost = 1;
    return CLCNN__TUNE_MEASURED;
}

static void test_bounds_and_stop(void **state)
{
    (void)state;
    clcnn__tune_space s = conv_like_space();
    for (int st = 0; st < CLCNN__TUNE_STRATEGY_COUNT; st++) {
        tracker t = {.space = &s, .fn = conv_like_cost};
        clcnn__tune_result r = search(&s, (clcnn__tune_strategy)st, 1, 17, &t);
        assert_int_equal(r.evals, 17);
        assert_int_equal(t.calls, 17);
        assert_false(r.exhausted);

        /* A STOP at the 5th call: four evaluations counted, the search says it was stopped. */
        tracker stop = {.space = &s, .fn = conv_like_cost, .stop_after = 5};
        r = search(&s, (clcnn__tune_strategy)st, 1, 0, &stop);
        assert_true(r.stopped);
        assert_int_equal(r.evals, 4);
        assert_int_equal(stop.calls, 5);

        /* 5 ms per evaluation, 50 ms of budget: no evaluation starts after the budget. */
        int calls = 0;
        clcnn__tune_options o = {.strategy = (clcnn__tune_strategy)st, .seed = 1, .budget_s = 0.05};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_ok(clcnn__tune_search(&s, &o, slow_cost, &calls, &r));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
        assert_true(calls >= 1 && calls <= 11);
        assert_true(elapsed < 0.05 + 0.05);
        assert_false(r.exhausted);
    }
}

static void test_bad_spaces_and_names(void **state)
{
    (void)state;
    clcnn__tune_space s = conv_like_space();
    clcnn__tune_result r;
    clcnn__tune_options o = {.strategy = CLCNN__TUNE_RANDOM};
    s.defaults[OYB] = 5;
    assert_status_msg(clcnn__tune_search(&s, &o, tracked_cost, NULL, &r), CLCNN_STATUS_INVALID_ARG,
                      "OYB=5");
    s = conv_like_space();
    s.params[KB].count = 0;
    assert_status_msg(clcnn__tune_search(&s, &o, tracked_cost, NULL, &r), CLCNN_STATUS_INVALID_ARG,
                      "KB has 0");
    s = conv_like_space();
    s.nparams = 0;
    assert_status_msg(clcnn__tune_space_check(&s), CLCNN_STATUS_INVALID_ARG, "1 to 8");
    /* A constraint nothing satisfies: nothing is evaluated, nothing found. */
    s = conv_like_space();
    s.valid = bowl_valid;
    s.params[VW].values[0] = 100;
    s.params[VW].count = 1;
    s.defaults[VW] = 100;
    assert_ok(clcnn__tune_search(&s, &o, tracked_cost, NULL, &r));
    assert_false(r.found);
    assert_int_equal(r.valid_points, 0);
    assert_int_equal(r.evals, 0);

    clcnn__tune_strategy st;
    assert_ok(clcnn__tune_strategy_parse("pso", &st));
    assert_int_equal(st, CLCNN__TUNE_PSO);
    assert_ok(clcnn__tune_strategy_parse("annealing", &st));
    assert_int_equal(st, CLCNN__TUNE_ANNEALING);
    assert_status_msg(clcnn__tune_strategy_parse("genetic", &st), CLCNN_STATUS_INVALID_ARG,
                      "'genetic'");
    assert_int_equal(clcnn__tune_param_index(&s, "KB"), KB);
    assert_int_equal(clcnn__tune_param_index(&s, "TILE"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_strategy_finds_the_optimum_within_the_constraint),
        cmocka_unit_test(test_local_strategies_walk_to_a_basin),
        cmocka_unit_test(test_quarter_budget_within_ten_percent),
        cmocka_unit_test(test_rejected_candidate_is_never_chosen),
        cmocka_unit_test(test_same_seed_same_points),
        cmocka_unit_test(test_bounds_and_stop),
        cmocka_unit_test(test_bad_spaces_and_names),
    };
    return cmocka_run_group_tests_name("tune_search", tests, NULL, NULL);
}
