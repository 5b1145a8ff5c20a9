/* libFuzzer target for the tuning database reader: arbitrary bytes must never crash, leak or
 * read out of bounds; a document the reader accepts, serialized as the writer serializes it
 * (cJSON_Print), is accepted again, and serializing that gives the same text: the writer's
 * output reads back to the same document. Lookups of every entry's (kernel, problem) give what
 * the first entry for it says. (Not cJSON_Compare: it looks members up by name, so
 * a document with a repeated key, which cJSON keeps in order, does not compare equal to
 * itself.) */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tune_db_impl.h"

/* A device that has the parsed document as its tuning database, for lookups. */
static clcnn_device *device_with(cJSON *root)
{
    static clcnn_device dev;
    static bool ready;
    if (!ready) {
        pthread_mutex_init(&dev.program_lock, NULL);
        ready = true;
    }
    dev.tune_db = root;
    dev.tune_db_loaded = true;
    return &dev;
}

static bool str_is(const cJSON *obj, const char *field, const char *value)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, field);
    return cJSON_IsString(f) && strcmp(f->valuestring, value) == 0;
}

/* Every entry's (kernel, problem) looks up to what the first entry for it says: its solver when
 * that is a verified string that fits, else nothing. */
static void check_lookups(cJSON *root)
{
    clcnn_device *dev = device_with(root);
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(root, "entries");
    const cJSON *e;
    cJSON_ArrayForEach(e, entries)
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "kernel");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "problem");
        if (!cJSON_IsString(k) || !cJSON_IsString(p))
            continue;
        const cJSON *first = NULL, *c;
        cJSON_ArrayForEach(c, entries)
        {
            if (cJSON_IsObject(c) && str_is(c, "kernel", k->valuestring) &&
                str_is(c, "problem", p->valuestring) && str_is(c, "dtype", "f32")) {
                first = c;
                break;
            }
        }
        char solver[64];
        bool found = false;
        clcnn__tune_db_lookup(dev, k->valuestring, p->valuestring, solver, sizeof solver, &found);
        const cJSON *s = first != NULL ? cJSON_GetObjectItemCaseSensitive(first, "solver") : NULL;
        bool want = s != NULL && cJSON_IsString(s) &&
                    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(first, "verified")) &&
                    strlen(s->valuestring) < sizeof solver;
        if (found != want || (found && strcmp(solver, s->valuestring) != 0))
            abort();
    }
    dev->tune_db = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    cJSON *root = clcnn__tune_db_parse((const char *)data, size, &why);
    if (root == NULL) {
        if (why == NULL)
            abort();
        return 0;
    }
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    if (!cJSON_IsNumber(schema) || schema->valuedouble != 1 ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "entries")))
        abort();
    check_lookups(root);
    char *text = cJSON_Print(root);
    if (text == NULL)
        abort();
    cJSON *again = clcnn__tune_db_parse(text, strlen(text), &why);
    if (again == NULL)
        abort();
    char *text2 = cJSON_Print(again);
    if (text2 == NULL || strcmp(text, text2) != 0)
        abort();
    cJSON_free(text2);
    cJSON_free(text);
    cJSON_Delete(again);
    cJSON_Delete(root);
    return 0;
}
