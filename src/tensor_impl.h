/* Tensor internals other modules need: a process-unique id and a version that every write
 * through the library bumps, so derived data (transformed weights) can be cached safely. */
#ifndef CLCNN_TENSOR_IMPL_H
#define CLCNN_TENSOR_IMPL_H

#include <stdint.h>

#include "clcnn/tensor.h"

/* Unique for the life of the process; never reused, unlike the handle's address. */
uint64_t clcnn__tensor_id(const clcnn_tensor *tensor);

/* Bumped by every write made through the library (upload, fill, an op's output). */
uint64_t clcnn__tensor_version(const clcnn_tensor *tensor);

/* Marks the tensor as written; ops call it for their outputs. */
void clcnn__tensor_touch(clcnn_tensor *tensor);

#endif
