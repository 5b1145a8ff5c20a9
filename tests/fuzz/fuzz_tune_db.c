/* libFuzzer target for the tuning database reader: arbitrary bytes must never crash, leak or
 * read out of bounds; a document the reader accepts, serialized as the writer serializes it
 * (cJSON_Print), is accepted again, and serializing that gives the same text: the writer's
 * output reads back to the same document. (Not cJSON_Compare: it looks members up by name, so
 * a document with a repeated key, which cJSON keeps in order, does not compare equal to
 * itself.) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tune_db_impl.h"

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
