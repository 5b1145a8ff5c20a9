/* The per-device derived-buffer cache: a fixed array with LRU eviction; a tensor's newer
 * version makes its older entries unreachable, and they are released as soon as seen. */
#include <string.h>

#include "op_cache_impl.h"
#include "status_impl.h"

struct clcnn__op_cache_entry {
    clcnn__op_cache_key key;
    cl_mem buffer;
    uint64_t last_use;
};

static bool same_source(const clcnn__op_cache_key *a, const clcnn__op_cache_key *b)
{
    return a->tensor_id == b->tensor_id && strcmp(a->kind, b->kind) == 0 &&
           a->variant == b->variant;
}

static void drop(struct clcnn__op_cache_entry *e)
{
    if (e->buffer != NULL)
        clReleaseMemObject(e->buffer);
    memset(e, 0, sizeof *e);
}

cl_mem clcnn__op_cache_get(clcnn_device *d, const clcnn__op_cache_key *key)
{
    cl_mem found = NULL;
    pthread_mutex_lock(&d->program_lock);
    for (size_t i = 0; i < CLCNN_OP_CACHE_ENTRIES; i++) {
        struct clcnn__op_cache_entry *e = &d->op_cache[i];
        if (e->buffer == NULL || !same_source(&e->key, key))
            continue;
        if (e->key.version == key->version) {
            e->last_use = ++d->op_cache_clock;
            found = e->buffer;
        } else if (e->key.version < key->version) {
            drop(e);
        }
    }
    pthread_mutex_unlock(&d->program_lock);
    return found;
}

clcnn_status clcnn__op_cache_put(clcnn_device *d, const clcnn__op_cache_key *key, cl_mem buffer)
{
    pthread_mutex_lock(&d->program_lock);
    struct clcnn__op_cache_entry *slot = NULL;
    for (size_t i = 0; i < CLCNN_OP_CACHE_ENTRIES; i++) {
        struct clcnn__op_cache_entry *e = &d->op_cache[i];
        if (e->buffer != NULL && same_source(&e->key, key)) {
            drop(e); /* one version per source */
        }
        if (e->buffer == NULL) {
            if (slot == NULL || slot->buffer != NULL)
                slot = e;
        } else if (slot == NULL || (slot->buffer != NULL && e->last_use < slot->last_use)) {
            slot = e;
        }
    }
    drop(slot);
    slot->key = *key;
    slot->buffer = buffer;
    slot->last_use = ++d->op_cache_clock;
    pthread_mutex_unlock(&d->program_lock);
    return CLCNN_OK;
}

size_t clcnn__op_cache_entry_size(void)
{
    return sizeof(struct clcnn__op_cache_entry);
}

void clcnn__op_cache_clear(clcnn_device *d)
{
    for (size_t i = 0; i < CLCNN_OP_CACHE_ENTRIES; i++)
        drop(&d->op_cache[i]);
}
