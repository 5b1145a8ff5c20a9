/* Dataset readers' parts that work on bytes in memory, for the fuzz targets and the tests. */
#ifndef CLCNN_DATA_IMPL_H
#define CLCNN_DATA_IMPL_H

#include <stddef.h>

#include "clcnn/data.h"

/* Appends the CIFAR-10 binary records in [in] bytes (a label byte, then 3x32x32 image bytes,
 * each) to [in,out] d's images and labels and count; [in] name labels messages. Checks every
 * record before changing d, so on an error d is as it was. Returns OK, CORRUPT (a size that is
 * not a whole number of records, a label above 9), OUT_OF_MEMORY. */
clcnn_status clcnn__cifar10_append(const void *bytes, size_t size, const char *name,
                                   clcnn_dataset *d);

#endif
