/* libFuzzer target for the model-file parser: arbitrary text must never crash, leak or read out
 * of bounds, and a file that parses must format to text that parses to the same layers and
 * formats to the same text again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clcnn_model_desc a;
    if (clcnn_model_parse((const char *)data, size, "fuzz", &a) != CLCNN_OK)
        return 0;
    char *text = NULL, *again = NULL;
    clcnn_model_desc b;
    if (clcnn_model_format(&a, &text) != CLCNN_OK ||
        clcnn_model_parse(text, strlen(text), "formatted", &b) != CLCNN_OK || b.count != a.count)
        abort();
    for (size_t i = 0; i < a.count; i++)
        if (a.layers[i].kind != b.layers[i].kind ||
            strcmp(a.layers[i].name, b.layers[i].name) != 0 ||
            a.layers[i].outputs != b.layers[i].outputs)
            abort();
    if (clcnn_model_format(&b, &again) != CLCNN_OK || strcmp(text, again) != 0)
        abort();
    clcnn_free(again);
    clcnn_free(text);
    clcnn_model_desc_free(&b);
    clcnn_model_desc_free(&a);
    return 0;
}
